from __future__ import annotations

import moocore
import numpy as np
import pytest

from hpsearch._analysis import (
    REFERENCE,
    Normalization,
    analyze_front,
    feasible_pareto_mask,
    hypervolume_2d,
    knee_index,
    lower_convex_hull,
    pareto_mask,
    preferred_index,
    verdict,
)
from hpsearch._setups import fonseca_fleming_front

T = np.linspace(0, 1, 41)
CONVEX = np.stack([T, (1 - T) ** 2], 1)  # L2 = (1 − L1)²: convex
CONCAVE = np.stack([T, 1 - T**2], 1)  # L2 = 1 − L1²: concave


def test_pareto_mask_keeps_exactly_the_non_dominated_points() -> None:
    points = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [1, 6]])
    # [3,4] is dominated by [2,3]; [5,5] by everything; [1,6] by [1,5]; duplicates both stay.
    assert pareto_mask(points).tolist() == [True, True, False, True, True, False, False]


@pytest.mark.parametrize(
    "points",
    [
        np.random.default_rng(0).random((200, 2)),  # the 2-D sweep
        np.random.default_rng(1).integers(0, 5, (60, 2)).astype(float),  # ties and duplicates
        np.array([[1.0, np.nan], [2.0, 2.0], [3.0, 1.0], [np.nan, 0.0], [2.5, 2.5]]),
        np.random.default_rng(2).integers(0, 4, (50, 3)).astype(float),  # the pairwise test
    ],
    ids=["random", "ties", "nan", "3-d"],
)
def test_pareto_mask_against_brute_force(points: np.ndarray) -> None:
    expected = [not any((q <= p).all() and (q < p).any() for q in points) for p in points]
    assert pareto_mask(points).tolist() == expected


def test_pareto_mask_of_a_20001_point_front_keeps_every_point() -> None:
    # 20,001 points: the pairwise test needed 8 GB here and stalled CI.
    front = fonseca_fleming_front(20001)
    assert pareto_mask(front).all()


def test_infeasible_points_are_never_on_the_front() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    mask = feasible_pareto_mask(points, np.array([False, True, True]))
    assert mask.tolist() == [False, True, True]
    assert not feasible_pareto_mask(points, np.zeros(3, bool)).any()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [1, 5, 60])
def test_hypervolume_matches_moocore(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.random((n, 2)) * rng.choice([0.5, 1.0, 1.3])  # some beyond the reference
    ours = hypervolume_2d(points, REFERENCE)
    theirs = float(moocore.hypervolume(points, ref=list(REFERENCE)))
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_hypervolume_of_the_true_fonseca_fleming_front() -> None:
    # The figure quoted in DESIGN.md: 0.342 with reference (1, 1).
    front = fonseca_fleming_front(4001)
    assert hypervolume_2d(front, (1.0, 1.0)) == pytest.approx(0.342, abs=1e-3)
    assert hypervolume_2d(front, (1.0, 1.0)) == pytest.approx(
        float(moocore.hypervolume(front, ref=[1.0, 1.0])), rel=1e-12
    )


def test_a_convex_front_has_no_gap() -> None:
    a = analyze_front(CONVEX)
    assert len(a.front) == 41 and a.supported.all()
    assert a.gap == pytest.approx(0.0, abs=1e-12) and a.stretches == []
    assert "convex within tolerance" in verdict(CONVEX, a, ("L1", "L2"))


def test_a_concave_front_has_a_large_gap_and_only_its_ends_supported() -> None:
    a = analyze_front(CONCAVE)
    assert a.supported.sum() == 2 and a.n_unsupported == 39
    assert a.hull.tolist() == [0, 40]
    assert a.gap_fraction > 0.35
    assert a.stretches == [(0, 40)]
    text = verdict(CONCAVE, a, ("task", "norm"))
    assert text.startswith("front has concave stretches between (task=0, norm=1) and (task=1,")
    assert "linear α cannot reach 39 of 41 Pareto points" in text


def test_mixed_front_flags_only_the_concave_stretch() -> None:
    # Convex from (0, 1) to (0.5, 0.3), then a concave bump, then down to (1, 0).
    left = np.stack([np.linspace(0, 0.5, 11), 0.3 + 0.7 * (1 - np.linspace(0, 1, 11)) ** 2], 1)
    t = np.linspace(0, 1, 11)[1:]
    right = np.stack([0.5 + 0.5 * t, 0.3 * (1 - t**2)], 1)
    points = np.concatenate([left, right])
    a = analyze_front(points)
    assert len(a.stretches) == 1
    start, end = a.stretches[0]
    # The stretch starts on the convex part (where the hull leaves the front) and ends at the
    # min-L2 end; the convex part left of it is all supported.
    assert 0.3 <= points[start, 0] <= 0.5 and points[end].tolist() == [1.0, 0.0]
    assert 9 <= a.n_unsupported <= 11
    assert a.supported[points[a.front, 0] < 0.3].all()


def test_lower_convex_hull_runs_from_min_l1_to_min_l2() -> None:
    points = np.array([[0.0, 1.0], [0.2, 0.2], [1.0, 0.0], [0.5, 0.5]])
    assert lower_convex_hull(points).tolist() == [0, 1, 2]


def test_common_normalization_maps_the_joint_front_to_the_unit_square() -> None:
    norm = Normalization.from_fronts([np.array([[1.0, 10.0], [2.0, 5.0]]), np.array([[3.0, 0.0]])])
    assert norm.apply(np.array([[1.0, 10.0], [3.0, 0.0]])).tolist() == [[0, 1], [1, 0]]


def test_knee_and_preference_picks() -> None:
    front = np.array([[0.0, 1.0], [0.1, 0.1], [0.5, 0.05], [1.0, 0.0]])
    assert knee_index(front) == 1
    assert preferred_index(front, 0.5) == 1
    assert preferred_index(front, 0.99) == 0  # L1 matters most: the min-L1 end
    with pytest.raises(ValueError, match="weight must be in"):
        preferred_index(front, 1.0)


def test_empty_front() -> None:
    a = analyze_front(np.array([[1.0, 1.0]]), np.array([False]))
    assert len(a.front) == 0 and a.hypervolume == 0.0 and a.gap_fraction == 0.0
    assert verdict(np.zeros((1, 2)), a, ("a", "b")).startswith("no feasible")
