from __future__ import annotations

import math

import moocore
import numpy as np
import pytest

from hpsearch.core.setups import fonseca_fleming_front
from hpsearch.results.analysis import (
    REFERENCE,
    Normalization,
    analyze_front,
    feasible_pareto_mask,
    height_above_hull,
    hypervolume_2d,
    knee_index,
    lower_convex_hull,
    pareto_mask,
    preferred_index,
    verdict,
)

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
    assert a.gap_hv == pytest.approx(0.0, abs=1e-12) and a.stretches == []
    assert "convex within tolerance" in verdict(CONVEX, a, ("L1", "L2"))


def test_a_concave_front_has_a_large_gap_and_only_its_ends_supported() -> None:
    a = analyze_front(CONCAVE)
    assert a.supported.sum() == 2 and a.n_unsupported == 39
    assert a.hull.tolist() == [0, 40]
    assert a.gap_pct > 35
    assert [(s.start, s.end, s.kind) for s in a.stretches] == [(0, 40, "hull")] and a.concave
    stretch = a.stretches[0]
    assert stretch.epsilon_range == (0.0, 1.0) and stretch.alpha == pytest.approx(1.0)
    text = verdict(CONCAVE, a, ("task", "norm"))
    assert text.startswith("concave: 1 stretch that linear α skips: front points between ")
    assert "(task=0, norm=1) and (task=1, norm=0)" in text
    assert "not the minimizer of task + α·norm for any α" in text
    assert "MDMM ε in (0, 1)" in text and "41 Pareto points" in text


def test_mixed_front_flags_only_the_concave_stretch() -> None:
    # Convex from (0, 1) to (0.5, 0.3), then a concave bump, then down to (1, 0).
    left = np.stack([np.linspace(0, 0.5, 11), 0.3 + 0.7 * (1 - np.linspace(0, 1, 11)) ** 2], 1)
    t = np.linspace(0, 1, 11)[1:]
    right = np.stack([0.5 + 0.5 * t, 0.3 * (1 - t**2)], 1)
    points = np.concatenate([left, right])
    a = analyze_front(points)
    assert len(a.stretches) == 1
    start, end = a.stretches[0].start, a.stretches[0].end
    # The stretch starts on the convex part (where the hull leaves the front) and ends at the
    # min-L2 end; the convex part left of it is all supported.
    assert 0.3 <= points[start, 0] <= 0.5 and points[end].tolist() == [1.0, 0.0]
    assert 9 <= a.n_unsupported <= 11
    assert a.supported[points[a.front, 0] < 0.3].all()
    # The ε that aim into it are the L2 values strictly between its ends.
    assert a.stretches[0].epsilon_range == (0.0, points[start, 1])


def test_only_converged_runs_above_the_hull_are_evidence() -> None:
    drift = np.zeros((len(CONCAVE), 2))
    assert analyze_front(CONCAVE, drift=drift).concave
    drift[1:-1] = 0.05  # every interior run still moving at the end of its budget
    a = analyze_front(CONCAVE, drift=drift)
    assert not a.concave and a.n_unsupported == 39  # still above the hull, but no evidence
    drift[20] = 0.0  # one converged run in the middle is enough
    assert [s.kind for s in analyze_front(CONCAVE, drift=drift).stretches] == ["hull"]


def test_noise_above_the_hull_is_not_called_concave() -> None:
    # A convex front with one point 0.01 (normalized) above its hull: unsupported, but a
    # bump of that size is measurement noise, not a concave stretch.
    points = CONVEX.copy()
    points[20, 1] += 0.01
    a = analyze_front(points)
    assert a.n_unsupported >= 1 and not a.concave and a.stretches == []


def test_lower_convex_hull_runs_from_min_l1_to_min_l2() -> None:
    points = np.array([[0.0, 1.0], [0.2, 0.2], [1.0, 0.0], [0.5, 0.5]])
    assert lower_convex_hull(points).tolist() == [0, 1, 2]


def test_common_normalization_maps_the_joint_front_to_the_unit_square() -> None:
    norm = Normalization.from_fronts([np.array([[1.0, 10.0], [2.0, 5.0]]), np.array([[3.0, 0.0]])])
    assert norm.apply(np.array([[1.0, 10.0], [3.0, 0.0]])).tolist() == [[0, 1], [1, 0]]
    # A dominated set (an unconverged study) and a NaN row move neither the ideal nor the nadir.
    moved = Normalization.from_fronts(
        [np.array([[1.0, 10.0], [2.0, 5.0]]), np.array([[3.0, 0.0]]), np.array([[9.0, 40.0]])]
        + [np.array([[np.nan, -5.0]])]
    )
    assert moved.ideal.tolist() == [1.0, 0.0] and moved.nadir.tolist() == [3.0, 10.0]
    assert moved.invert(moved.apply([[2.0, 5.0]])).tolist() == [[2.0, 5.0]]


