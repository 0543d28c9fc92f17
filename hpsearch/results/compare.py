"""Put several studies in one objective space: fronts, hypervolumes, the scalarization gap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from hpsearch.errors import HpsearchError
from hpsearch.results.analysis import (
    FrontAnalysis,
    Normalization,
    analyze_front,
    verdict,
)
from hpsearch.results.points import Reading, StudyPoints, points_of_study
from hpsearch.results.report import alpha_text, format_table, load_stored_study
from hpsearch.study.storage import StorageLike, open_storage


@dataclass(frozen=True)
class StudyComparison:
    """One study of a comparison.

    Attributes:
        points: The study's complete trials.
        analysis: Its front analysed under the comparison's common normalization.
        wall_seconds: From the first trial's start to the last trial's end.
    """

    points: StudyPoints
    analysis: FrontAnalysis
    wall_seconds: float

    @property
    def xy(self) -> np.ndarray:
        return self.points.xy


@dataclass(frozen=True)
class Comparison:
    """Studies in one objective space, and the front of all their trials together.

    Attributes:
        studies: Per-study results.
        normalization: The one normalization used for every hypervolume.
        union_points: Every trial of every study (n × 2).
        union: Analysis of the joint front of ``union_points``.
        loss_names: Names of L1 and L2.
        signs: Per loss, -1 where the studies maximize it (shown in its own sign).
    """

    studies: list[StudyComparison]
    normalization: Normalization
    union_points: np.ndarray
    union: FrontAnalysis
    loss_names: tuple[str, str]
    signs: tuple[int, int] = (1, 1)

    def table(self) -> tuple[list[str], list[list[object]]]:
        """Per study and for all together: trials, Pareto size, HV (normalized and raw),
        supported HV, the scalarization gap in HV units (``gap_hv``) and as % of HV
        (``gap_pct``), points above the hull, concave or not, wall time."""
        columns = [
            "study",
            "trials",
            "pareto",
            "HV",
            "HV_raw",
            "HV_supported",
            "gap_hv",
            "gap_pct",
            "unsupported",
            "concave",
            "wall_s",
        ]

        def row(name: str, n: int, a: FrontAnalysis, wall: float | None) -> list[object]:
            return [
                name,
                n,
                len(a.front),
                round(a.hypervolume, 4),
                float(f"{a.hypervolume_raw:.4g}"),
                round(a.hypervolume_supported, 4),
                round(a.gap_hv, 4),
                round(a.gap_pct, 1),
                a.n_unsupported,
                "yes" if a.concave else "no",
                None if wall is None else round(wall, 1),
            ]

        rows = [
            row(s.points.study_name, len(s.points.numbers), s.analysis, s.wall_seconds)
            for s in self.studies
        ]
        rows.append(row("(all together)", len(self.union_points), self.union, None))
        return columns, rows

    def front_rows(self) -> tuple[list[str], list[list[object]]]:
        """The joint front point by point: where it comes from and the α that gets it."""
        l1, l2 = self.loss_names
        prefix = "val_" if all(s.points.hpsearch_made for s in self.studies) else ""
        columns = ["study", "trial", f"{prefix}{l1}", f"{prefix}{l2}", "alpha_range"]
        rows = []
        shown = self.union_points * np.asarray(self.signs, float)
        for i, alphas in zip(self.union.front, self.union.alpha_ranges, strict=True):
            study, number = self.locate(int(i))
            x, y = shown[i]
            rows.append([study, number, float(x), float(y), alpha_text(alphas)])
        return columns, rows

    def to_json(self) -> dict[str, Any]:
        """The comparison as plain data (``compare.json``, see docs/trade-offs.md)."""
        norm = self.normalization
        studies = [
            _analysis_json(s.points.study_name, s.xy, s.points.numbers, s.analysis)
            for s in self.studies
        ]
        numbers = np.concatenate([s.points.numbers for s in self.studies])
        joint = _analysis_json("(all together)", self.union_points, numbers, self.union)
        for entry, i in zip(joint["front"], self.union.front, strict=True):
            entry["study"] = self.locate(int(i))[0]
        if joint["knee"] is not None:
            joint["knee"]["study"] = self.locate(self.union.knee)[0]
        return {
            "loss_names": list(self.loss_names),
            "reference_point": _finite(self.union.reference_raw),
            "normalization": {"ideal": _finite(norm.ideal), "nadir": _finite(norm.nadir)},
            "studies": studies,
            "joint": joint,
        }

    def verdicts(self) -> list[str]:
        """One line per study and one for all trials together."""
        lines = [
            f"{s.points.study_name}: {verdict(s.xy, s.analysis, self.loss_names, s.points.signs)}"
            + reading_notes(s.points)
            for s in self.studies
        ]
        lines.append(
            "all studies together: "
            + verdict(self.union_points, self.union, self.loss_names, self.signs)
        )
        if self.union.knee >= 0:
            study, number = self.locate(self.union.knee)
            x, y = self.union_points[self.union.knee] * np.asarray(self.signs, float)
            lines.append(
                f"knee of the joint front: {study} trial {number} "
                f"({self.loss_names[0]}={x:.4g}, {self.loss_names[1]}={y:.4g})"
            )
        return lines

    def locate(self, index: int) -> tuple[str, int]:
        """The study name and trial number of row ``index`` of ``union_points``."""
        for s in self.studies:
            if index < len(s.points.numbers):
                return s.points.study_name, int(s.points.numbers[index])
            index -= len(s.points.numbers)
        raise IndexError(index)


def compare_points(
    items: list[tuple[StudyPoints, float]], reference_raw: tuple[float, float] | None = None
) -> Comparison:
    """Analyse studies' points under one normalization (see :mod:`hpsearch.results.analysis`).

    Ideal and nadir come from the joint non-dominated front of every counted trial of every
    study, so a dominated (say, unconverged) study cannot move anyone's numbers.

    Args:
        items: ``(points, wall seconds)`` per study.
        reference_raw: A fixed reference point in raw units (default: (1.1, 1.1) in
            normalized units).

    Returns:
        The :class:`Comparison`.

    Raises:
        HpsearchError: The studies trade off different losses, or the reference point does not
            lie beyond the joint front.
    """
    names = {p.loss_names for p, _ in items}
    if len(names) > 1:
        raise HpsearchError(f"cannot compare studies of different loss pairs: {sorted(names)}")
    signs = {p.signs for p, _ in items}
    if len(signs) > 1:
        raise HpsearchError(
            "cannot compare studies that maximize different losses: one study minimizes what "
            "another maximizes"
        )
    counted = [p.xy[p.counted] for p, _ in items]
    norm = Normalization.from_fronts(
        [c for c in counted if np.isfinite(c).all(1).any()] or [np.zeros((1, 2))]
    )
    if reference_raw is not None and not (np.asarray(reference_raw) >= norm.nadir).all():
        raise HpsearchError(
            f"reference point {tuple(reference_raw)} must be at least the joint front's nadir "
            f"({norm.nadir[0]:.4g}, {norm.nadir[1]:.4g}) in both losses, so that every front "
            "point counts"
        )
    studies = [StudyComparison(p, p.analyze(norm, reference_raw), w) for p, w in items]
    union_xy = np.concatenate([s.xy for s in studies])
    union_ok = np.concatenate([s.points.counted for s in studies])
    return Comparison(
        studies=studies,
        normalization=norm,
        union_points=union_xy,
        # No jump diagnosis across studies: their α runs start from different initializations.
        union=analyze_front(union_xy, union_ok, norm, reference_raw=reference_raw),
        loss_names=items[0][0].loss_names,
        signs=items[0][0].signs,
    )


def compare_studies(
    storage: StorageLike,
    study_names: list[str],
    reference_raw: tuple[float, float] | None = None,
    reading: Reading | None = None,
) -> Comparison:
    """Load stored studies (of the same setup) and compare them in one objective space.

    The storage is opened once, and each study read once (each as ``reading`` says: see
    :func:`hpsearch.results.points.points_of_study`).
    """
    if not study_names:
        raise HpsearchError("name at least one study to compare")
    store = open_storage(storage, must_exist=True, read_only=True)
    studies = [load_stored_study(store, n) for n in study_names]
    return compare_points(
        [(points_of_study(s, reading), wall_seconds(s)) for s in studies], reference_raw
    )


def reading_notes(points: StudyPoints) -> str:
    """What a verdict adds about how the study was read: convergence assumed (no trial says
    whether its run converged), trials left out, no parameter holding α."""
    notes = []
    if points.convergence == "assumed":
        notes.append(
            "convergence assumed: the trials record no per-epoch history nor intermediate "
            "values, so every run counts as converged; record them with hpsearch.record"
        )
    if points.alpha_missing is not None:
        notes.append(
            f"no trial has a parameter {points.alpha_missing!r}: a jump of linear α cannot be "
            "seen; name the parameter that holds α with --alpha PARAM (alpha= in Python)"
        )
    if points.unread:
        read = len(points.numbers)
        notes.append(
            f"{read} of {read + points.unread} complete trials read: the others record no "
            "pair of losses"
        )
    return "".join(f" [{note}]" for note in notes)


def wall_seconds(study: optuna.Study) -> float:
    """Seconds from the study's first trial's start to its last finished trial's end."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    if not trials:
        return 0.0
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return (end - start).total_seconds()


