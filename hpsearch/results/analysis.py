"""Analysis of trials in the objective space (validation L1, validation L2), both minimized.

Pareto front, hypervolume, the lower convex hull (the points that minimize L1 + α·L2 for some
α), the α that gets each front point, the concave stretches that linear α skips, the
scalarization gap and the knee. Plain NumPy arrays in and out.

Normalization (so that hypervolumes of different studies are comparable): every loss is mapped
by ``(L − ideal) / (nadir − ideal)``, where ``ideal`` and ``nadir`` are the per-loss minimum and
maximum over the *joint* non-dominated front of all trials of a comparison: a dominated,
unconverged study cannot move them. The reference point is ``(1.1, 1.1)`` in those units
(:data:`REFERENCE`), so every front point counts, the extremes of the joint front included,
and a hypervolume is at most 1.21; a fixed reference point in raw units may be given instead,
and every hypervolume is also reported in raw units.

Two signs of a concave stretch, i.e. of a trade-off that no α reaches:

- **the jump** (a linear-α study alone): descent on L1 + α·L2 leaps across a concave stretch as
  α crosses some value: converged runs at neighbouring α land on the two sides of a hole in the
  front and nothing lands between. Told apart from a front merely sampled too sparsely by
  comparing the leap with how fast the reached point moves with α on either side of it.
- **the hull** (any study, or several together): front points above the lower convex hull are
  not the minimizer of L1 + α·L2 for any α (descent on a non-convex model may still stop there,
  in a local minimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REFERENCE: tuple[float, float] = (1.1, 1.1)
# A Pareto point above the lower convex hull of its front and more than this far from it
# (normalized units, see height_above_hull) is "unsupported": it is not the minimizer of
# L1 + α·L2 for any α.
SUPPORT_TOL = 0.005
# A stretch above the hull counts as concave only where the point of a converged run stands this
# far (normalized units) from it: measured fronts are noisy, and a bump of noise is no evidence.
CONCAVE_HEIGHT = 0.02
# A hole: two neighbouring front points at least this far apart (normalized units).
HOLE_MIN = 0.15
# A jump: the hole is this many times wider than the motion of the reached point with α on
# either side of it predicts across the α step (see :func:`find_jumps`). From
# UNRESOLVED_FACTOR up to JUMP_FACTOR the hole is reported as unresolved: α was sampled too
# sparsely there to tell a jump from a fast but continuous move. Chosen on simulated linear
# studies of convex, concave and mixed fronts (SGD and Adam, 16 seeds each): no convex front
# reached 4, and most concave ones were far above 5 (benchmarks/concave_fronts.py).
JUMP_FACTOR = 5.0
UNRESOLVED_FACTOR = 2.0
# A run has converged when its validation point moved at most this far (normalized units) over
# the last CONVERGENCE_WINDOW of its epochs; only converged runs are evidence of a jump or of
# points above the hull.
CONVERGED_TOL = 0.01
CONVERGENCE_WINDOW = 0.2
# Runs on each side of a hole, nearest in α, that measure how fast the point moves with α.
JUMP_CONTEXT = 3
# Below this scalarization gap (% of HV), a concave verdict says that the gap cannot see the
# stretch (a linear-α study's points are all on its own hull).
GAP_UNSEEN_PCT = 1.0


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
    return np.asarray(~dominated)


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
        """Ideal and nadir of the joint non-dominated front of the given point sets (each k × 2).

        Only the joint front matters: adding a dominated set changes nothing. Rows with a NaN
        or an infinity are ignored.
        """
        pts = np.concatenate([np.asarray(f, float).reshape(-1, 2) for f in fronts])
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts) == 0:
            raise ValueError("no points to normalize")
        pts = pts[pareto_mask(pts)]
        ideal, nadir = pts.min(0), pts.max(0)
        # A degenerate loss (one value) keeps unit scale rather than dividing by zero.
        nadir = np.where(nadir > ideal, nadir, ideal + 1.0)
        return cls(ideal=ideal, nadir=nadir)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Raw losses → normalized units."""
        return (np.asarray(points, float) - self.ideal) / (self.nadir - self.ideal)

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Normalized units → raw losses."""
        return np.asarray(points, float) * (self.nadir - self.ideal) + self.ideal


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
    """How far each front point lies above the hull: its distance to the hull's polyline
    (same units; 0 on or below it).

    The distance, not the vertical gap: on a steep stretch of the hull (L2 falling fast while
    L1 barely moves) a point a hair to the right of it stands far *above* it, and noise of
    0.001 in L1 would read as a concave bulge.
    """
    front = np.asarray(front, float).reshape(-1, 2)
    hx, hy = front[hull, 0], front[hull, 1]
    if len(hull) == 1:
        return np.where(front[:, 0] == hx[0], front[:, 1] - hy[0], 0.0).clip(min=0)
    above = front[:, 1] > np.interp(front[:, 0], hx, hy)
    a = np.stack([hx[:-1], hy[:-1]], axis=1)  # segment starts, s × 2
    d = np.stack([hx[1:], hy[1:]], axis=1) - a
    rel = front[:, None, :] - a[None]  # n × s × 2
    t = ((rel * d[None]).sum(-1) / (d * d).sum(-1).clip(min=1e-300)).clip(0, 1)
    gap = np.linalg.norm(rel - t[..., None] * d[None], axis=-1).min(1)
    return np.where(above, gap, 0.0)


@dataclass(frozen=True)
class Stretch:
    """A stretch of the front that descent on L1 + α·L2 skips, and the knobs that aim into it.

    Attributes:
        start, end: Indices (into the analysed points) of its two ends: ``start`` has the
            smaller L1 (and larger L2).
        kind: ``"jump"``: seen in a linear-α study, the reached point leaps across a hole as α
            crosses ``alpha``; ``"hull"``: front points stand above the convex hull between
            ``start`` and ``end``; ``"hole"``: a hole that α was sampled too sparsely around
            to tell a jump from a fast continuous move (not counted as concave).
        alpha: Where the jump happens: the geometric mean of ``alpha_bracket`` (a jump), or
            the α at which both ends tie, ``(L1_end − L1_start) / (L2_start − L2_end)`` (hull).
        alpha_bracket: The neighbouring α of the converged runs that landed on either side
            (a jump), or None.
        epsilon_range: MDMM budgets that aim into the stretch: L2 strictly between its ends.
        w_range: Chebyshev weights of L1 that aim into it, for the ideal ``w_ideal`` and
            ``normalize = "none"``: the point P is reached by ``w = (P2 − z2) / (P1 − z1 + P2
            − z2)``.
        w_ideal: The ideal point z of ``w_range``: (0, 0) when no loss is negative, else the
            front's ideal.
        evidence: How strong the sign is: for a jump, the hole's width over the width the
            neighbouring runs predict; for the hull, the largest height above it (normalized).
    """

    start: int
    end: int
    kind: str
    alpha: float
    alpha_bracket: tuple[float, float] | None
    epsilon_range: tuple[float, float]
    w_range: tuple[float, float]
    w_ideal: tuple[float, float]
    evidence: float


@dataclass(frozen=True)
class FrontAnalysis:
    """The Pareto front of a set of trials and what linear α can reach of it.

    Attributes:
        front: Indices (into the analysed points) of the Pareto-optimal counted points, by
            increasing L1.
        supported: Boolean mask over ``front``: on the lower convex hull (within
            :data:`SUPPORT_TOL`), i.e. the minimizer of L1 + α·L2 for some α.
        hull: Indices (into the points) of the hull vertices, by increasing L1.
        hypervolume: HV of the front (normalized units, reference ``reference``).
        hypervolume_supported: HV of the supported points alone.
        hypervolume_raw: HV of the front in raw units, reference ``reference_raw``.
        reference_raw: The reference point in raw units.
        reference: The same point in normalized units.
        stretches: The concave stretches (:class:`Stretch`), by increasing L1.
        knee: Index (into the points) of the knee of the front, or -1 (fewer than 3 front
            points, or no interior point below the line through the ends).
        alpha_ranges: Per front point, the interval ``(lo, hi)`` of α for which it minimizes
            L1 + α·L2 over the front (raw units; ``hi`` may be inf), or None (unsupported).
        converged: Per analysed point, whether its run converged (all True without histories).
        unsettled: Indices (into the points) of front points at least :data:`CONCAVE_HEIGHT`
            above the hull, outside every concave stretch, whose runs had not converged: they
            may be a concave stretch or runs on their way to the hull; only longer runs tell.
    """

    front: np.ndarray
    supported: np.ndarray
    hull: np.ndarray
    hypervolume: float
    hypervolume_supported: float
    hypervolume_raw: float = 0.0
    reference_raw: tuple[float, float] = (math.nan, math.nan)
    reference: tuple[float, float] = REFERENCE
    stretches: list[Stretch] = field(default_factory=list)
    knee: int = -1
    alpha_ranges: list[tuple[float, float] | None] = field(default_factory=list)
    converged: np.ndarray | None = None
    unsettled: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    @property
    def gap_hv(self) -> float:
        """Scalarization gap in HV units (normalized): ``HV(front) − HV(supported part)``, the
        area that only the front points above the convex hull add.

        It measures what points found above the hull add; it cannot measure a stretch that no
        trial reached. A linear-α study rarely has a point inside the stretch it skips, so its
        own gap stays near 0 even when the diagnosis finds a jump: the stretch shows up in the
        gap once a pareto, Chebyshev or MDMM study (or ``hpsearch fill``) puts points there.
        """
        return self.hypervolume - self.hypervolume_supported

    @property
    def gap_pct(self) -> float:
        """:attr:`gap_hv` as a percentage of the front's hypervolume (0 for an empty front)."""
        return 100 * self.gap_hv / self.hypervolume if self.hypervolume > 0 else 0.0

    @property
    def n_unsupported(self) -> int:
        return int((~self.supported).sum())

    @property
    def concave(self) -> bool:
        """Whether a concave stretch was found (a jump, or points well above the hull)."""
        return any(s.kind != "hole" for s in self.stretches)

    @property
    def undecided(self) -> bool:
        """Not concave, and not convex either: a hole the α sampled cannot settle, or points
        well above the hull from runs that had not converged."""
        return not self.concave and (bool(self.stretches) or len(self.unsettled) > 0)


