"""The concave-stretch diagnosis from one linear-α study, on problems with a known front.

Each simulated study is 40 runs at α log-uniform in [0.01, 100] from one initialization
(:func:`hpsearch.labs.sweeps.linear_sweep`), trained with SGD or Adam. Concave fronts must be
called concave, convex ones never: a false alarm is as bad as a miss.
"""

from __future__ import annotations

import numpy as np
import pytest

from hpsearch.labs.sweeps import linear_sweep
from hpsearch.results.analysis import HOLE_MIN, Normalization, analyze_front

SEEDS = range(5)
CONCAVE = {
    "fonseca_fleming": ("fonseca_fleming", {}),
    "concave": ("front_curve", {"shape": "concave"}),
    "mixed": ("front_curve", {"shape": "mixed"}),
}
CONVEX = {
    "convex": ("front_curve", {"shape": "convex"}),
    "convex_cubic": ("front_curve", {"shape": "convex_cubic"}),
}


def _analyze(setup: str, options: dict, optimizer: str, seed: int):
    sweep = linear_sweep(setup, options, optimizer, seed)
    return sweep, analyze_front(sweep.points, alpha=sweep.alpha, drift=sweep.drift)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("problem", sorted(CONVEX))
def test_a_convex_front_is_never_called_concave(problem: str, optimizer: str) -> None:
    for seed in SEEDS:
        _, a = _analyze(*CONVEX[problem], optimizer, seed)
        assert not a.concave, (problem, optimizer, seed, a.stretches)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("problem", sorted(CONCAVE))
def test_a_concave_front_is_called_concave_from_one_linear_study(
    problem: str, optimizer: str
) -> None:
    for seed in SEEDS:
        sweep, a = _analyze(*CONCAVE[problem], optimizer, seed)
        assert a.concave, (problem, optimizer, seed)
        jump = next(s for s in a.stretches if s.kind == "jump")
        # The jump is where the runs change sides: every run near it with a smaller α than
        # the bracket landed nearer its start than its end, every larger one nearer its end
        # (checked on the runs themselves, not through the code under test).
        lo, hi = jump.alpha_bracket
        z = Normalization.from_fronts([sweep.points]).apply(sweep.points)
        to_start = np.hypot(*(z - z[jump.start]).T)
        to_end = np.hypot(*(z - z[jump.end]).T)
        near = np.abs(np.log(sweep.alpha / jump.alpha)) < 1.0
        assert (to_start <= to_end)[near & (sweep.alpha <= lo)].all()
        assert (to_end <= to_start)[near & (sweep.alpha >= hi)].all()
        assert np.hypot(*(z[jump.end] - z[jump.start])) >= HOLE_MIN
        # ε between the ends' L2 aims into the hole.
        assert jump.epsilon_range == (sweep.points[jump.end, 1], sweep.points[jump.start, 1])


def test_a_jump_whose_lower_side_stopped_in_local_minima_is_still_a_jump() -> None:
    # Measured on two_task/digits with a one-unit trunk (normalized validation points, α):
    # below α ≈ 2 most runs stop in local minima a little right of the front's end (dominated,
    # so between the ends by L1 − L2), above it every run lands at the other end.
    lower = [(0.01, 0.159), (0.018, 0.161), (0.024, 0.162), (0.032, 0.166), (1.568, 0.036)]
    lower += [(1.778, 0.0)]
    upper = [(3.162, 1.0), (5.623, 1.0), (7.499, 1.0), (10.0, 1.0), (17.78, 1.0)]
    alpha = np.array([a for a, _ in lower + upper])
    points = np.array([(x, 1.01 if x > 0 else 1.0) for _, x in lower] + [(1.0, 0.0)] * 5)
    points[-5:, 1] += np.array([0.001, 0.0, 0.001, 0.001, 0.001])
    a = analyze_front(points, alpha=alpha)
    assert a.concave
    (jump,) = [s for s in a.stretches if s.kind == "jump"]
    assert jump.alpha_bracket == pytest.approx((1.778, 3.162))
