"""Aim into the stretches linear α skips, with your own training loop.

:func:`plan_fill` (``hpsearch fill STUDY --plan``) diagnoses any two-objective study and
returns the knob values that aim into each stretch: Chebyshev weights ``w`` (with the ideal
point and scales they were computed for) or MDMM budgets ``ε``, spread evenly inside each
stretch in proportion to its length, each with the other parameters of the run that reached
the stretch's nearer end. :meth:`AimPlan.enqueue` (``--enqueue``) queues them into the study
(``study.enqueue_trial``): the next ``study.optimize(objective)`` runs them in your loop,
which reads its knobs with :func:`hpsearch.fill_aim`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from hpsearch.core.knobs import AIMING_KNOBS, JD_CANNOT_AIM
from hpsearch.errors import HpsearchError, check_choice
from hpsearch.results.analysis import FrontAnalysis, Stretch
from hpsearch.results.diagnose import Diagnosis, as_study, diagnosis_of
from hpsearch.results.points import Reading, StudyPoints, points_of_study
from hpsearch.study import keys
from hpsearch.study.record import Aim
from hpsearch.study.storage import StorageLike

FILL_METHODS: tuple[str, ...] = tuple(AIMING_KNOBS)


def check_fill_method(method: str) -> None:
    """Refuse an inner method fill cannot aim with, in one line (Jacobian descent: with why)."""
    if method == "jd":
        raise HpsearchError(JD_CANNOT_AIM)
    check_choice("fill method", method, FILL_METHODS)


def knob_range(stretch: Stretch, method: str) -> tuple[float, float]:
    """The range of ``method``'s knob that aims into ``stretch`` (ε for MDMM, else w)."""
    return stretch.epsilon_range if method == "mdmm" else stretch.w_range


def spread_aims(
    points: StudyPoints, analysis: FrontAnalysis, method: str, total: int
) -> list[tuple[int, float]]:
    """``(stretch index, knob value)`` for ``total`` trials (at least one per stretch),
    apportioned to the stretches by the length of their chords (normalized by the front's
    span) and evenly spaced strictly inside each stretch's knob range."""
    xy = points.xy
    front = xy[analysis.front]
    span = np.maximum(front.max(0) - front.min(0), 1e-12)
    stretches = analysis.stretches
    lengths = np.array([np.hypot(*((xy[s.end] - xy[s.start]) / span)) for s in stretches])
    aims: list[tuple[int, float]] = []
    for k, (stretch, m) in enumerate(
        zip(stretches, apportion(lengths, max(len(stretches), total)), strict=True)
    ):
        lo, hi = knob_range(stretch, method)
        aims += [(k, lo + (hi - lo) * (j + 1) / (m + 1)) for j in range(m)]
    return aims


def apportion(lengths: np.ndarray, total: int) -> list[int]:
    """Split ``total`` in proportion to ``lengths`` (largest remainders), at least 1 each."""
    k = len(lengths)
    extra = total - k
    share = lengths / lengths.sum() * extra if lengths.sum() > 0 else np.full(k, extra / k)
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts))[: extra - counts.sum()]:
        counts[i] += 1
    return [int(c) + 1 for c in counts]


def end_params(
    points: StudyPoints, stretch: Stretch, trial_params: dict[int, dict[str, Any]], drop: set[str]
) -> dict[str, Any]:
    """The parameters of the run that reached ``stretch``'s nearer (smaller-L1) end, less
    ``drop`` (α and the knob)."""
    params = trial_params[int(points.numbers[stretch.start])]
    return {k: v for k, v in params.items() if k not in drop}