def converged_mask(drift: np.ndarray | None, normalization: Normalization, n: int) -> np.ndarray:
    """Which runs converged: their point moved at most :data:`CONVERGED_TOL` (normalized) over
    the last :data:`CONVERGENCE_WINDOW` of their epochs.

    Args:
        drift: n × 2 absolute change of (val L1, val L2) over that window, raw units; None
            (no histories) counts every run as converged.
        normalization: Gives the units.
        n: Number of runs.
    """
    if drift is None:
        return np.ones(n, bool)
    scaled = np.abs(np.asarray(drift, float)) / (normalization.nadir - normalization.ideal)
    return np.nan_to_num(scaled, nan=0.0).max(1) <= CONVERGED_TOL


def alpha_ranges(
    raw_front: np.ndarray, hull_local: np.ndarray, supported: np.ndarray
) -> list[tuple[float, float] | None]:
    """For each point of a front (k × 2 raw, by increasing L1), the α for which it minimizes
    ``L1 + α·L2`` over the front: ``(lo, hi)``, ``hi`` possibly inf; None if unsupported.

    A hull vertex wins between the slopes of its two hull edges; a supported point on an edge
    (within tolerance) ties only at that edge's α.
    """
    edges = [
        _tie_alpha(raw_front[a], raw_front[b])
        for a, b in zip(hull_local[:-1], hull_local[1:], strict=True)
    ]
    bounds = [0.0, *edges, math.inf]
    out: list[tuple[float, float] | None] = []
    for i in range(len(raw_front)):
        if not supported[i]:
            out.append(None)
            continue
        where = np.flatnonzero(hull_local == i)
        if len(where):
            v = int(where[0])
            out.append((bounds[v], bounds[v + 1]))
            continue
        # On an edge: the one whose L1 span holds it.
        e = int(np.searchsorted(raw_front[hull_local, 0], raw_front[i, 0])) - 1
        e = min(max(e, 0), len(edges) - 1)
        out.append((edges[e], edges[e]) if edges else (0.0, math.inf))
    return out