def _finite(values: Any) -> list[float | None]:
    # JSON has no inf or NaN: null stands for them.
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, float).ravel()]


def _analysis_json(
    name: str, xy: np.ndarray, numbers: np.ndarray, a: FrontAnalysis
) -> dict[str, Any]:
    def point(i: int) -> list[float | None]:
        return _finite(xy[i])

    return {
        "name": name,
        "trials": len(xy),
        "pareto": len(a.front),
        "hv": a.hypervolume,
        "hv_raw": a.hypervolume_raw,
        "hv_supported": a.hypervolume_supported,
        "gap_hv": a.gap_hv,
        "gap_pct": a.gap_pct,
        "concave": a.concave,
        "stretches": [
            {
                "kind": s.kind,
                "from": point(s.start),
                "to": point(s.end),
                "alpha": s.alpha if math.isfinite(s.alpha) else None,
                "alpha_bracket": None if s.alpha_bracket is None else _finite(s.alpha_bracket),
                "epsilon_range": _finite(s.epsilon_range),
                "w_range": _finite(s.w_range),
                "w_ideal": _finite(s.w_ideal),
                "evidence": s.evidence if math.isfinite(s.evidence) else None,
            }
            for s in a.stretches
        ],
        "knee": None if a.knee < 0 else {"trial": int(numbers[a.knee]), "point": point(a.knee)},
        "front": [
            {
                "trial": int(numbers[i]),
                "point": point(int(i)),
                "supported": bool(ok),
                "alpha_range": None if r is None else _finite(r),
            }
            for i, ok, r in zip(a.front, a.supported, a.alpha_ranges, strict=True)
        ],
    }


def format_comparison(comparison: Comparison) -> str:
    """The table and the verdicts as plain text."""
    columns, rows = comparison.table()
    return "\n\n".join(
        [
            format_table(columns, rows),
            "joint front (alpha_range: the α for which the point minimizes L1 + α·L2):",
            format_table(*comparison.front_rows()),
            "\n".join(comparison.verdicts()),
        ]
    )
