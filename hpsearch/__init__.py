"""hpsearch: hyperparameter-search studies about loss trade-offs.

Tune the loss weight α, the flood level b, the learning rate and the optimizer of small
PyTorch models on real datasets with Optuna, in scalarized or multi-objective (Pareto) studies.
"""

from hpsearch._config import CORE_PARAMS, ParamSpec, StudyConfig, load_study_file
from hpsearch._data import DATASETS, Dataset, Split, load_dataset
from hpsearch._errors import DivergedError, HpsearchError, StudyFileError
from hpsearch._models import ACTIVATIONS, ModelSpec, build_mlp
from hpsearch._objective import make_objective, suggest_params
from hpsearch._report import StudyRow, format_table, list_studies, study_rows
from hpsearch._setups import (
    Option,
    Setup,
    available_setups,
    get_setup,
    register_setup,
    task_loss,
    task_metric,
)
from hpsearch._study import (
    DEFAULT_STORAGE,
    RunSummary,
    counts_toward_target,
    create_or_load_study,
    open_storage,
    run_study,
)
from hpsearch._train import (
    OPTIMIZERS,
    EpochRecord,
    TrainConfig,
    TrainResult,
    combined_loss,
    flooded_loss,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "CORE_PARAMS",
    "DATASETS",
    "DEFAULT_STORAGE",
    "OPTIMIZERS",
    "Dataset",
    "DivergedError",
    "EpochRecord",
    "HpsearchError",
    "ModelSpec",
    "Option",
    "ParamSpec",
    "RunSummary",
    "Setup",
    "Split",
    "StudyConfig",
    "StudyFileError",
    "StudyRow",
    "TrainConfig",
    "TrainResult",
    "available_setups",
    "build_mlp",
    "combined_loss",
    "counts_toward_target",
    "create_or_load_study",
    "flooded_loss",
    "format_table",
    "get_setup",
    "list_studies",
    "load_dataset",
    "load_study_file",
    "make_objective",
    "open_storage",
    "register_setup",
    "run_study",
    "study_rows",
    "suggest_params",
    "task_loss",
    "task_metric",
    "train",
]
