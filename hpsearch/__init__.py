"""hpsearch: hyperparameter-search studies about loss trade-offs.

Tune the loss weight α, the flood level b, the learning rate and the optimizer of small
PyTorch models on real datasets with Optuna, in scalarized or multi-objective (Pareto) studies,
and see whether α can reach the trade-off you want.

The names below are the public API, grouped as docs/api.md lists them. They load on first use:
``import hpsearch`` itself imports neither torch nor Optuna's samplers, so reading results
(``hpsearch.study_points``) starts fast. Everything else lives in the subpackages
:mod:`hpsearch.core` (training, no Optuna), :mod:`hpsearch.study` (study files, storage, the
run loop), :mod:`hpsearch.results` (front analysis, tables, figures, the dashboard) and
:mod:`hpsearch.labs` (playground, MGS), and may change between releases.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name → the module that defines it, by group.
_API: dict[str, dict[str, str]] = {
    "Run studies": {
        "load_study_file": "hpsearch.study.config",
        "StudyConfig": "hpsearch.study.config",
        "ParamSpec": "hpsearch.study.validation",
        "CORE_PARAMS": "hpsearch.study.config",
        "run_study": "hpsearch.study.runner",
        "run_workers": "hpsearch.study.runner",
        "RunOptions": "hpsearch.study.runner",
        "RunSummary": "hpsearch.study.runner",
        "open_storage": "hpsearch.study.storage",
        "DEFAULT_STORAGE": "hpsearch.study.storage",
        "counts_toward_target": "hpsearch.study.storage",
    },
    "Diagnose any study": {
        "diagnose": "hpsearch.results.diagnose",
        "Diagnosis": "hpsearch.results.diagnose",
        "plan_fill": "hpsearch.results.aim",
        "AimPlan": "hpsearch.results.aim",
        "Reading": "hpsearch.results.points",
    },
    "Trial utilities for your own Optuna loop": {
        "record": "hpsearch.study.record",
        "fill_aim": "hpsearch.study.record",
        "Aim": "hpsearch.study.record",
        "Chebyshev": "hpsearch.core.scalarize",
        "MDMM": "hpsearch.core.scalarize",
        "make_objective": "hpsearch.study.objective",
        "suggest_params": "hpsearch.study.objective",
    },
    "Read and compare results": {
        "list_studies": "hpsearch.results.report",
        "StudyRow": "hpsearch.results.report",
        "study_points": "hpsearch.results.report",
        "study_rows": "hpsearch.results.report",
        "StudyPoints": "hpsearch.results.report",
        "compare_studies": "hpsearch.results.compare",
        "compare_points": "hpsearch.results.compare",
        "Comparison": "hpsearch.results.compare",
        "write_comparison": "hpsearch.results.export",
        "run_fill": "hpsearch.results.fill",
        "FillResult": "hpsearch.results.fill",
        "publish_study": "hpsearch.results.publish",
    },
    "Front analysis (numpy only)": {
        "analyze_front": "hpsearch.results.analysis",
        "FrontAnalysis": "hpsearch.results.analysis",
        "Normalization": "hpsearch.results.analysis",
        "Stretch": "hpsearch.results.analysis",
        "alpha_ranges": "hpsearch.results.analysis",
        "hypervolume_2d": "hpsearch.results.analysis",
        "pareto_mask": "hpsearch.results.analysis",
        "verdict": "hpsearch.results.analysis",
    },
    "Training core (no Optuna)": {
        "train": "hpsearch.core.train",
        "TrainConfig": "hpsearch.core.knobs",
        "TrainResult": "hpsearch.core.train",
        "EpochRecord": "hpsearch.core.train",
        "combined_loss": "hpsearch.core.train",
        "flooded_loss": "hpsearch.core.train",
        "chebyshev_scalarize": "hpsearch.core.train",
        "mdmm_loss": "hpsearch.core.train",
        "mdmm_multiplier_step": "hpsearch.core.train",
        "OPTIMIZERS": "hpsearch.core.knobs",
        "INNER_METHODS": "hpsearch.core.knobs",
        "FLOOD_MODES": "hpsearch.core.knobs",
    },
    "Setups, models and data": {
        "Setup": "hpsearch.core.setups",
        "Option": "hpsearch.core.options",
        "register_setup": "hpsearch.core.setups",
        "get_setup": "hpsearch.core.setups",
        "available_setups": "hpsearch.core.setups",
        "task_loss": "hpsearch.core.setups",
        "task_metric": "hpsearch.core.setups",
        "build_mlp": "hpsearch.core.models",
        "ModelSpec": "hpsearch.core.models",
        "ACTIVATIONS": "hpsearch.core.models",
        "load_dataset": "hpsearch.core.data",
        "with_label_noise": "hpsearch.core.data",
        "Dataset": "hpsearch.core.data",
        "Split": "hpsearch.core.data",
        "DATASETS": "hpsearch.core.data",
        "register_dataset": "hpsearch.core.sources",
        "DataFile": "hpsearch.core.sources",
    },
    "Labs": {
        "trajectory": "hpsearch.labs.playground",
        "Trajectory": "hpsearch.labs.playground",
        "PlaygroundFunction": "hpsearch.labs.playground",
        "TEST_FUNCTIONS": "hpsearch.labs.playground",
        "MGSConfig": "hpsearch.labs.mgs",
        "MGSResult": "hpsearch.labs.mgs",
        "mgs_direction": "hpsearch.labs.mgs",
        "mgs_weights": "hpsearch.labs.mgs",
        "train_metric": "hpsearch.labs.mgs",
    },
    "Errors": {
        "HpsearchError": "hpsearch.errors",
        "StudyFileError": "hpsearch.errors",
        "DivergedError": "hpsearch.errors",
    },
}
_WHERE: dict[str, str] = {name: module for group in _API.values() for name, module in group.items()}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hpsearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads them
    from hpsearch.core.data import DATASETS, Dataset, Split, load_dataset, with_label_noise
    from hpsearch.core.knobs import FLOOD_MODES, INNER_METHODS, OPTIMIZERS, TrainConfig
    from hpsearch.core.models import ACTIVATIONS, ModelSpec, build_mlp
    from hpsearch.core.options import Option
    from hpsearch.core.scalarize import MDMM, Chebyshev
    from hpsearch.core.setups import (
        Setup,
        available_setups,
        get_setup,
        register_setup,
        task_loss,
        task_metric,
    )
    from hpsearch.core.sources import DataFile, register_dataset
    from hpsearch.core.train import (
        EpochRecord,
        TrainResult,
        chebyshev_scalarize,
        combined_loss,
        flooded_loss,
        mdmm_loss,
        mdmm_multiplier_step,
        train,
    )
    from hpsearch.errors import DivergedError, HpsearchError, StudyFileError
    from hpsearch.labs.mgs import MGSConfig, MGSResult, mgs_direction, mgs_weights, train_metric
    from hpsearch.labs.playground import TEST_FUNCTIONS, PlaygroundFunction, Trajectory, trajectory
    from hpsearch.results.aim import AimPlan, plan_fill
    from hpsearch.results.analysis import (
        FrontAnalysis,
        Normalization,
        Stretch,
        alpha_ranges,
        analyze_front,
        hypervolume_2d,
        pareto_mask,
        verdict,
    )
    from hpsearch.results.compare import (
        Comparison,
        compare_points,
        compare_studies,
    )
    from hpsearch.results.diagnose import Diagnosis, diagnose
    from hpsearch.results.export import write_comparison
    from hpsearch.results.fill import FillResult, run_fill
    from hpsearch.results.points import Reading
    from hpsearch.results.publish import publish_study
    from hpsearch.results.report import (
        StudyPoints,
        StudyRow,
        list_studies,
        study_points,
        study_rows,
    )
    from hpsearch.study.config import CORE_PARAMS, StudyConfig, load_study_file
    from hpsearch.study.objective import make_objective, suggest_params
    from hpsearch.study.record import Aim, fill_aim, record
    from hpsearch.study.runner import RunOptions, RunSummary, run_study, run_workers
    from hpsearch.study.storage import DEFAULT_STORAGE, counts_toward_target, open_storage
    from hpsearch.study.validation import ParamSpec
