"""Tables of studies and trials as plain data (the CLI prints them)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError, did_you_mean
from hpsearch.results.analysis import (
    FrontAnalysis,
    Normalization,
    analyze_front,
    convergence_drift,
    feasible_pareto_mask,
)
from hpsearch.study import keys
from hpsearch.study.storage import StorageLike, best_value, describe_storage, open_storage


@dataclass(frozen=True)
class StudyRow:
    """One study in a storage.

    Attributes:
        name: Study name.
        mode: ``"pareto"`` or ``"scalarized"``; ``"playground"`` or ``"mgs"`` for the studies
            of ``hpsearch playground`` and ``hpsearch mgs``; ``"?"`` for a study not made by
            hpsearch.
        dataset, setup: From the study file; for a playground study the test function and the
            optimizer, for an MGS study the dataset and the estimator with its metric.
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
        identity = _listed_identity(study.user_attrs)
        multi = len(study.directions) > 1
        has_complete = states[TrialState.COMPLETE] > 0
        rows.append(
            StudyRow(
                name=name,
                mode=identity.get("mode", "?"),
                dataset=identity.get("dataset", "?"),
                setup=identity.get("setup", "?"),
                complete=states[TrialState.COMPLETE],
                pruned=states[TrialState.PRUNED],
                failed=states[TrialState.FAIL],
                running=states[TrialState.RUNNING],
                best=best_value(study) if has_complete and not multi else None,
                pareto_size=len(study.best_trials) if multi and has_complete else None,
            )
        )
    return rows


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


@dataclass(frozen=True)
class StudyPoints:
    """The complete trials of a study in the objective space (validation L1, validation L2).

    Attributes:
        study_name: The study.
        loss_names, metric_name: The setup's names for L1, L2 and the metric.
        numbers: Trial numbers.
        loss1, loss2, metric: Validation figures of each trial (user attributes).
        params: Each searched numeric parameter's values.
        pareto: Which trials are Pareto-optimal in (L1, L2) among the feasible ones.
        values: The objective of a scalarized study (None for a pareto study).
        objective_name: Name of that objective.
        minimize: Whether the scalarized objective is minimized.
        feasible: Which trials met their constraint (MDMM's L2 budget); all True otherwise.
        counted: Which trials count on the front: in a scalarized study the feasible ones (the
            budget is the user's constraint there), in a pareto study all (ε is a training
            knob there, like α, and every achieved point is a real trade-off).
        alpha: α of each linear-α trial that searched it (NaN for other trials), or None when
            no trial did: what the jump diagnosis reads.
        drift: Change of each trial's validation (L1, L2) over the last
            :data:`hpsearch.results.analysis.CONVERGENCE_WINDOW` of its epochs (0 without history).
    """

    study_name: str
    loss_names: tuple[str, str]
    metric_name: str
    numbers: np.ndarray
    loss1: np.ndarray
    loss2: np.ndarray
    metric: np.ndarray
    params: dict[str, np.ndarray]
    pareto: np.ndarray
    values: np.ndarray | None
    objective_name: str
    minimize: bool
    feasible: np.ndarray
    counted: np.ndarray
    alpha: np.ndarray | None = None
    drift: np.ndarray | None = None

    @property
    def xy(self) -> np.ndarray:
        """The trials as rows of (validation L1, validation L2)."""
        return np.stack([self.loss1, self.loss2], axis=1)

    def analyze(
        self,
        normalization: Normalization | None = None,
        reference_raw: tuple[float, float] | None = None,
    ) -> FrontAnalysis:
        """``analyze_front`` of these trials, jump diagnosis included."""
        return analyze_front(
            self.xy,
            self.counted,
            normalization,
            alpha=self.alpha,
            drift=self.drift,
            reference_raw=reference_raw,
        )


def study_points(storage: StorageLike, study_name: str) -> StudyPoints:
    """The complete trials of a stored study as arrays, with their Pareto front in (L1, L2).

    Works for both modes, since every hpsearch trial records both validation losses.

    Raises:
        HpsearchError: No such study, or no complete trial yet.
    """
    return points_of_study(load_stored_study(storage, study_name))


def points_of_study(study: optuna.Study) -> StudyPoints:
    """:func:`study_points` of a study already loaded."""
    study_name = study.study_name
    attrs = study.user_attrs.get(keys.STUDY, {})
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if keys.VAL_LOSS1 in t.user_attrs
    ]
    if not trials:
        raise HpsearchError(f"study {study_name!r} has no complete trial yet")
    loss1 = np.array([t.user_attrs[keys.VAL_LOSS1] for t in trials], dtype=float)
    loss2 = np.array([t.user_attrs[keys.VAL_LOSS2] for t in trials], dtype=float)
    numeric = sorted(
        k
        for k in {k for t in trials for k in t.params}
        if all(isinstance(t.params.get(k), int | float) for t in trials)
    )
    multi = len(study.directions) > 1
    feasible = np.array([bool(t.user_attrs.get(keys.FEASIBLE, True)) for t in trials])
    counted = np.ones(len(trials), bool) if multi else feasible
    return StudyPoints(
        study_name=study_name,
        loss_names=tuple(attrs.get("loss_names", ("loss1", "loss2"))),
        metric_name=attrs.get("metric_name", "metric"),
        numbers=np.array([t.number for t in trials]),
        loss1=loss1,
        loss2=loss2,
        metric=np.array([t.user_attrs[keys.VAL_METRIC] for t in trials], dtype=float),
        params={k: np.array([t.params[k] for t in trials], dtype=float) for k in numeric},
        pareto=feasible_pareto_mask(np.stack([loss1, loss2], axis=1), counted),
        values=None if multi else np.array([t.value for t in trials], dtype=float),
        objective_name=", ".join(study.metric_names or ["value"]),
        minimize=multi or study.direction == optuna.study.StudyDirection.MINIMIZE,
        feasible=feasible,
        counted=counted,
        alpha=_linear_alpha(trials, attrs.get("identity", {}).get("params", {})),
        drift=np.array([_drift(t.user_attrs.get(keys.HISTORY)) for t in trials]).reshape(-1, 2),
    )


