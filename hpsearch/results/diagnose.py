"""``hpsearch.diagnose``: can α reach the trade-off you want? The analysis ``hpsearch show``
prints, for any two-objective Optuna study, in memory or in a storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from hpsearch.errors import HpsearchError
from hpsearch.results.analysis import FrontAnalysis, Normalization, Stretch, verdict
from hpsearch.results.compare import reading_notes
from hpsearch.results.points import Reading, StudyPoints, points_of_study
from hpsearch.results.report import alpha_text, format_table, load_stored_study
from hpsearch.study.storage import StorageLike


@dataclass(frozen=True)
class FillEffect:
    """What the trials that ``hpsearch fill --enqueue`` queued added to a study's front.

    Attributes:
        aimed: How many complete trials were aimed.
        before, after: Hypervolume of the front without them and with them, in one
            normalization (the joint front's; reference (1.1, 1.1)).
    """

    aimed: int
    before: float
    after: float


@dataclass(frozen=True)
class Diagnosis:
    """The diagnosis of a study's front.

    Attributes:
        points: The study's complete trials as points (:class:`StudyPoints`).
        analysis: Their front, hull, stretches, α intervals and hypervolume.
        verdict: The diagnosis in words (what ``hpsearch show`` prints after "diagnosis:").
        fill: What aimed trials added, when the study has some (else None).
    """

    points: StudyPoints
    analysis: FrontAnalysis
    verdict: str
    fill: FillEffect | None = None

    @property
    def concave(self) -> bool:
        """Whether linear α skips a stretch of the front (a jump, or points above the hull)."""
        return self.analysis.concave

    @property
    def undecided(self) -> bool:
        """Neither concave nor convex by the evidence (see :class:`FrontAnalysis`)."""
        return self.analysis.undecided

    @property
    def stretches(self) -> list[Stretch]:
        """The stretches linear α skips (and unresolved holes), by increasing L1."""
        return self.analysis.stretches

    @property
    def hypervolume(self) -> float:
        """HV of the front, normalized by its own ideal and nadir, reference (1.1, 1.1)."""
        return self.analysis.hypervolume

    def front(self) -> list[dict[str, Any]]:
        """The Pareto front, point by point: trial number, both losses in the study's own
        signs, whether the point is on the convex hull, and the α interval for which it
        minimizes L1 + α·L2 (None: no α)."""
        shown = self.points.shown(self.points.xy)
        names = self.points.loss_names
        return [
            {
                "trial": int(self.points.numbers[i]),
                names[0]: float(shown[i, 0]),
                names[1]: float(shown[i, 1]),
                "supported": bool(ok),
                "alpha_range": alphas,
            }
            for i, ok, alphas in zip(
                self.analysis.front,
                self.analysis.supported,
                self.analysis.alpha_ranges,
                strict=True,
            )  # fmt: skip
        ]

    def __str__(self) -> str:
        shown = self.points.shown(self.points.xy)
        rows = [
            [int(self.points.numbers[i]), float(shown[i, 0]), float(shown[i, 1]), alpha_text(a)]
            for i, a in zip(self.analysis.front, self.analysis.alpha_ranges, strict=True)
        ]
        table = format_table(["trial", *self.points.loss_names, "alpha_range"], rows)
        lines = [table, "", f"diagnosis: {self.verdict}"]
        if self.fill is not None:
            lines.append(describe_fill(self.fill))
        return "\n".join(lines)


def diagnose(
    study: optuna.Study | str,
    alpha: str | None = None,
    losses: tuple[str, str] | None = None,
    objectives: tuple[int, int] | None = None,
    *,
    storage: StorageLike | None = None,
) -> Diagnosis:
    """Diagnose a study's front: which stretches linear α skips, and what aims into them.

    Args:
        study: An ``optuna.Study`` (in memory or loaded), or a study name with ``storage``.
        alpha: The parameter that holds α (the weight of L2 in L1 + α·L2; default: one named
            ``alpha``, if any trial has it).
        losses: Two user attributes holding L1 and L2, for a single-objective study whose
            trials record them (default: what :func:`hpsearch.record` writes).
        objectives: The two objectives to trade off, of a study with three or more.
        storage: The storage of a study given by name.

    Returns:
        The :class:`Diagnosis`: ``print()`` it for what ``hpsearch show`` prints.

    Raises:
        HpsearchError: No such study, no complete trial, one objective and no losses
            recorded, or three objectives and no two picked.
    """
    study = as_study(study, storage, "diagnose")
    points = points_of_study(study, Reading(alpha=alpha, losses=losses, objectives=objectives))
    return diagnosis_of(points)


def as_study(study: optuna.Study | str, storage: StorageLike | None, caller: str) -> optuna.Study:
    """The study itself, or the one of that name in ``storage``."""
    if not isinstance(study, str):
        return study
    if storage is None:
        raise HpsearchError(f"{caller}({study!r}): give the storage= that holds it")
    return load_stored_study(storage, study)


def diagnosis_of(points: StudyPoints) -> Diagnosis:
    """The :class:`Diagnosis` of a study's points already read."""
    analysis = points.analyze()
    text = verdict(points.xy, analysis, points.loss_names, points.signs) + reading_notes(points)
    return Diagnosis(points, analysis, text, fill_effect(points))


def fill_effect(points: StudyPoints) -> FillEffect | None:
    """The hypervolume of the front without and with the aimed trials (None without any)."""
    if points.aimed is None:
        return None
    plain = ~points.aimed
    xy = points.xy
    if not (points.counted & plain).any():
        return None
    norm = Normalization.from_fronts([xy[points.counted]])
    before = points.analyze(norm, only=plain).hypervolume
    after = points.analyze(norm).hypervolume
    return FillEffect(int(points.aimed.sum()), before, after)


def describe_fill(effect: FillEffect) -> str:
    """One line on what the aimed trials added."""
    gain = f"{100 * (effect.after / effect.before - 1):+.1f}%; " if effect.before > 0 else ""
    return (
        f"fill: {effect.aimed} trial{'s' if effect.aimed != 1 else ''} aimed by hpsearch fill; "
        f"hypervolume {effect.before:.4f} without them, {effect.after:.4f} with them "
        f"({gain}normalized by the joint front, reference (1.1, 1.1))"
    )
