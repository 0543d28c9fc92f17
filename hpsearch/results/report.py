"""Tables of studies and trials as plain data (the CLI prints them)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpsearch.errors import HpsearchError, did_you_mean
from hpsearch.results.analysis import feasible_pareto_mask
from hpsearch.results.points import Reading, StudyPoints, points_of_study
from hpsearch.results.tables import format_table as format_table  # kept importable from here
from hpsearch.results.tables import markdown_table as markdown_table
from hpsearch.study import keys
from hpsearch.study.storage import StorageLike, best_value, describe_storage, open_storage


@dataclass(frozen=True)
class StudyRow:
    """One study in a storage.

    Attributes:
        name: Study name.
        mode: ``"pareto"`` or ``"scalarized"`` (for a study hpsearch did not make: two
            objectives or one), ``"N objectives"`` for three or more; ``"playground"`` or
            ``"mgs"`` for the studies of ``hpsearch playground`` and ``hpsearch mgs``.
        dataset, setup: From the study file; for a playground study the test function and the
            optimizer, for an MGS study the dataset and the estimator with its metric; ``-``
            and ``own (not hpsearch's)`` for a study hpsearch did not make.
        complete, pruned, failed, running: Trial counts by state.
        best: Best value (scalarized) or None.
        pareto_size: Number of Pareto-optimal trials (pareto), or None.
    """

    name: str
    mode: str
    dataset: str
    setup: str
    complete: int
    pruned: int
    failed: int
    running: int
    best: float | None
    pareto_size: int | None


def list_studies(storage: StorageLike) -> list[StudyRow]:
    """Every study in ``storage`` with its trial counts and best value or Pareto size.

    Raises:
        HpsearchError: The storage cannot be opened (an SQLite file must exist).
    """
    store = open_storage(storage, must_exist=True, read_only=True)
    rows = []
    for name in sorted(optuna.get_all_study_names(store)):
        study = optuna.load_study(study_name=name, storage=store)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        identity = _listed_identity(study.user_attrs) or _foreign_identity(study)
        dataset = identity.get("dataset", "?")
        if isinstance(dataset, dict):  # a data file: its name (the identity holds its hash)
            dataset = dataset.get("file", "?")
        multi = len(study.directions) > 1
        has_complete = states[TrialState.COMPLETE] > 0
        rows.append(
            StudyRow(
                name=name,
                mode=identity.get("mode", "?"),
                dataset=str(dataset),
                setup=identity.get("setup", "?"),
                complete=states[TrialState.COMPLETE],
                pruned=states[TrialState.PRUNED],
                failed=states[TrialState.FAIL],
                running=states[TrialState.RUNNING],
                best=best_value(study) if has_complete and not multi else None,
                pareto_size=_pareto_size(study) if multi and has_complete else None,
            )
        )
    return rows


def _pareto_size(study: optuna.Study) -> int:
    """How many complete trials are Pareto-optimal, counted as ``show`` counts its front: a
    trial with an infinite or NaN value is not a point of it (Optuna's ``best_trials`` would
    let one -inf trial stand for the whole front)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) != 2:
        return len(study.best_trials)
    signs = [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions]
    values = np.array([[s * v for s, v in zip(signs, t.values, strict=True)] for t in trials])
    return int(feasible_pareto_mask(values, np.isfinite(values).all(1)).sum())


def _listed_identity(user_attrs: dict[str, Any]) -> dict[str, str]:
    """Mode, dataset and setup of a study for ``list_studies`` (empty if not hpsearch's)."""
    identity = user_attrs.get(keys.STUDY, {}).get("identity")
    if identity:
        return identity
    # `hpsearch playground` and `hpsearch mgs` studies have no study file identity; they carry
    # plain user attributes instead.
    if keys.LAB_FUNCTION in user_attrs and keys.LAB_OPTIMIZER in user_attrs:
        return {
            "mode": "playground",
            "dataset": str(user_attrs[keys.LAB_FUNCTION]),
            "setup": str(user_attrs[keys.LAB_OPTIMIZER]),
        }
    if keys.LAB_ESTIMATOR in user_attrs and keys.LAB_DATASET in user_attrs:
        return {
            "mode": "mgs",
            "dataset": str(user_attrs[keys.LAB_DATASET]),
            "setup": f"{user_attrs[keys.LAB_ESTIMATOR]} ({user_attrs.get(keys.LAB_METRIC, '?')})",
        }
    return {}


def _foreign_identity(study: optuna.Study) -> dict[str, str]:
    """Mode, dataset and setup of a study hpsearch did not make, as far as it tells."""
    n = len(study.directions)
    mode = {1: "scalarized", 2: "pareto"}.get(n, f"{n} objectives")
    return {"mode": mode, "dataset": "-", "setup": "own (not hpsearch's)"}


