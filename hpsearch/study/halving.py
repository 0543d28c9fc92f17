"""Successive halving across a population batch, for one objective or a Pareto front.

Members of a batch train in lock-step, so at a rung epoch they all arrive together: the rung
compares every run that reached it (this batch's, and the study's stored trials'), and stops
those outside the best ``1/η`` that some better run beats by a margin. One objective ranks by
its value, as asynchronous successive halving does (ASHA, Li et al., 2020); two rank as
NSGA-II does (non-dominated sorting, then crowding distance), as MO-ASHA does (Schmucker et
al., 2021). Optuna prunes one objective only (optuna#3450), and one trial at a time.

Pure numbers: nothing here knows of trials or of training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, ...]
"""A run's objective values at a rung, each to be minimized (a maximized one is negated)."""


def nondominated_ranks(points: np.ndarray) -> np.ndarray:
    """Pareto rank of each row (0: on the front) for minimization, by repeated peeling."""
    n = len(points)
    ranks = np.full(n, -1)
    # dominates[i, j]: row i is <= row j everywhere and < somewhere.
    le = (points[:, None, :] <= points[None, :, :]).all(axis=2)
    lt = (points[:, None, :] < points[None, :, :]).any(axis=2)
    dominates: np.ndarray = np.asarray(le & lt)
    left = np.ones(n, dtype=bool)
    rank = 0
    while left.any():
        beaten = dominates[np.ix_(left, left)].any(axis=0)
        front = np.flatnonzero(left)[~beaten]
        ranks[front] = rank
        left[front] = False
        rank += 1
    return ranks


def crowding_distances(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row within its set (the ends are infinite)."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        values = points[order, j]
        span = values[-1] - values[0]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span > 0:
            distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def best_first(points: np.ndarray) -> np.ndarray:
    """Row indices from best to worst: by Pareto rank, then the most isolated first (one
    objective: by value)."""
    ranks = nondominated_ranks(points)
    crowding = np.zeros(len(points))
    for rank in np.unique(ranks):
        rows = np.flatnonzero(ranks == rank)
        crowding[rows] = crowding_distances(points[rows])
    return np.lexsort((-crowding, ranks))


def beaten_by_margin(points: np.ndarray, by: np.ndarray, margin: float) -> np.ndarray:
    """Whether each row of ``points`` is beaten on every objective, by ``margin`` times the
    spread of ``points`` on that objective, by some row of ``by``."""
    gap = margin * (points.max(axis=0) - points.min(axis=0))
    better = (by[None, :, :] <= points[:, None, :] - gap).all(axis=2)
    same = (by[None, :, :] == points[:, None, :]).all(axis=2)
    return (better & ~same).any(axis=1)


@dataclass(frozen=True)
class Halving:
    """The rule: rungs at ``min_resource · η^i`` epochs (below the last epoch); at a rung with
    at least η runs, a run stops if it is outside the best ``⌈n/η⌉`` and one of those beats
    it by ``margin`` (a fraction of the rung's spread on each objective; 0: plainly)."""

    epochs: int
    min_resource: int = 1
    reduction_factor: int = 3
    margin: float = 0.0

    @property
    def rungs(self) -> tuple[int, ...]:
        out, r = [], self.min_resource
        while r < self.epochs:
            out.append(r)
            r *= self.reduction_factor
        return tuple(out)


@dataclass
class RungTable:
    """The points every run reached each rung at, and the decisions for new arrivals."""

    rule: Halving
    points: dict[int, list[Point]] = field(default_factory=dict)

    def record(self, rung: int, point: Point) -> None:
        """A run that reached ``rung`` earlier (a stored trial); a non-finite point is left
        out (a figure not computed at that epoch)."""
        if all(math.isfinite(v) for v in point):
            self.points.setdefault(rung, []).append(point)

    def arrive(self, rung: int, arrivals: Sequence[Point]) -> list[bool]:
        """Record runs that reach ``rung`` together, and say which of them stop (a
        non-finite point is neither recorded nor stopped)."""
        finite = [all(math.isfinite(v) for v in p) for p in arrivals]
        peers = self.points.setdefault(rung, [])
        first = len(peers)
        peers.extend(p for p, ok in zip(arrivals, finite, strict=True) if ok)
        n = len(peers)
        if n < self.rule.reduction_factor or n == first:
            return [False] * len(arrivals)
        points = np.asarray(peers, dtype=float)
        keep = best_first(points)[: math.ceil(n / self.rule.reduction_factor)]
        kept = np.zeros(n, dtype=bool)
        kept[keep] = True
        beaten = beaten_by_margin(points, points[keep], self.rule.margin)
        stops = iter(bool(not kept[i] and beaten[i]) for i in range(first, n))
        return [next(stops) if ok else False for ok in finite]