def _tie_alpha(a: np.ndarray, b: np.ndarray) -> float:
    """The α at which ``a`` (smaller L1, larger L2) and ``b`` tie on L1 + α·L2."""
    drop = float(a[1] - b[1])
    return float(b[0] - a[0]) / drop if drop > 0 else math.inf


def chebyshev_weight(point: np.ndarray, ideal: tuple[float, float] | np.ndarray) -> float:
    """The Chebyshev weight w of L1 (``normalize = "none"``, ideal ``ideal``) whose minimizer is
    ``point``: where ``w·(P1 − z1) = (1 − w)·(P2 − z2)``; 0.5 at the ideal itself."""
    d1, d2 = float(point[0] - ideal[0]), float(point[1] - ideal[1])
    return d2 / (d1 + d2) if d1 + d2 > 0 else 0.5


def _w_range(a: np.ndarray, b: np.ndarray, ideal: np.ndarray) -> tuple[float, float]:
    wa, wb = chebyshev_weight(a, ideal), chebyshev_weight(b, ideal)
    return (min(wa, wb), max(wa, wb))


def convergence_drift(loss1: list[float], loss2: list[float]) -> tuple[float, float]:
    """How far a run's validation (L1, L2) moved over the last :data:`CONVERGENCE_WINDOW` of
    its epochs (per-epoch histories; 0 with fewer than two epochs)."""
    if len(loss1) < 2:
        return (0.0, 0.0)
    back = max(0, int(round(len(loss1) * (1 - CONVERGENCE_WINDOW))) - 1)
    return (abs(loss1[-1] - loss1[back]), abs(loss2[-1] - loss2[back]))


