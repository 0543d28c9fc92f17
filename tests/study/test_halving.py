"""The rule of batch pruning on hand-made points: which runs a rung stops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpsearch.study.halving import (
    Halving,
    RungTable,
    beaten_by_margin,
    best_first,
    crowding_distances,
    nondominated_ranks,
)


def test_rungs_grow_by_the_reduction_factor_below_the_last_epoch() -> None:
    assert Halving(epochs=20, min_resource=2, reduction_factor=3).rungs == (2, 6, 18)
    assert Halving(epochs=18, min_resource=2, reduction_factor=3).rungs == (2, 6)
    assert Halving(epochs=1, min_resource=1, reduction_factor=2).rungs == ()


def test_pareto_ranks_and_crowding() -> None:
    points = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [5, 5], [2, 2]], dtype=float)
    # Two equal points do not dominate each other; (3, 3) is behind (2, 2).
    assert nondominated_ranks(points).tolist() == [0, 0, 0, 1, 2, 0]
    front = np.array([[0, 4], [1, 3], [3, 1], [4, 0]], dtype=float)
    # Ends infinite; (1, 3): neighbours (0, 4) and (3, 1) -> 3/4 + 3/4.
    assert crowding_distances(front).tolist() == [math.inf, 1.5, 1.5, math.inf]
    order = best_first(np.array([[5, 5], [0, 4], [1, 3], [2, 2.5], [4, 0]], dtype=float))
    assert order[-1] == 0  # the dominated point comes last
    assert set(order[:2].tolist()) == {1, 4}  # the front's ends first


def test_one_objective_keeps_the_best_third() -> None:
    table = RungTable(Halving(epochs=9, reduction_factor=3))
    stops = table.arrive(1, [(float(v),) for v in [5, 1, 9, 3, 2, 8, 4, 7, 6]])
    # ceil(9/3) = 3 kept: the values 1, 2, 3.
    assert [v for v, s in zip([5, 1, 9, 3, 2, 8, 4, 7, 6], stops, strict=True) if not s] == [
        1,
        3,
        2,
    ]


def test_a_margin_spares_runs_close_to_the_kept_ones() -> None:
    table = RungTable(Halving(epochs=9, reduction_factor=3, margin=0.5))
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    stops = table.arrive(1, [(float(v),) for v in values])
    # Spread 8, margin 4: stopped only where the best kept (1) is at least 4 lower.
    assert [v for v, s in zip(values, stops, strict=True) if s] == [5, 6, 7, 8, 9]


def test_a_point_on_the_rungs_front_is_never_stopped() -> None:
    table = RungTable(Halving(epochs=9, reduction_factor=3))
    front = [(float(x), 6.0 - x) for x in range(6)]
    behind = [(4.0, 5.0), (5.0, 4.0)]
    stops = table.arrive(1, front + behind)
    # 8 points, 3 kept; the other front points are beaten by nobody, the two behind are.
    assert stops == [False] * 6 + [True, True]


def test_too_few_peers_stop_nobody_and_stored_peers_count() -> None:
    rule = Halving(epochs=9, reduction_factor=3)
    assert RungTable(rule).arrive(1, [(1.0,), (9.0,)]) == [False, False]
    table = RungTable(rule)
    for v in (1.0, 2.0, 3.0):
        table.record(1, (v,))
    assert table.arrive(1, [(9.0,)]) == [True]  # beaten by runs of earlier batches
    assert table.arrive(3, [(9.0,)]) == [False]  # another rung: alone there


def test_non_finite_points_are_neither_recorded_nor_stopped() -> None:
    table = RungTable(Halving(epochs=9, reduction_factor=3))
    table.record(1, (math.nan,))
    assert table.points == {}
    stops = table.arrive(1, [(1.0,), (math.nan,), (2.0,), (3.0,), (9.0,)])
    assert stops == [False, False, False, True, True]
    assert len(table.points[1]) == 4


@pytest.mark.parametrize(
    "margin, beaten", [(0.0, [False, True, True]), (0.5, [False, False, True])]
)
def test_beaten_by_margin(margin: float, beaten: list[bool]) -> None:
    points = np.array([[0, 0], [1, 1], [4, 4]], dtype=float)
    assert beaten_by_margin(points, points[:1], margin).tolist() == beaten