def load_stored_study(storage: StorageLike, study_name: str) -> optuna.Study:
    """Load an existing study, or fail with one line listing the stored ones.

    Raises:
        HpsearchError: The storage cannot be opened or has no such study.
    """
    store = open_storage(storage, must_exist=True, read_only=True)
    names = optuna.get_all_study_names(store)
    if study_name not in names:
        raise HpsearchError(
            f"no study {study_name!r} in {describe_storage(storage)}; "
            f"stored: {', '.join(sorted(names)) or 'none'}"
            + did_you_mean(study_name, sorted(names))
        )
    return optuna.load_study(study_name=study_name, storage=store)


def study_points(
    storage: StorageLike, study_name: str, reading: Reading | None = None
) -> StudyPoints:
    """The complete trials of a stored study as arrays, with their Pareto front in (L1, L2).

    Works for hpsearch's studies of both modes and for any two-objective Optuna study
    (:func:`hpsearch.results.points.points_of_study`).

    Raises:
        HpsearchError: No such study, no complete trial, or nothing to read as two losses.
    """
    return points_of_study(load_stored_study(storage, study_name), reading)


def study_rows(
    storage: StorageLike, study_name: str, top: int = 10, reading: Reading | None = None
) -> tuple[list[str], list[list[Any]]]:
    """The best trials (one objective) or the Pareto front (two) of a study, as a table.

    Raises:
        HpsearchError: No such study (the message lists the stored ones), no complete trial,
            or nothing to read as two losses.
    """
    study = load_stored_study(storage, study_name)
    return points_table(study, points_of_study(study, reading), top)


def points_table(
    study: optuna.Study, points: StudyPoints, top: int = 10
) -> tuple[list[str], list[list[Any]]]:
    """:func:`study_rows` of a study already read.

    Args:
        study: The study.
        points: Its points (:func:`points_of_study`).
        top: Rows to show for a single-objective study (the Pareto front is shown whole).

    Returns:
        ``(columns, rows)``: trial number, objective value (unless it is one of the next
        columns), both losses and the metric (validation figures of hpsearch's studies, named
        ``val_…``; a study's own objectives in their own sign), the α interval of each Pareto
        point (two objectives), then the searched parameters.
    """
    alpha_col: dict[int, str] = {}
    if points.values is None:
        # The front as hpsearch counts it (every achieved point, whatever its ε), with the α
        # for which each point minimizes L1 + α·L2.
        analysis = points.analyze()
        chosen = [int(i) for i in analysis.front]
        for i, alphas in zip(analysis.front, analysis.alpha_ranges, strict=True):
            alpha_col[int(i)] = alpha_text(alphas)
        value_cols: list[str] = []
    else:
        sign = 1 if points.minimize else -1
        # As Optuna's best value: trials that missed their constraint are not candidates.
        order = np.argsort(sign * points.values, kind="stable")
        chosen = [int(i) for i in order if points.feasible[i]][:top]
        value_cols = [points.objective_name.split(", ")[0]]
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    trials = [by_number[int(points.numbers[i])] for i in chosen]
    param_names = sorted({k for t in trials for k in t.params})
    prefix = "val_" if points.hpsearch_made else ""
    loss_cols = [f"{prefix}{points.loss_names[0]}", f"{prefix}{points.loss_names[1]}"]
    with_metric = bool(np.isfinite(points.metric).any())
    metric_cols = [f"{prefix}{points.metric_name}"] if with_metric else []
    if value_cols and value_cols[0] in loss_cols + metric_cols:
        # The objective is one of the loss columns (`objective = "loss1"`): shown once.
        value_cols = []
    columns = [
        "trial",
        *value_cols,
        *loss_cols,
        *metric_cols,
        *(["alpha_range"] if alpha_col else []),
        *param_names,
    ]
    shown = points.shown(points.xy)
    rows = [
        [
            t.number,
            *([float(points.values[i])] if value_cols and points.values is not None else []),
            float(shown[i, 0]),
            float(shown[i, 1]),
            *([float(points.metric[i])] if with_metric else []),
            *([alpha_col[i]] if alpha_col else []),
            *(t.params.get(p) for p in param_names),
        ]
        for i, t in zip(chosen, trials, strict=True)
    ]
    return columns, rows


def alpha_text(alphas: tuple[float, float] | None) -> str:
    """An α interval for tables: ``[lo, hi]``, one number where it is a single α, ``-`` for
    none (the point is not the minimizer of L1 + α·L2 for any α)."""
    if alphas is None:
        return "-"
    lo, hi = alphas
    if lo == hi:
        return f"{lo:.3g}"
    return f"[{lo:.3g}, {'inf' if math.isinf(hi) else f'{hi:.3g}'}]"


def mean_sd(values: list[float]) -> str:
    """``"mean ± sd"`` to 4 decimals (sample sd over seeds; 0 for a single value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"