def find_jumps(
    z: np.ndarray, alpha: np.ndarray, usable: np.ndarray
) -> list[tuple[int, int, tuple[float, float], float]]:
    """The jumps of a linear-α study: holes in the front that α leaps across.

    Among the usable runs (converged, α > 0), a hole is two neighbouring front points at least
    :data:`HOLE_MIN` apart. Every run lies on one side of it: by ``s = L1 − L2`` (normalized,
    which grows along a front) beyond an end, else on the side of the nearer end (a dominated
    run above the hole is a local minimum near one end, not a point inside the hole). As α
    grows the reached point moves toward lower L2, so a jump is where the runs of the lower
    side end and those of the upper side begin in α. The jump is told from mere sparse sampling
    by the runs nearest to it in α on each side
    (:data:`JUMP_CONTEXT`): how far they move per unit of log α predicts how far the point
    would move across the α step between the two sides if the front were continuous there;
    the hole must be :data:`JUMP_FACTOR` times wider. Runs of both sides that overlap in α
    (where α and the initialization decide the side) count as a jump too.

    Args:
        z: n × 2 normalized points.
        alpha: α of each run.
        usable: Which runs may serve as evidence.

    Returns:
        ``(start, end, (α below, α above), evidence)`` per hole whose evidence is at least
        :data:`UNRESOLVED_FACTOR`, indices into ``z``.
    """
    ok = usable & np.isfinite(alpha) & (alpha > 0) & np.isfinite(z).all(1)
    idx = np.flatnonzero(ok)
    if len(idx) < 4:
        return []
    front = idx[pareto_mask(z[idx])]
    front = front[np.lexsort((z[front, 1], z[front, 0]))]
    s = z[:, 0] - z[:, 1]
    log_a = np.log(alpha)
    jumps = []
    for a, b in zip(front[:-1], front[1:], strict=True):
        if np.hypot(*(z[b] - z[a])) < HOLE_MIN:
            continue
        gap = float(s[b] - s[a])
        # A run beyond an end (by s) is on that side; a dominated run between them (a local
        # minimum near one end, above the hole) is on the side of the end it is nearer.
        nearer_a = np.hypot(*(z[idx] - z[a]).T) <= np.hypot(*(z[idx] - z[b]).T)
        lower = idx[(s[idx] <= s[a] + 1e-12) | ((s[idx] < s[b] - 1e-12) & nearer_a)]
        upper = idx[(s[idx] >= s[b] - 1e-12) | ((s[idx] > s[a] + 1e-12) & ~nearer_a)]
        if len(lower) < 2 or len(upper) < 2:
            continue
        low_near = lower[np.argsort(log_a[lower])[-JUMP_CONTEXT:]]  # largest α below the hole
        up_near = upper[np.argsort(log_a[upper])[:JUMP_CONTEXT]]  # smallest α above it
        below, above = float(log_a[low_near].max()), float(log_a[up_near].min())
        if above > below:
            step = above - below
            # The faster side: a convex front's point may stand still on one side (at an end
            # of the front) and move fast on the other.
            rate = max(_rate(s[low_near], log_a[low_near]), _rate(s[up_near], log_a[up_near]))
            predicted = rate * step
            evidence = gap / predicted if predicted > 0 else math.inf
        else:
            evidence = math.inf  # both sides reached at overlapping α: not a function of α
        if evidence >= UNRESOLVED_FACTOR:
            bracket = (math.exp(min(below, above)), math.exp(max(below, above)))
            jumps.append((int(a), int(b), bracket, evidence))
    return jumps