@dataclass(frozen=True)
class AimPlan:
    """The trials that aim into a study's stretches, for your own loop.

    Attributes:
        study_name: The study.
        method: ``"chebyshev"`` or ``"mdmm"``.
        diagnosis: The diagnosis the plan aims by.
        aims: One :class:`hpsearch.study.record.Aim` per trial to run.
    """

    study_name: str
    method: str
    diagnosis: Diagnosis
    aims: list[Aim]

    @property
    def knob(self) -> str:
        return AIMING_KNOBS[self.method]

    @property
    def minimized_form(self) -> str:
        """What to pass as the losses where the study maximizes one (else ``""``): the knob
        values and the ideal point are of the minimized form, −value."""
        points = self.diagnosis.points
        negated = [n for n, s in zip(points.loss_names, points.signs, strict=True) if s < 0]
        if not negated:
            return ""
        return (
            f"{self.knob} and the ideal point are of the minimized form: pass "
            + " and ".join(f"−{name}" for name in negated)
            + " as the loss to hpsearch.Chebyshev / hpsearch.MDMM"
        )

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """One row per trial: the stretch, its ends (the study's own signs), the knob value,
        the ideal point and scales (Chebyshev; both of the minimized form, see
        :attr:`minimized_form`) and the other parameters."""
        points, stretches = self.diagnosis.points, self.diagnosis.stretches
        shown = points.shown(points.xy)
        others = sorted({k for a in self.aims for k in (a.params or {})})

        def end(i: int) -> str:
            return f"({shown[i, 0]:.4g}, {shown[i, 1]:.4g})"

        columns = ["stretch", "kind", "from", "to", self.knob]
        columns += ["ideal", "scales"] if self.method == "chebyshev" else []
        rows = []
        for a in self.aims:
            s = stretches[a.stretch]
            row = [a.stretch, s.kind, end(s.start), end(s.end), round(a.value, 6)]
            if self.method == "chebyshev":
                row += [f"({a.ideal[0]:g}, {a.ideal[1]:g})", f"({a.scales[0]:g}, {a.scales[1]:g})"]
            rows.append(row + [(a.params or {}).get(k) for k in others])
        return columns + others, rows

    def enqueue(self, study: optuna.Study) -> int:
        """Queue the trials into ``study`` (``enqueue_trial``): the knob and the other
        parameters as fixed parameters, the whole aim as the user attribute that
        :func:`hpsearch.fill_aim` reads. Returns how many were queued.

        Raises:
            HpsearchError: ``study`` was made by hpsearch: its runs train as its study file
                says and would not read the aim (``hpsearch fill`` trains aimed runs itself).
        """
        if keys.STUDY in study.user_attrs:
            raise HpsearchError(
                f"study {study.study_name!r} was made by hpsearch, whose runs train as its study "
                f"file says: run hpsearch fill {study.study_name} (without --plan) to train the "
                "aimed trials in a follow-up study"
            )
        for aim in self.aims:
            study.enqueue_trial(
                {**(aim.params or {}), aim.knob: aim.value},
                user_attrs={keys.FILL_AIM: aim.to_attr()},
            )
        return len(self.aims)


def plan_fill(
    study: optuna.Study | str,
    n: int = 8,
    method: str = "chebyshev",
    alpha: str | None = None,
    losses: tuple[str, str] | None = None,
    objectives: tuple[int, int] | None = None,
    *,
    storage: StorageLike | None = None,
) -> AimPlan:
    """The knob values that aim into each stretch of a study's front that linear α skips.

    Args:
        study: An ``optuna.Study``, or a study name with ``storage``.
        n: Trials to plan, spread over the stretches by their length (at least one each).
        method: ``"chebyshev"`` (weight ``w`` of L1, ideal point and scales given) or
            ``"mdmm"`` (budget ``ε`` on L2).
        alpha: The parameter that holds α (see :func:`hpsearch.diagnose`).
        losses: The user attributes of L1 and L2 of a single-objective study.
        objectives: The two objectives of a study with three or more.
        storage: The storage of a study given by name.

    Returns:
        The :class:`AimPlan`; ``plan.enqueue(study)`` queues it.

    Raises:
        HpsearchError: As :func:`hpsearch.diagnose`; an unknown method; no stretch to aim at
            (a convex front); ``n`` below the number of stretches.
    """
    check_fill_method(method)
    study = as_study(study, storage, "plan_fill")
    reading = Reading(alpha=alpha, losses=losses, objectives=objectives)
    points = points_of_study(study, reading)
    diagnosis = diagnosis_of(points)
    stretches = diagnosis.stretches
    if not stretches:
        raise HpsearchError(
            f"study {study.study_name!r} has no concave stretch or hole to aim at: "
            f"{diagnosis.verdict}"
        )
    if n < len(stretches):
        raise HpsearchError(f"n={n} is fewer than the {len(stretches)} stretches to aim at")
    knob = AIMING_KNOBS[method]
    trial_params = {t.number: t.params for t in study.get_trials(deepcopy=False)}
    drop = {alpha or "alpha", knob}
    aims = [
        Aim(
            method=method,
            value=float(value),
            ideal=stretches[k].w_ideal,
            scales=(1.0, 1.0),
            stretch=k,
            params=end_params(points, stretches[k], trial_params, drop),
        )
        for k, value in spread_aims(points, diagnosis.analysis, method, n)
    ]
    return AimPlan(study.study_name, method, diagnosis, aims)