def _linear_alpha(trials: list[FrozenTrial], params: dict[str, Any]) -> np.ndarray | None:
    """α of the trials that trained on L1 + α·L2 with α searched; None if there are none."""
    fixed_method = params.get("method", {}).get("value", "linear")
    alpha = np.array(
        [
            float(t.params["alpha"])
            if "alpha" in t.params and t.params.get("method", fixed_method) == "linear"
            else math.nan
            for t in trials
        ]
    )
    return alpha if np.isfinite(alpha).any() else None


def _drift(history: dict[str, list[float]] | None) -> tuple[float, float]:
    """:func:`hpsearch.results.analysis.convergence_drift` of a stored history (0 without one)."""
    if not history:
        return (0.0, 0.0)
    return convergence_drift(history.get(keys.VAL_LOSS1, []), history.get(keys.VAL_LOSS2, []))


def study_rows(
    storage: StorageLike, study_name: str, top: int = 10
) -> tuple[list[str], list[list[Any]]]:
    """The best trials (scalarized) or the Pareto front (pareto) of a study, as a table.

    Args:
        storage: Storage URL.
        study_name: The study.
        top: Rows to show for a scalarized study (the Pareto front is shown whole).

    Returns:
        ``(columns, rows)``: trial number, objective value (unless it is one of the next
        columns), validation losses and metric under their setup names, then the searched
        parameters.

    Raises:
        HpsearchError: No such study (the message lists the stored ones).
    """
    study = load_stored_study(storage, study_name)
    attrs = study.user_attrs.get(keys.STUDY, {})
    loss_names = attrs.get("loss_names", ["loss1", "loss2"])
    metric = attrs.get("metric_name", "metric")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    alpha_col: dict[int, str] = {}
    if len(study.directions) > 1:
        # The front as hpsearch counts it (every achieved point, whatever its ε), with the α
        # for which each point minimizes L1 + α·L2.
        chosen, alpha_col = [], {}
        if any(keys.VAL_LOSS1 in t.user_attrs for t in complete):
            points = points_of_study(study)
            analysis = points.analyze()
            by_number = {t.number: t for t in complete}
            for i, alphas in zip(analysis.front, analysis.alpha_ranges, strict=True):
                number = int(points.numbers[i])
                chosen.append(by_number[number])
                alpha_col[number] = alpha_text(alphas)
        value_cols: list[str] = []
    else:
        sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
        # As Optuna's best value: trials that missed their constraint are not candidates.
        feasible = [t for t in complete if t.user_attrs.get(keys.FEASIBLE, True)]
        chosen = sorted(feasible, key=lambda t: sign * float(t.value or 0.0))[:top]
        value_cols = [(study.metric_names or ["value"])[0]]
    param_names = sorted({k for t in chosen for k in t.params})
    validation_cols = [f"val_{loss_names[0]}", f"val_{loss_names[1]}", f"val_{metric}"]
    if value_cols and value_cols[0] in validation_cols:
        # The objective is one of the validation columns (`objective = "loss1"`): shown once.
        value_cols = []
    columns = [
        "trial",
        *value_cols,
        *validation_cols,
        *(["alpha_range"] if alpha_col else []),
        *param_names,
    ]

    def row(t: FrozenTrial) -> list[Any]:
        values = [t.value] if value_cols else []
        attrs_t = t.user_attrs
        return [
            t.number,
            *values,
            attrs_t.get(keys.VAL_LOSS1),
            attrs_t.get(keys.VAL_LOSS2),
            attrs_t.get(keys.VAL_METRIC),
            *([alpha_col[t.number]] if alpha_col else []),
            *(t.params.get(p) for p in param_names),
        ]

    return columns, [row(t) for t in chosen]


def alpha_text(alphas: tuple[float, float] | None) -> str:
    """An α interval for tables: ``[lo, hi]``, one number where it is a single α, ``-`` for
    none (the point is not the minimizer of L1 + α·L2 for any α)."""
    if alphas is None:
        return "-"
    lo, hi = alphas
    if lo == hi:
        return f"{lo:.3g}"
    return f"[{lo:.3g}, {'inf' if math.isinf(hi) else f'{hi:.3g}'}]"


def study_diagnosis(points: StudyPoints) -> str:
    """The one-line diagnosis of a study's front (:func:`hpsearch.results.analysis.verdict`)."""
    from hpsearch.results.analysis import verdict

    return verdict(points.xy, points.analyze(), points.loss_names)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def mean_sd(values: list[float]) -> str:
    """``"mean ± sd"`` to 4 decimals (sample sd over seeds; 0 for a single value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """Align a table in plain text, numbers to 4 significant digits."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(items: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(items, widths, strict=True)).rstrip()

    lines = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    return "\n".join(lines)