def _rate(s: np.ndarray, log_a: np.ndarray) -> float:
    """How far the point moves per unit of log α among runs on one side (their span)."""
    span = float(log_a.max() - log_a.min())
    return float(s.max() - s.min()) / span if span > 0 else 0.0


def analyze_front(
    points: np.ndarray,
    counted: np.ndarray | None = None,
    normalization: Normalization | None = None,
    reference: tuple[float, float] = REFERENCE,
    tol: float = SUPPORT_TOL,
    *,
    alpha: np.ndarray | None = None,
    drift: np.ndarray | None = None,
    reference_raw: tuple[float, float] | None = None,
    settled: np.ndarray | None = None,
) -> FrontAnalysis:
    """Pareto front, hypervolume, convex hull, α ranges, concave stretches and the gap.

    Args:
        points: n × 2 raw (validation L1, validation L2) values.
        counted: Which points count on the front (None: all). In a scalarized study an MDMM
            run that missed its budget does not; in a pareto study every run counts.
        normalization: Map to normalized units (default: from this front alone).
        reference: Reference point in normalized units (ignored with ``reference_raw``).
        tol: Height above the hull (normalized units) beyond which a point is unsupported.
        alpha: α of each run of a linear-α study (NaN where none): enables the jump
            diagnosis (:func:`find_jumps`).
        drift: n × 2 change of each run's validation losses over the last
            :data:`CONVERGENCE_WINDOW` of its epochs (raw units), to tell converged runs.
        reference_raw: A fixed reference point in raw units.
        settled: Which runs converged by other evidence than a history of both losses (the
            intermediate values of a study hpsearch did not run), or None.

    Returns:
        A :class:`FrontAnalysis`; indices refer to rows of ``points``.
    """
    points = np.asarray(points, float).reshape(-1, 2)
    n = len(points)
    counted = np.ones(n, bool) if counted is None else np.asarray(counted, bool)
    counted = counted & np.isfinite(points).all(1)
    front = np.flatnonzero(feasible_pareto_mask(points, counted))
    if len(front) == 0:
        empty = np.zeros(0, int)
        return FrontAnalysis(empty, np.zeros(0, bool), empty, 0.0, 0.0)
    front = front[np.lexsort((points[front, 1], points[front, 0]))]
    norm = normalization or Normalization.from_fronts([points[front]])
    if reference_raw is not None:
        r1, r2 = (float(v) for v in norm.apply(np.asarray(reference_raw, float)))
        reference = (r1, r2)
    i1, i2 = (float(v) for v in norm.invert(np.asarray(reference, float)))
    ref_raw = (i1, i2)
    z_all = norm.apply(points)
    z = z_all[front]
    hull_local = lower_convex_hull(z)
    height = height_above_hull(z, hull_local)
    supported = height <= tol
    supported[hull_local] = True
    raw_front = points[front]
    converged = converged_mask(drift, norm, n)
    if settled is not None:
        converged = converged & np.asarray(settled, bool)

    stretches = _stretches(points, z_all, front, hull_local, height, converged, alpha)
    unsettled = _unsettled(points, front, height, converged, stretches)
    knee = knee_index(z)
    return FrontAnalysis(
        front=front,
        supported=supported,
        hull=front[hull_local],
        hypervolume=hypervolume_2d(z, reference),
        hypervolume_supported=hypervolume_2d(z[supported], reference),
        hypervolume_raw=hypervolume_2d(raw_front, ref_raw),
        reference_raw=ref_raw,
        reference=reference,
        stretches=stretches,
        knee=int(front[knee]) if knee >= 0 else -1,
        alpha_ranges=alpha_ranges(raw_front, hull_local, supported),
        converged=converged,
        unsettled=unsettled,
    )


