"""Analysis of trials in the objective space (validation L1, validation L2), both minimized.

Pareto front, hypervolume, the lower convex hull (the points some linear α can reach), the
scalarization gap, and picking one trial from a front. Plain NumPy arrays in and out.

Normalization (so that hypervolumes of different studies are comparable): every loss is mapped
by ``(L − ideal) / (nadir − ideal)``, where ``ideal`` and ``nadir`` are the per-loss minimum and
maximum over the Pareto-front points of *all* studies in a comparison. The reference point is
``(1.1, 1.1)`` in those units (:data:`REFERENCE`), so every front point counts, the extremes of
the joint front included, and a hypervolume is at most 1.21. One normalization and one
reference point serve every study of a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REFERENCE: tuple[float, float] = (1.1, 1.1)
# A Pareto point more than this far (normalized units) above the lower convex hull of its front
# is "unsupported": no linear weight α makes it the minimizer of L1 + α·L2.
SUPPORT_TOL = 0.005
# Below this fraction of the front's hypervolume, the verdict calls the gap negligible.
NEGLIGIBLE_GAP = 0.01


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` (n × m, every column minimized) are Pareto-optimal.

    A row is dropped when another row is <= in every column and < in one. Duplicated optimal
    rows are all kept.

    Args:
        points: Objective values, one row per trial.

    Returns:
        Boolean mask of length n.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be a 2-D array, got shape {points.shape}")
    if points.shape[1] == 2:
        return _pareto_mask_2d(points)
    le = (points[:, None, :] <= points[None, :, :]).all(-1)  # le[j, i]: j weakly dominates i
    lt = (points[:, None, :] < points[None, :, :]).any(-1)
    dominated = (le & lt).any(0)
    return ~dominated


def _pareto_mask_2d(points: np.ndarray) -> np.ndarray:
    """:func:`pareto_mask` for two columns in O(n log n) (the pairwise test is O(n²) memory:
    8 GB for a 20,001-point reference front)."""
    mask = np.ones(len(points), dtype=bool)  # a row with a NaN neither dominates nor is dominated
    finite = ~np.isnan(points).any(1)
    if not finite.any():
        return mask
    rows, inverse = np.unique(points[finite], axis=0, return_inverse=True)  # by x, then y
    # A distinct row is dominated iff an earlier one (x <= its x) has y <= its y.
    best_before = np.minimum.accumulate(np.concatenate([[np.inf], rows[:-1, 1]]))
    mask[finite] = ~(best_before <= rows[:, 1])[inverse.reshape(-1)]
    return mask


def feasible_pareto_mask(points: np.ndarray, feasible: np.ndarray | None = None) -> np.ndarray:
    """Pareto-optimal rows among the feasible ones (infeasible rows are never on the front).

    Args:
        points: n × 2 objective values.
        feasible: Boolean mask (None: all feasible).

    Returns:
        Boolean mask of length n.
    """
    points = np.asarray(points, dtype=float)
    feasible = np.ones(len(points), bool) if feasible is None else np.asarray(feasible, bool)
    mask = np.zeros(len(points), bool)
    if feasible.any():
        mask[np.flatnonzero(feasible)] = pareto_mask(points[feasible])
    return mask


@dataclass(frozen=True)
class Normalization:
    """Affine map of each loss to ``(L − ideal) / (nadir − ideal)``."""

    ideal: np.ndarray
    nadir: np.ndarray

    @classmethod
    def from_fronts(cls, fronts: list[np.ndarray]) -> Normalization:
        """Ideal and nadir over the union of the given fronts (each k × 2)."""
        pts = np.concatenate([np.asarray(f, float).reshape(-1, 2) for f in fronts])
        if len(pts) == 0:
            raise ValueError("no points to normalize")
        ideal, nadir = pts.min(0), pts.max(0)
        # A degenerate loss (one value) keeps unit scale rather than dividing by zero.
        nadir = np.where(nadir > ideal, nadir, ideal + 1.0)
        return cls(ideal=ideal, nadir=nadir)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, float) - self.ideal) / (self.nadir - self.ideal)


def hypervolume_2d(points: np.ndarray, reference: tuple[float, float] = REFERENCE) -> float:
    """Area dominated by ``points`` (k × 2, minimized) and bounded by ``reference``.

    Points that do not dominate the reference contribute nothing.
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    ref = np.asarray(reference, float)
    pts = pts[(pts < ref).all(1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # the sweep below skips dominated points
    area, prev_y = 0.0, ref[1]
    for x, y in pts:
        if y < prev_y:
            area += (ref[0] - x) * (prev_y - y)
            prev_y = y
    return float(area)


def lower_convex_hull(front: np.ndarray) -> np.ndarray:
    """Indices (into ``front``) of the vertices of its lower-left convex hull, by increasing L1.

    These are the supported points: each minimizes ``L1 + α·L2`` for some α >= 0.
    """
    front = np.asarray(front, float).reshape(-1, 2)
    order = np.lexsort((front[:, 1], front[:, 0]))
    hull: list[int] = []
    for i in order:
        while len(hull) >= 2:
            o, a, b = front[hull[-2]], front[hull[-1]], front[i]
            cross = (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
            if cross > 0:  # a left turn keeps the hull convex from below
                break
            hull.pop()
        hull.append(int(i))
    # Only the descending part (from the min-L1 point to the min-L2 point) supports the front.
    end = int(np.argmin([front[i, 1] for i in hull]))
    return np.array(hull[: end + 1], dtype=int)


def height_above_hull(front: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """How far each front point lies above the hull (vertical distance, same units)."""
    front = np.asarray(front, float).reshape(-1, 2)
    hx, hy = front[hull, 0], front[hull, 1]
    if len(hull) == 1:
        return np.where(front[:, 0] == hx[0], front[:, 1] - hy[0], 0.0).clip(min=0)
    return (front[:, 1] - np.interp(front[:, 0], hx, hy)).clip(min=0)


@dataclass(frozen=True)
class FrontAnalysis:
    """The Pareto front of a set of trials and what linear α can reach of it.

    Attributes:
        front: Indices (into the analysed points) of the Pareto-optimal feasible points,
            by increasing L1.
        supported: Boolean mask over ``front``: on the lower convex hull (within
            :data:`SUPPORT_TOL`), i.e. reachable by some α.
        hull: Indices (into the points) of the hull vertices, by increasing L1.
        hypervolume: HV of the front (normalized units, :data:`REFERENCE`).
        hypervolume_supported: HV of the supported points alone.
        stretches: Concave stretches: pairs of hull vertices (indices into the points) with
            unsupported front points between them.
        knee: Index (into the points) of the knee of the front, or -1 for an empty front.
    """

    front: np.ndarray
    supported: np.ndarray
    hull: np.ndarray
    hypervolume: float
    hypervolume_supported: float
    stretches: list[tuple[int, int]] = field(default_factory=list)
    knee: int = -1

    @property
    def gap(self) -> float:
        """Scalarization gap: ``HV(front) − HV(supported part)``."""
        return self.hypervolume - self.hypervolume_supported

    @property
    def gap_fraction(self) -> float:
        """The gap as a fraction of the front's hypervolume (0 for an empty front)."""
        return self.gap / self.hypervolume if self.hypervolume > 0 else 0.0

    @property
    def n_unsupported(self) -> int:
        return int((~self.supported).sum())


def analyze_front(
    points: np.ndarray,
    feasible: np.ndarray | None = None,
    normalization: Normalization | None = None,
    reference: tuple[float, float] = REFERENCE,
    tol: float = SUPPORT_TOL,
) -> FrontAnalysis:
    """Pareto front, hypervolume, convex hull, unsupported points and scalarization gap.

    Args:
        points: n × 2 raw (validation L1, validation L2) values.
        feasible: Which points count (None: all).
        normalization: Map to normalized units (default: from this front alone).
        reference: Reference point in normalized units.
        tol: Height above the hull (normalized units) beyond which a point is unsupported.

    Returns:
        A :class:`FrontAnalysis`; indices refer to rows of ``points``.
    """
    points = np.asarray(points, float).reshape(-1, 2)
    mask = feasible_pareto_mask(points, feasible)
    front = np.flatnonzero(mask)
    if len(front) == 0:
        empty = np.zeros(0, int)
        return FrontAnalysis(empty, np.zeros(0, bool), empty, 0.0, 0.0)
    front = front[np.lexsort((points[front, 1], points[front, 0]))]
    norm = normalization or Normalization.from_fronts([points[front]])
    z = norm.apply(points[front])
    hull_local = lower_convex_hull(z)
    height = height_above_hull(z, hull_local)
    supported = height <= tol
    supported[hull_local] = True
    stretches = []
    for a, b in zip(hull_local[:-1], hull_local[1:], strict=True):
        between = (z[:, 0] > z[a, 0]) & (z[:, 0] < z[b, 0]) & ~supported
        if between.any():
            stretches.append((int(front[a]), int(front[b])))
    return FrontAnalysis(
        front=front,
        supported=supported,
        hull=front[hull_local],
        hypervolume=hypervolume_2d(z, reference),
        hypervolume_supported=hypervolume_2d(z[supported], reference),
        stretches=stretches,
        knee=int(front[knee_index(z)]),
    )


def knee_index(front: np.ndarray) -> int:
    """Index of the knee of a front (k × 2, normalized, any order).

    The knee is the point farthest below the straight line through the two extreme points
    (min L1 and min L2): the trade-off where giving up one loss buys the most of the other.
    With fewer than three points, the point with the smallest L1 + L2.
    """
    front = np.asarray(front, float).reshape(-1, 2)
    if len(front) < 3:
        return int(np.argmin(front.sum(1)))
    a, b = front[np.argmin(front[:, 0])], front[np.argmin(front[:, 1])]
    d = b - a
    norm = float(np.hypot(*d)) or 1.0
    # Signed distance to the line a→b; below the line (toward the ideal) is positive.
    dist = ((front[:, 0] - a[0]) * d[1] - (front[:, 1] - a[1]) * d[0]) / norm
    return int(np.argmax(dist))


def preferred_index(front: np.ndarray, weight: float) -> int:
    """Index of the front point (normalized) closest to the ideal in weighted Chebyshev terms.

    Args:
        front: k × 2 normalized points.
        weight: Importance of L1 in (0, 1); L2 gets ``1 − weight``.

    Returns:
        The index minimizing ``max(weight·L1, (1 − weight)·L2)``.
    """
    if not 0 < weight < 1:
        raise ValueError(f"weight must be in (0, 1), got {weight}")
    front = np.asarray(front, float).reshape(-1, 2)
    return int(np.argmin(np.maximum(weight * front[:, 0], (1 - weight) * front[:, 1])))


def verdict(points: np.ndarray, analysis: FrontAnalysis, names: tuple[str, str]) -> str:
    """The diagnosis in words: concave stretches, unreachable points and the HV gap."""
    n = len(analysis.front)
    if n == 0:
        return "no feasible complete trial: no front to judge"
    k = analysis.n_unsupported
    gap = f"HV gap {100 * analysis.gap_fraction:.1f}%"
    if not analysis.stretches:
        return (
            f"front of {n} points is convex within tolerance: linear α can reach every "
            f"Pareto point ({gap})"
        )

    def at(i: int) -> str:
        return f"({names[0]}={points[i, 0]:.4g}, {names[1]}={points[i, 1]:.4g})"

    where = "; ".join(f"between {at(a)} and {at(b)}" for a, b in analysis.stretches)
    text = (
        f"front has concave stretches {where}; linear α cannot reach {k} of {n} Pareto "
        f"points; {gap}"
    )
    if analysis.gap_fraction < NEGLIGIBLE_GAP:
        text += " (negligible: linear α reaches practically the same hypervolume)"
    return text
