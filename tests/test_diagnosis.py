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
        # The jump is where the runs change sides: every converged run with a smaller α than
        # the bracket landed at or before its start, every larger one at or after its end
        # (checked on the runs themselves, not through the code under test).
        lo, hi = jump.alpha_bracket
        z = Normalization.from_fronts([sweep.points]).apply(sweep.points)
        s = z[:, 0] - z[:, 1]
        start, end = s[jump.start], s[jump.end]
        near = np.abs(np.log(sweep.alpha / jump.alpha)) < 1.0
        assert (s[near & (sweep.alpha <= lo)] <= start + 1e-9).all()
        assert (s[near & (sweep.alpha >= hi)] >= end - 1e-9).all()
        assert np.hypot(*(z[jump.end] - z[jump.start])) >= HOLE_MIN
        # ε between the ends' L2 aims into the hole.
        assert jump.epsilon_range == (sweep.points[jump.end, 1], sweep.points[jump.start, 1])