def _stretches(
    points: np.ndarray,
    z_all: np.ndarray,
    front: np.ndarray,
    hull_local: np.ndarray,
    height: np.ndarray,
    converged: np.ndarray,
    alpha: np.ndarray | None,
) -> list[Stretch]:
    """The stretches linear α skips, by increasing L1: the jumps (and unresolved holes) of a
    linear-α study, then the stretches above the hull that no jump already covers."""
    raw_front = points[front]
    w_ideal = np.where(raw_front.min(0) >= 0, 0.0, raw_front.min(0))

    def stretch(a: int, b: int, kind: str, alpha_at: float, bracket, evidence: float) -> Stretch:
        pa, pb = points[a], points[b]
        return Stretch(
            start=a,
            end=b,
            kind=kind,
            alpha=alpha_at,
            alpha_bracket=bracket,
            epsilon_range=(float(pb[1]), float(pa[1])),
            w_range=_w_range(pa, pb, w_ideal),
            w_ideal=(float(w_ideal[0]), float(w_ideal[1])),
            evidence=float(evidence),
        )

    stretches = []
    if alpha is not None:
        for a, b, bracket, evidence in find_jumps(z_all, np.asarray(alpha, float), converged):
            kind = "jump" if evidence >= JUMP_FACTOR else "hole"
            at = math.sqrt(bracket[0] * bracket[1])
            stretches.append(stretch(a, b, kind, at, bracket, evidence))
    z = z_all[front]
    for a, b in zip(hull_local[:-1], hull_local[1:], strict=True):
        # Only converged runs are evidence: a run still moving may stand anywhere.
        between = (z[:, 0] > z[a, 0]) & (z[:, 0] < z[b, 0]) & converged[front]
        top = float(height[between].max()) if between.any() else 0.0
        fa, fb = int(front[a]), int(front[b])
        if top < CONCAVE_HEIGHT or any(_overlaps(s, points, fa, fb) for s in stretches):
            continue
        stretches.append(stretch(fa, fb, "hull", _tie_alpha(points[fa], points[fb]), None, top))
    stretches.sort(key=lambda s: points[s.start, 0])
    return stretches


def _unsettled(
    points: np.ndarray,
    front: np.ndarray,
    height: np.ndarray,
    converged: np.ndarray,
    stretches: list[Stretch],
) -> np.ndarray:
    """Front points well above the hull, outside every concave stretch, whose runs were still
    moving: neither evidence of a concave stretch nor of noise."""
    inside = np.zeros(len(front), bool)
    for s in stretches:
        if s.kind != "hole":
            lo, hi = sorted((points[s.start, 0], points[s.end, 0]))
            inside |= (points[front, 0] >= lo) & (points[front, 0] <= hi)
    return front[(height >= CONCAVE_HEIGHT) & ~converged[front] & ~inside]


def _overlaps(s: Stretch, points: np.ndarray, a: int, b: int) -> bool:
    """Whether the L1 span of stretch ``s`` and that of points ``a``–``b`` overlap."""
    lo, hi = points[s.start, 0], points[s.end, 0]
    return bool(points[a, 0] < hi and points[b, 0] > lo)


def knee_index(front: np.ndarray) -> int:
    """Index of the knee of a front (k × 2, normalized, any order), or -1 if it has none.

    The knee is the interior point farthest below the straight line through the two extreme
    points (min L1 and min L2): the trade-off where giving up one loss buys the most of the
    other. A front of fewer than three points has none, and so has a front whose interior
    points all lie on, above or within :data:`SUPPORT_TOL` below that line (it bulges away
    from the ideal: concave).
    """
    front = np.asarray(front, float).reshape(-1, 2)
    if len(front) < 3:
        return -1
    i_a, i_b = int(np.argmin(front[:, 0])), int(np.argmin(front[:, 1]))
    a, b = front[i_a], front[i_b]
    d = b - a
    norm = float(np.hypot(*d)) or 1.0
    # Signed distance to the line a→b; below the line (toward the ideal) is positive.
    dist = ((front[:, 0] - a[0]) * d[1] - (front[:, 1] - a[1]) * d[0]) / norm
    dist[[i_a, i_b]] = -np.inf  # the ends are never the knee
    best = int(np.argmax(dist))
    return best if dist[best] > SUPPORT_TOL else -1


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


def combination_text(names: tuple[str, str], signs: tuple[int, int] = (1, 1)) -> str:
    """``L1 + α·L2`` in the losses' names, a maximized one as ``(−name)``: what linear α
    descends on in the minimized form."""
    term = [name if sign > 0 else f"(−{name})" for name, sign in zip(names, signs, strict=True)]
    return f"{term[0]} + α·{term[1]}"