def test_knee_is_an_interior_point_and_preference_picks() -> None:
    front = np.array([[0.0, 1.0], [0.1, 0.1], [0.5, 0.05], [1.0, 0.0]])
    assert knee_index(front) == 1
    # The ends are never the knee: with the middle point above the line through them, the
    # ends are the farthest "below" it (at 0), and there is no knee.
    assert knee_index(np.array([[0.0, 1.0], [0.5, 0.6], [1.0, 0.0]])) == -1
    assert knee_index(front[:2]) == -1  # fewer than 3 points
    assert knee_index(CONCAVE) == -1  # bulges away from the ideal: no knee
    assert analyze_front(CONCAVE).knee == -1
    assert preferred_index(front, 0.5) == 1
    assert preferred_index(front, 0.99) == 0  # L1 matters most: the min-L1 end
    with pytest.raises(ValueError, match="weight must be in"):
        preferred_index(front, 1.0)


def test_empty_front() -> None:
    a = analyze_front(np.array([[1.0, 1.0]]), np.array([False]))
    assert len(a.front) == 0 and a.hypervolume == 0.0 and a.gap_pct == 0.0
    assert verdict(np.zeros((1, 2)), a, ("a", "b")).startswith("no complete trial counts")


@pytest.mark.parametrize("reference", [(1.3, 0.6), (0.6, 1.3), (2.0, 1.05)])
def test_hypervolume_with_an_asymmetric_reference_matches_moocore(reference) -> None:
    points = np.random.default_rng(7).random((40, 2)) * [1.0, 0.5]
    ours = hypervolume_2d(points, reference)
    assert ours == pytest.approx(float(moocore.hypervolume(points, ref=list(reference))))
    swapped = hypervolume_2d(points, reference[::-1])
    assert swapped != pytest.approx(ours)  # the data are asymmetric: a swap must show


def test_raw_hypervolume_and_reference_point() -> None:
    points = np.random.default_rng(3).random((30, 2)) * [2.0, 50.0]
    front = points[pareto_mask(points)]
    a = analyze_front(points, reference_raw=(2.5, 60.0))
    assert a.reference_raw == pytest.approx((2.5, 60.0))
    assert a.hypervolume_raw == pytest.approx(float(moocore.hypervolume(front, ref=[2.5, 60.0])))
    # Without one, the reference is 1.1 of the front's range beyond its ideal, per loss.
    b = analyze_front(points)
    lo, hi = front.min(0), front.max(0)
    assert b.reference_raw == pytest.approx(tuple(lo + 1.1 * (hi - lo)))
    assert b.hypervolume_raw == pytest.approx(
        float(moocore.hypervolume(front, ref=list(lo + 1.1 * (hi - lo))))
    )


def test_alpha_ranges_agree_with_brute_force_minimization() -> None:
    rng = np.random.default_rng(5)
    t = np.sort(rng.random(25))
    points = np.stack([3 * t, 40 * (1 - t) ** 2 + rng.random(25) * 2], 1)  # raw units
    a = analyze_front(points)
    front = points[a.front]
    for alpha in np.exp(np.linspace(np.log(1e-3), np.log(1e2), 400)):
        winner = int(np.argmin(front[:, 0] + alpha * front[:, 1]))
        lo, hi = a.alpha_ranges[winner]
        assert lo <= alpha * (1 + 1e-9) and alpha <= hi * (1 + 1e-9), (alpha, lo, hi)
    # Hand-computed on three points: (0, 4) wins for α <= 1/3, (1, 1) up to 2, (3, 0) beyond.
    hand = analyze_front(np.array([[0.0, 4.0], [1.0, 1.0], [3.0, 0.0]]))
    assert hand.alpha_ranges == [
        (0.0, pytest.approx(1 / 3)),
        (pytest.approx(1 / 3), pytest.approx(2.0)),
        (pytest.approx(2.0), math.inf),
    ]
    assert analyze_front(CONCAVE).alpha_ranges[20] is None  # above the hull: no α


