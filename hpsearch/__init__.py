"""hpsearch: hyperparameter-search studies about loss trade-offs.

Tune the loss weight α, the flood level b, the learning rate and the optimizer of small
PyTorch models on real datasets with Optuna, in scalarized or multi-objective (Pareto) studies.
"""

from hpsearch._analysis import (
    REFERENCE,
    FrontAnalysis,
    Normalization,
    Stretch,
    alpha_ranges,
    analyze_front,
    feasible_pareto_mask,
    hypervolume_2d,
    knee_index,
    lower_convex_hull,
    pareto_mask,
    preferred_index,
    verdict,
)
from hpsearch._compare import Comparison, compare_points, compare_studies, write_comparison
from hpsearch._config import CORE_PARAMS, ParamSpec, StudyConfig, load_study_file
from hpsearch._data import DATASETS, Dataset, Split, load_dataset, with_label_noise
from hpsearch._errors import DivergedError, HpsearchError, StudyFileError
from hpsearch._fill import FillResult, run_fill
from hpsearch._mgs import MGSConfig, MGSResult, mgs_direction, mgs_weights, train_metric
from hpsearch._models import ACTIVATIONS, ModelSpec, build_mlp
from hpsearch._objective import make_objective, suggest_params
from hpsearch._playground import TEST_FUNCTIONS, PlaygroundFunction, Trajectory, trajectory
from hpsearch._publish import artifact_dir, publish_study
from hpsearch._report import (
    StudyPoints,
    StudyRow,
    format_table,
    list_studies,
    study_points,
    study_rows,
)
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
    run_workers,
)
from hpsearch._train import (
    FLOOD_MODES,
    INNER_METHODS,
    OPTIMIZERS,
    EpochRecord,
    TrainConfig,
    TrainResult,
    chebyshev_scalarize,
    combined_loss,
    flooded_loss,
    mdmm_loss,
    mdmm_multiplier_step,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "INNER_METHODS",
    "FLOOD_MODES",
    "MGSConfig",
    "MGSResult",
    "PlaygroundFunction",
    "TEST_FUNCTIONS",
    "Trajectory",
    "mgs_direction",
    "mgs_weights",
    "train_metric",
    "trajectory",
    "with_label_noise",
    "REFERENCE",
    "Comparison",
    "FrontAnalysis",
    "Normalization",
    "StudyPoints",
    "analyze_front",
    "chebyshev_scalarize",
    "compare_points",
    "compare_studies",
    "Stretch",
    "alpha_ranges",
    "FillResult",
    "run_fill",
    "feasible_pareto_mask",
    "hypervolume_2d",
    "knee_index",
    "lower_convex_hull",
    "mdmm_loss",
    "mdmm_multiplier_step",
    "pareto_mask",
    "preferred_index",
    "study_points",
    "verdict",
    "write_comparison",
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
    "run_workers",
    "publish_study",
    "artifact_dir",
    "study_rows",
    "suggest_params",
    "task_loss",
    "task_metric",
    "train",
]
