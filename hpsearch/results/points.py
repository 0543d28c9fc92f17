"""A study's complete trials as points in the objective space (L1, L2), both minimized.

Any two-objective study can be read, not only hpsearch's own:

- a study that hpsearch ran (its trials record both validation losses);
- a two-objective Optuna study made by anyone: the points are ``trial.values`` (a maximized
  objective is negated inside, so that both are minimized, and shown in its own sign), named
  by ``study.metric_names`` when set; a study of three or more objectives with two of them
  picked (:attr:`Reading.objectives`);
- a single-objective study whose trials record both losses, with :func:`hpsearch.record`
  (``val_loss1``/``val_loss2``) or in user attributes named by :attr:`Reading.losses`.

α is the parameter named :attr:`Reading.alpha`. Whether each run converged comes from a
per-epoch history (hpsearch's, or :func:`hpsearch.record`'s), else from the intermediate values
of a single-objective study; without either, every run counts as converged and
:attr:`StudyPoints.convergence` says it was assumed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError, did_you_mean
from hpsearch.results.analysis import (
    CONVERGED_TOL,
    FrontAnalysis,
    Normalization,
    analyze_front,
    convergence_drift,
    feasible_pareto_mask,
)
from hpsearch.study import keys
from hpsearch.study.record import recorded

# How :attr:`StudyPoints.convergence` says where the convergence of the runs was read from.
CONVERGENCE_SOURCES = ("history", "intermediate values", "assumed")


@dataclass(frozen=True)
class Reading:
    """How to read a study's trials as two losses (the defaults read hpsearch's own studies
    and any two-objective study).

    Attributes:
        alpha: The parameter that holds α, the weight of L2 in ``L1 + α·L2``; a name given
            must be a parameter of some trial (None: ``alpha``, where there is one).
        losses: Two user attributes holding L1 and L2, for a single-objective study (default:
            those :func:`hpsearch.record` writes, when present).
        objectives: The two objectives (indices) of a study with three or more.
    """

    alpha: str | None = None
    losses: tuple[str, str] | None = None
    objectives: tuple[int, int] | None = None


@dataclass(frozen=True)
class StudyPoints:
    """The complete trials of a study in the objective space (L1, L2), both minimized.

    Attributes:
        study_name: The study.
        loss_names, metric_name: Names of L1, L2 and the metric.
        numbers: Trial numbers.
        loss1, loss2, metric: Each trial's figures, as minimized (a maximized objective is
            negated: :attr:`signs`); the metric is NaN where a trial records none.
        params: Each searched numeric parameter's values.
        pareto: Which trials are Pareto-optimal in (L1, L2) among the counted ones.
        values: The objective of a single-objective study (None with two).
        objective_name: Name of that objective.
        minimize: Whether the single objective is minimized.
        feasible: Which trials met their constraint (MDMM's L2 budget); all True otherwise.
        counted: Which trials count on the front: in a scalarized study the feasible ones (the
            budget is the user's constraint there), in a pareto study all (ε is a training
            knob there, like α, and every achieved point is a real trade-off).
        alpha: α of each linear-α trial that searched it (NaN for other trials), or None when
            no trial did: what the jump diagnosis reads.
        drift: Change of each trial's (L1, L2) over the last
            :data:`hpsearch.results.analysis.CONVERGENCE_WINDOW` of its epochs (0 without history).
        signs: Per loss, 1 if minimized, -1 if the study maximizes it: the user's own value is
            ``sign · loss``.
        convergence: Where convergence was read from, one of :data:`CONVERGENCE_SOURCES`.
        settled: Per trial, whether its run converged by its intermediate values (None: use
            ``drift``).
        aimed: Which trials were aimed into a stretch by ``hpsearch fill`` (enqueued by
            :func:`hpsearch.plan_fill`): not linear-α runs, and not part of the front "before".
        hpsearch_made: Whether hpsearch ran the study (a study file defines it).
        unread: Complete trials left out: they record no pair of losses to read.
        alpha_missing: The parameter α was looked for under, in a study hpsearch did not
            make whose trials have none (the jump test then has nothing to read), else None.
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
    signs: tuple[int, int] = (1, 1)
    convergence: str = "history"
    settled: np.ndarray | None = None
    aimed: np.ndarray | None = None
    hpsearch_made: bool = True
    unread: int = 0
    alpha_missing: str | None = None

    @property
    def xy(self) -> np.ndarray:
        """The trials as rows of (L1, L2), both minimized."""
        return np.stack([self.loss1, self.loss2], axis=1)

    def non_finite(self) -> int:
        """How many trials that count are left off the front for an infinite or NaN loss."""
        return int((self.counted & ~np.isfinite(self.xy).all(1)).sum())

    def shown(self, xy: np.ndarray) -> np.ndarray:
        """Points of the minimized space in the user's own signs."""
        return np.asarray(xy, float) * np.asarray(self.signs, float)

    def analyze(
        self,
        normalization: Normalization | None = None,
        reference_raw: tuple[float, float] | None = None,
        only: np.ndarray | None = None,
    ) -> FrontAnalysis:
        """``analyze_front`` of these trials, jump diagnosis included.

        Args:
            normalization, reference_raw: As :func:`analyze_front`'s.
            only: A mask of the trials to analyse (the others do not count); indices of the
                result still refer to all trials.
        """
        counted = self.counted if only is None else self.counted & only
        return analyze_front(
            self.xy,
            counted,
            normalization,
            alpha=self.alpha,
            drift=self.drift,
            reference_raw=reference_raw,
            settled=self.settled,
        )


def points_of_study(study: optuna.Study, reading: Reading | None = None) -> StudyPoints:
    """The complete trials of a loaded study as :class:`StudyPoints` (see the module doc).

    Raises:
        HpsearchError: No complete trial; one objective and no losses recorded; three or more
            objectives and no two picked; a named attribute or objective that no trial has.
    """
    reading = reading or Reading()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise HpsearchError(f"study {study.study_name!r} has no complete trial yet")
    if keys.STUDY in study.user_attrs and reading.losses is None and reading.objectives is None:
        return _hpsearch_points(study, complete, reading)
    return _foreign_points(study, complete, reading)


def _hpsearch_points(
    study: optuna.Study, complete: list[FrozenTrial], reading: Reading
) -> StudyPoints:
    """Points of a study hpsearch ran: every trial records both validation losses."""
    attrs = study.user_attrs[keys.STUDY]
    trials = [t for t in complete if keys.VAL_LOSS1 in t.user_attrs]
    if not trials:
        raise HpsearchError(
            f"none of the {len(complete)} complete trials of {study.study_name!r} records its "
            f"validation losses ({keys.VAL_LOSS1}, {keys.VAL_LOSS2})"
        )
    multi = len(study.directions) > 1
    feasible = np.array([bool(t.user_attrs.get(keys.FEASIBLE, True)) for t in trials])
    fixed_method = attrs.get("identity", {}).get("params", {}).get("method", {}).get("value")
    return _assemble(
        study,
        trials,
        xy=np.array([[t.user_attrs[keys.VAL_LOSS1], t.user_attrs[keys.VAL_LOSS2]] for t in trials]),
        names=tuple(attrs.get("loss_names", ("loss1", "loss2"))),
        metric_name=attrs.get("metric_name", "metric"),
        signs=(1, 1),
        feasible=feasible,
        counted=np.ones(len(trials), bool) if multi else feasible,
        linear=lambda t: t.params.get("method", fixed_method or "linear") == "linear",
        reading=reading,
    )


def _foreign_points(
    study: optuna.Study, complete: list[FrozenTrial], reading: Reading
) -> StudyPoints:
    """Points of a study hpsearch did not run (or one read with other losses)."""
    n_objectives = len(study.directions)
    if n_objectives == 1 or reading.losses is not None:
        trials, xy, names = _recorded_losses(study, complete, reading.losses)
        signs: tuple[int, int] = (1, 1)
    else:
        first, second = _pick_objectives(study, reading.objectives)
        trials = [t for t in complete if t.values is not None]
        signs = (_sign(study, first), _sign(study, second))
        xy = np.array([[t.values[first], t.values[second]] for t in trials], float) * signs
        metric_names = study.metric_names
        names = (
            (metric_names[first], metric_names[second])
            if metric_names
            else (f"objective {first}", f"objective {second}")
        )
    feasible = np.array([bool(t.user_attrs.get(keys.FEASIBLE, True)) for t in trials])
    return _assemble(
        study,
        trials,
        xy=xy,
        names=names,
        metric_name="metric",
        signs=signs,
        feasible=feasible,
        counted=feasible,
        linear=lambda t: True,
        reading=reading,
        unread=len(complete) - len(trials),
    )


def _sign(study: optuna.Study, index: int) -> int:
    return -1 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1


def _pick_objectives(study: optuna.Study, picked: tuple[int, int] | None) -> tuple[int, int]:
    """The two objectives to read: the study's two, or the ones picked of three or more."""
    n = len(study.directions)
    if picked is None:
        if n == 2:
            return 0, 1
        raise HpsearchError(
            f"study {study.study_name!r} has {n} objectives; pick the two to trade off with "
            f"--objectives I,J (0 to {n - 1}{_named(study)})"
        )
    first, second = picked
    if first == second or not (0 <= first < n and 0 <= second < n):
        raise HpsearchError(
            f"--objectives {first},{second}: study {study.study_name!r} has objectives 0 to "
            f"{n - 1}{_named(study)}; give two different ones"
        )
    return first, second


def _named(study: optuna.Study) -> str:
    names = study.metric_names
    return f": {', '.join(f'{i} {n}' for i, n in enumerate(names))}" if names else ""


def _recorded_losses(
    study: optuna.Study, complete: list[FrozenTrial], losses: tuple[str, str] | None
) -> tuple[list[FrozenTrial], np.ndarray, tuple[str, str]]:
    """Trials of a single-objective study that record both losses, their points and names:
    the last epoch of :func:`hpsearch.record`'s history, or the user attributes ``losses``."""
    found = sorted({k for t in complete for k in t.user_attrs})
    if losses is None:
        keys_used = names = (keys.VAL_LOSS1, keys.VAL_LOSS2)

        def value(t: FrozenTrial, key: str) -> Any:
            return recorded(t.user_attrs.get(keys.HISTORY), key)

        if not any(value(t, keys.VAL_LOSS1) is not None for t in complete):
            raise HpsearchError(
                f"study {study.study_name!r} has one objective and records no pair of losses: "
                "record them per epoch with hpsearch.record(trial, loss1, loss2), or name the "
                "two user attributes that hold them with --losses KEY1,KEY2 (found: "
                f"{', '.join(found) or 'none'})"
            )
    else:
        keys_used = names = losses

        def value(t: FrozenTrial, key: str) -> Any:
            return t.user_attrs.get(key)

    trials = [t for t in complete if all(_is_number(value(t, k)) for k in keys_used)]
    if not trials:
        missing = [k for k in keys_used if not any(k in t.user_attrs for t in complete)]
        raise HpsearchError(
            f"none of the {len(complete)} complete trials of {study.study_name!r} records "
            f"numbers in both user attributes {keys_used[0]!r} and {keys_used[1]!r}; found: "
            f"{', '.join(found) or 'none'}" + (did_you_mean(missing[0], found) if missing else "")
        )
    xy = np.array([[value(t, k) for k in keys_used] for t in trials], float)
    return trials, xy, (str(names[0]), str(names[1]))


def _is_number(value: Any) -> bool:
    """A real number of any type (numpy's too), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _assemble(
    study: optuna.Study,
    trials: list[FrozenTrial],
    *,
    xy: np.ndarray,
    names: tuple[str, str],
    metric_name: str,
    signs: tuple[int, int],
    feasible: np.ndarray,
    counted: np.ndarray,
    linear: Any,
    reading: Reading,
    unread: int = 0,
) -> StudyPoints:
    """The :class:`StudyPoints` of ``trials`` once their points are read."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    alpha_name = _alpha_name(study, trials, reading.alpha)
    numeric = sorted(
        k
        for k in {k for t in trials for k in t.params}
        if all(_is_number(t.params.get(k)) for t in trials)
    )
    multi = len(study.directions) > 1
    aimed = np.array([keys.FILL_AIM in t.user_attrs for t in trials])
    histories = [t.user_attrs.get(keys.HISTORY) for t in trials]
    convergence, settled = _convergence(study, trials, histories)
    return StudyPoints(
        study_name=study.study_name,
        loss_names=names,
        metric_name=metric_name,
        numbers=np.array([t.number for t in trials], dtype=int),
        loss1=xy[:, 0],
        loss2=xy[:, 1],
        metric=np.array([_metric(t) for t in trials]),
        params={k: np.array([t.params[k] for t in trials], dtype=float) for k in numeric},
        pareto=feasible_pareto_mask(xy, counted & np.isfinite(xy).all(1)),
        values=None if multi else np.array([t.value for t in trials], dtype=float),
        objective_name=", ".join(study.metric_names or ["value"]),
        minimize=multi or study.direction == optuna.study.StudyDirection.MINIMIZE,
        feasible=feasible,
        counted=counted,
        alpha=_linear_alpha(
            trials, alpha_name, lambda t: linear(t) and keys.FILL_AIM not in t.user_attrs
        ),
        drift=np.array([_drift(h) for h in histories], float).reshape(-1, 2),
        signs=signs,
        convergence=convergence,
        settled=settled,
        aimed=aimed if aimed.any() else None,
        hpsearch_made=keys.STUDY in study.user_attrs,
        unread=unread,
        alpha_missing=(
            alpha_name
            if keys.STUDY not in study.user_attrs
            and not any(alpha_name in t.params for t in trials)
            else None
        ),
    )


def _alpha_name(study: optuna.Study, trials: list[FrozenTrial], given: str | None) -> str:
    """The parameter to read α from: the one given, which some trial must have, else alpha."""
    if given is None:
        return "alpha"
    params = sorted({k for t in trials for k in t.params})
    if given not in params:
        raise HpsearchError(
            f"--alpha {given}: no trial of {study.study_name!r} has a parameter {given!r}; "
            f"parameters: {', '.join(params) or 'none'}" + did_you_mean(given, params)
        )
    return given


def _metric(trial: FrozenTrial) -> float:
    """The trial's metric: hpsearch's own, else the last :func:`hpsearch.record`ed (or NaN)."""
    value: Any = trial.user_attrs.get(keys.VAL_METRIC)
    if value is None:
        value = recorded(trial.user_attrs.get(keys.HISTORY), keys.VAL_METRIC)
    return float(value) if _is_number(value) else math.nan


def _linear_alpha(trials: list[FrozenTrial], name: str, linear: Any) -> np.ndarray | None:
    """α of the trials that trained on L1 + α·L2 with α searched; None if there are none."""
    alpha = np.array(
        [
            float(t.params[name]) if _is_number(t.params.get(name)) and linear(t) else math.nan
            for t in trials
        ]
    )
    return alpha if np.isfinite(alpha).any() else None


def _drift(history: dict[str, list[float]] | None) -> tuple[float, float]:
    """:func:`hpsearch.results.analysis.convergence_drift` of a stored history (0 without one)."""
    if not history:
        return (0.0, 0.0)
    return convergence_drift(history.get(keys.VAL_LOSS1, []), history.get(keys.VAL_LOSS2, []))


def _convergence(
    study: optuna.Study, trials: list[FrozenTrial], histories: list[Any]
) -> tuple[str, np.ndarray | None]:
    """Where convergence is read from, and the per-trial verdict of intermediate values.

    A history of both losses is the evidence (drift, see :func:`_drift`). Without one, the
    intermediate values of a single-objective study: a run converged when its reported value
    moved at most :data:`CONVERGED_TOL` of the spread of the final values over the last
    :data:`CONVERGENCE_WINDOW` of its steps (the normalized units of the losses' drift).
    """
    if any(h and keys.VAL_LOSS1 in h for h in histories):
        return "history", None
    if len(study.directions) == 1 and any(len(t.intermediate_values) >= 2 for t in trials):
        finals = np.array([t.value for t in trials], float)
        spread = float(np.nanmax(finals) - np.nanmin(finals)) if len(finals) else 0.0
        scale = spread if spread > 0 else 1.0
        settled = np.array(
            [_moved(t.intermediate_values) <= CONVERGED_TOL * scale for t in trials], bool
        )
        return "intermediate values", settled
    return "assumed", None


def _moved(values: dict[int, float]) -> float:
    """How far a run's reported value moved over its last :data:`CONVERGENCE_WINDOW` of steps
    (0 with fewer than two reports)."""
    series = [v for _, v in sorted(values.items())]
    return convergence_drift(series, series)[0]
