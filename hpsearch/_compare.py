"""Put several studies in one objective space: fronts, hypervolumes, the scalarization gap."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpsearch._analysis import (
    REFERENCE,
    FrontAnalysis,
    Normalization,
    analyze_front,
    feasible_pareto_mask,
    verdict,
)
from hpsearch._errors import HpsearchError
from hpsearch._report import StudyPoints, format_table, load_stored_study, study_points


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
    """

    studies: list[StudyComparison]
    normalization: Normalization
    union_points: np.ndarray
    union: FrontAnalysis
    loss_names: tuple[str, str]

    def table(self) -> tuple[list[str], list[list[object]]]:
        """Per study: trials, Pareto size, HV, supported HV, gap, gap %, unsupported, wall time."""
        columns = [
            "study",
            "trials",
            "pareto",
            "HV",
            "HV_supported",
            "gap",
            "gap_%",
            "unsupported",
            "wall_s",
        ]
        rows = [
            [
                s.points.study_name,
                len(s.points.numbers),
                len(s.analysis.front),
                round(s.analysis.hypervolume, 4),
                round(s.analysis.hypervolume_supported, 4),
                round(s.analysis.gap, 4),
                round(100 * s.analysis.gap_fraction, 1),
                s.analysis.n_unsupported,
                round(s.wall_seconds, 1),
            ]
            for s in self.studies
        ]
        u = self.union
        rows.append(
            [
                "(all together)",
                len(self.union_points),
                len(u.front),
                round(u.hypervolume, 4),
                round(u.hypervolume_supported, 4),
                round(u.gap, 4),
                round(100 * u.gap_fraction, 1),
                u.n_unsupported,
                None,
            ]
        )
        return columns, rows

    def verdicts(self) -> list[str]:
        """One line per study and one for all trials together."""
        lines = [
            f"{s.points.study_name}: {verdict(s.xy, s.analysis, self.loss_names)}"
            for s in self.studies
        ]
        lines.append(
            "all studies together: " + verdict(self.union_points, self.union, self.loss_names)
        )
        if self.union.knee >= 0:
            study, number = self.locate(self.union.knee)
            x, y = self.union_points[self.union.knee]
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


def compare_points(items: list[tuple[StudyPoints, float]]) -> Comparison:
    """Analyse studies' points under one normalization (see :mod:`hpsearch._analysis`).

    Args:
        items: ``(points, wall seconds)`` per study.

    Returns:
        The :class:`Comparison`.

    Raises:
        HpsearchError: The studies trade off different losses.
    """
    names = {p.loss_names for p, _ in items}
    if len(names) > 1:
        raise HpsearchError(f"cannot compare studies of different loss pairs: {sorted(names)}")
    fronts = [p.xy[feasible_pareto_mask(p.xy, p.feasible)] for p, _ in items]
    norm = Normalization.from_fronts([f for f in fronts if len(f)] or [np.zeros((1, 2))])
    studies = [StudyComparison(p, analyze_front(p.xy, p.feasible, norm), w) for p, w in items]
    union_xy = np.concatenate([s.xy for s in studies])
    union_ok = np.concatenate([s.points.feasible for s in studies])
    return Comparison(
        studies=studies,
        normalization=norm,
        union_points=union_xy,
        union=analyze_front(union_xy, union_ok, norm),
        loss_names=items[0][0].loss_names,
    )


def compare_studies(storage: str, study_names: list[str]) -> Comparison:
    """Load stored studies (of the same setup) and compare them in one objective space."""
    if not study_names:
        raise HpsearchError("name at least one study to compare")
    return compare_points(
        [(study_points(storage, n), study_wall_seconds(storage, n)) for n in study_names]
    )


def study_wall_seconds(storage: str, study_name: str) -> float:
    """Seconds from the first trial's start to the last finished trial's end."""
    trials = [
        t
        for t in load_stored_study(storage, study_name).get_trials(deepcopy=False)
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    if not trials:
        return 0.0
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return (end - start).total_seconds()


def write_comparison(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.png``, ``compare.csv`` and ``compare.md`` (table and verdicts).

    Returns:
        ``{"png": …, "csv": …, "md": …}``.
    """
    from hpsearch._plots import plot_comparison

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns, rows = comparison.table()
    paths = {"png": out / "compare.png", "csv": out / "compare.csv", "md": out / "compare.md"}
    plot_comparison(comparison, paths["png"])
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    md = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    md += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    ref = ", ".join(f"{r:g}" for r in REFERENCE)
    md += [
        "",
        f"Hypervolumes in normalized units (ideal → 0, nadir of the joint front → 1 per "
        f"loss), reference point ({ref}).",
        "",
    ]
    md += [f"- {line}" for line in comparison.verdicts()]
    paths["md"].write_text("\n".join(md) + "\n")
    return paths


def format_comparison(comparison: Comparison) -> str:
    """The table and the verdicts as plain text."""
    columns, rows = comparison.table()
    return format_table(columns, rows) + "\n\n" + "\n".join(comparison.verdicts())