def _runs(alpha: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Points on the straight front L1 + L2 = 1 at the given L1 positions."""
    return np.stack([positions, 1 - positions], 1)


def test_a_jump_between_neighbouring_alphas_is_found_with_its_bracket() -> None:
    alpha = np.exp(np.linspace(-4, 4, 30))
    # Every run below α = 1 lands near one end and every run above it near the other.
    pos = np.where(alpha < 1, 0.02 * np.log1p(alpha), 1 - 0.02 / (1 + alpha))
    a = analyze_front(_runs(alpha, pos), alpha=alpha)
    assert [s.kind for s in a.stretches] == ["jump"] and a.concave
    below, above = alpha[alpha < 1].max(), alpha[alpha > 1].min()
    assert a.stretches[0].alpha_bracket == pytest.approx((below, above))
    assert a.stretches[0].alpha == pytest.approx(math.sqrt(below * above))
    text = verdict(_runs(alpha, pos), a, ("f1", "f2"))
    assert text.startswith("concave: 1 stretch that linear α skips: linear α jumps from ")


def test_a_continuous_move_with_sparse_alpha_is_not_a_jump() -> None:
    # The point moves smoothly with log α (a convex front swept by α), sampled sparsely in
    # the middle: big holes, but no faster than the runs on either side predict.
    alpha = np.exp(np.concatenate([np.linspace(-4, -1, 8), np.linspace(1, 4, 8)]))
    pos = 1 / (1 + np.exp(-np.log(alpha) / 2))
    a = analyze_front(_runs(alpha, pos), alpha=alpha)
    assert not a.concave and all(s.kind == "hole" for s in a.stretches)


def test_a_hole_the_alphas_cannot_settle_is_neither_concave_nor_convex() -> None:
    log_alpha = np.concatenate([np.linspace(-4, -1, 8), np.linspace(1, 4, 8)])
    # The runs on either side move 0.05 per unit of log α, so the 2 units of the gap predict
    # a move of 0.1; the point moves 0.3 across it: 3× (a jump needs 5×, a hole 2×).
    pos = np.where(log_alpha < 0, 0.35 + 0.05 * (log_alpha + 1), 0.65 + 0.05 * (log_alpha - 1))
    alpha = np.exp(log_alpha)
    a = analyze_front(_runs(alpha, pos), alpha=alpha)
    assert [s.kind for s in a.stretches] == ["hole"] and not a.concave
    assert a.stretches[0].evidence == pytest.approx(3.0)
    text = verdict(_runs(alpha, pos), a, ("f1", "f2"))
    assert text.startswith("undecided: every Pareto point found is on the convex hull, but ")
    assert "unresolved hole between (f1=0.35, f2=0.65) and (f1=0.65, f2=0.35)" in text
    assert "convex within" not in text


def test_only_converged_runs_are_evidence_of_a_jump() -> None:
    alpha = np.exp(np.linspace(-4, 4, 30))
    pos = np.where(alpha < 1, 0.0, 1.0) + np.linspace(0, 1e-3, 30)
    points = _runs(alpha, np.clip(pos, 0, 1))
    drift = np.zeros((30, 2))
    assert analyze_front(points, alpha=alpha, drift=drift).concave
    drift[:] = 0.05  # every run still moving: no evidence
    assert not analyze_front(points, alpha=alpha, drift=drift).concave


def test_points_above_the_hull_from_runs_still_moving_are_undecided_not_convex() -> None:
    # Two ends and a point 0.035 above the line between them (normalized): a concave stretch
    # if its run had converged; if it was still moving, neither concave nor convex.
    points = np.array([[0.0, 1.0], [0.45, 0.6], [1.0, 0.0]])
    settled = analyze_front(points, drift=np.zeros((3, 2)))
    assert settled.concave and not settled.undecided and len(settled.unsettled) == 0
    drift = np.zeros((3, 2))
    drift[1] = 0.05  # the middle run moved 5% of the span over its last epochs
    moving = analyze_front(points, drift=drift)
    assert not moving.concave and moving.undecided and moving.unsettled.tolist() == [1]
    assert moving.gap_pct > 5
    text = verdict(points, moving, ("L1", "L2"))
    assert text.startswith("undecided: 1 Pareto point stands well above the convex hull, but its")
    assert "convex within" not in text and "lr_decay" in text
    # Still moving but on the hull: nothing to say but convex.
    on_hull = analyze_front(np.array([[0.0, 1.0], [0.4, 0.4], [1.0, 0.0]]), drift=drift)
    assert not on_hull.undecided and len(on_hull.unsettled) == 0


def test_height_above_the_hull_is_the_distance_to_it() -> None:
    # Hull (0, 1) -> (0.01, 0) is steep; the point (0.005, 0.9) sits a hair right of it:
    # 0.4 above it vertically, but 0.004 from it (the line 100·x + y = 1: distance
    # |100·0.005 + 0.9 − 1| / sqrt(100² + 1); the perpendicular's foot lies inside the segment).
    front = np.array([[0.0, 1.0], [0.005, 0.9], [0.01, 0.0], [1.0, -0.01]])
    hull = lower_convex_hull(front)
    assert hull.tolist() == [0, 2, 3]
    height = height_above_hull(front, hull)
    assert height[1] == pytest.approx(0.4 / np.hypot(100, 1), rel=1e-6)
    assert height[[0, 2, 3]].tolist() == [0, 0, 0]


def test_an_l_shaped_convex_front_with_noise_on_its_steep_side_is_not_concave() -> None:
    # What a wide two-task model gives: L1 barely moves while L2 falls (measured on
    # two_task/digits at width 16), then L2 barely moves while L1 rises.
    steep = np.array([[0.1878, 1.059], [0.1884, 1.034], [0.1891, 0.977], [0.1897, 0.3775]])
    flat = np.array([[0.2062, 0.3261], [0.2989, 0.2846], [0.8953, 0.2818], [1.235, 0.2732]])
    analysis = analyze_front(np.concatenate([steep, flat]))
    assert not analysis.concave and analysis.n_unsupported <= 2