def _stretch_phrases(
    points: np.ndarray,
    analysis: FrontAnalysis,
    names: tuple[str, str],
    signs: tuple[int, int],
) -> tuple[list[str], list[str]]:
    """:func:`verdict`'s words for each stretch: the concave ones (jumps and hull stretches)
    and the unresolved holes, each with the knobs that aim into it."""
    combo = combination_text(names, signs)
    shown = np.asarray(points, float) * np.asarray(signs, float)
    minimized = "" if signs == (1, 1) else " (of the minimized form: −value of a maximized one)"

    def at(i: int) -> str:
        return f"({names[0]}={shown[i, 0]:.4g}, {names[1]}={shown[i, 1]:.4g})"

    def aim(s: Stretch) -> str:
        return (
            f"to aim into it: MDMM ε in ({s.epsilon_range[0]:.4g}, {s.epsilon_range[1]:.4g}) "
            f"or Chebyshev w in ({s.w_range[0]:.3g}, {s.w_range[1]:.3g}) (ideal "
            f'({s.w_ideal[0]:g}, {s.w_ideal[1]:g}), normalize "none"){minimized}'
        )

    concave, holes = [], []
    for s in analysis.stretches:
        lo, hi = s.alpha_bracket or (s.alpha, s.alpha)
        if s.kind == "jump":
            concave.append(
                f"linear α jumps from {at(s.start)} to {at(s.end)} at α ≈ {s.alpha:.3g} "
                f"(converged runs at α {lo:.3g} and {hi:.3g} land on either side, none "
                f"between: the points between are not the minimizer of {combo} for any α); "
                + aim(s)
            )
        elif s.kind == "hull":
            concave.append(
                f"front points between {at(s.start)} and {at(s.end)} stand above the convex "
                f"hull: they are not the minimizer of {combo} for any α (descent may still stop "
                f"there in a local minimum; the ends tie at α ≈ {s.alpha:.3g}); " + aim(s)
            )
        else:
            holes.append(
                f"unresolved hole between {at(s.start)} and {at(s.end)}: α was sampled too "
                f"sparsely between {lo:.3g} and {hi:.3g} to tell a concave jump from a fast "
                f"move; sample α densely there, or {aim(s)}"
            )
    return concave, holes


def verdict(
    points: np.ndarray,
    analysis: FrontAnalysis,
    names: tuple[str, str],
    signs: tuple[int, int] = (1, 1),
) -> str:
    """The diagnosis in words: concave stretches with the knobs that reach them, and the gap.

    Args:
        points: The analysed points (minimized).
        analysis: Their :class:`FrontAnalysis`.
        names: The two losses' names.
        signs: Per loss, -1 where the study maximizes it (shown in its own sign; ε, w and the
            ideal point stay those of the minimized form, ``−value``).
    """
    n = len(analysis.front)
    if n == 0:
        return "no complete trial counts: no front to judge"
    gap = f"scalarization gap {analysis.gap_pct:.1f}% of HV"
    combo = combination_text(names, signs)
    concave, holes = _stretch_phrases(points, analysis, names, signs)
    moving = len(analysis.unsettled)
    if concave:
        k = len(concave)
        text = f"concave: {k} stretch{'es' if k > 1 else ''} that linear α skips: "
        text += "; ".join(concave)
    elif moving:
        # Not "convex": points above the hull carry the gap, and nothing says they will stay.
        many = moving > 1
        text = (
            f"undecided: {moving} Pareto point{'s' if many else ''} stand{'' if many else 's'} "
            f"well above the convex hull, but {'their runs' if many else 'its run'} had not "
            f"converged (the validation losses still moved over the last "
            f"{100 * CONVERGENCE_WINDOW:.0f}% of epochs): a concave stretch, or runs still on "
            "their way to the hull; train longer or decay the learning rate (lr_decay), then "
            "look again"
        )
    elif holes:
        # Not "convex": the α sampled cannot rule a concave stretch out inside the holes.
        return (
            "undecided: every Pareto point found is on the convex hull, but "
            + "; ".join(holes)
            + f" ({gap} over {n} Pareto points)"
        )
    else:
        text = (
            f"convex within tolerance: every Pareto point on the convex hull minimizes {combo} "
            "for some α"
        )
    if holes:
        text += "; " + "; ".join(holes)
    tail = f" ({gap} over {n} Pareto points)"
    if concave and analysis.gap_pct < GAP_UNSEEN_PCT:
        # A jump with (nearly) nothing found above the hull: say why the gap reads ~0.
        tail = (
            f" ({gap} over {n} Pareto points: the gap counts only points found above the hull, "
            "and this study has none inside the stretch it skips, so its gap cannot show what "
            "it misses; hpsearch fill measures that)"
        )
    return text + tail
