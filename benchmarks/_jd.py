"""What the benchmarks that put Jacobian descent beside linear α, Chebyshev and MDMM share:
the studies' [params] lines for an aggregator, hypervolume at equal wall time, and the cost of
an epoch of each inner method, measured in one process.

Aggregators that take preference weights search ``w`` (as Chebyshev does); the others have no
knob, so their trials differ by the initial weights alone (a searched ``init_seed``: the
random restarts their papers trace a front with).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import optuna

from hpsearch import ModelSpec, TrainConfig, get_setup, load_dataset
from hpsearch.core.aggregators import AGGREGATOR_NAMES, AIMING_AGGREGATORS
from hpsearch.core.train import train
from hpsearch.results.points import StudyPoints
from hpsearch.results.report import markdown_table

# The aggregators whose fronts the benchmarks measure (CAGrad's cvxpy solve costs ~16 ms a
# step: its cost per epoch is measured, its fronts are not).
MEASURED = ("upgrad", "dualproj", "aligned_mtl", "config", "mgda", "pcgrad", "imtl_g")


def jd_name(aggregator: str) -> str:
    """The inner method's name in tables: ``jd-upgrad``."""
    return f"jd-{aggregator}"


def jd_params(aggregator: str, w_range: tuple[float, float] = (0.02, 0.98)) -> str:
    """A study file's [params] lines for ``method = "jd"`` with ``aggregator``."""
    lines = ['method = "jd"', f'aggregator = "{aggregator}"']
    if aggregator in AIMING_AGGREGATORS:
        lo, hi = w_range
        lines.append(f'w = {{ type = "float", low = {lo}, high = {hi} }}')
    else:
        lines.append('init_seed = { type = "int", low = 0, high = 1000000 }')
    return "\n".join(lines)


def finished_within(storage: str, study_name: str, seconds: float) -> set[int]:
    """The numbers of the study's complete trials that ended within ``seconds`` of its first
    trial's start."""
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
    )
    if not trials:
        return set()
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    return {
        t.number
        for t in trials
        if t.datetime_complete is not None
        and (t.datetime_complete - start).total_seconds() <= seconds
    }


def ended_within(storage: str, points: StudyPoints, seconds: float) -> np.ndarray:
    """Which of ``points``' trials (in their order) ended within ``seconds`` of their study's
    first trial's start: the trials a run at that wall time would have."""
    done = finished_within(storage, points.study_name, seconds)
    return np.isin(points.numbers, sorted(done))


def epoch_costs(
    setup: str,
    dataset: str,
    model: ModelSpec,
    base: dict,
    setup_options: dict | None = None,
    rounds: int = 3,
    epochs: int = 2,
) -> dict[str, list[float]]:
    """Seconds per epoch of one sequential run of each inner method (every aggregator too),
    interleaved over ``rounds`` in this process."""
    data = load_dataset(dataset)
    methods = {
        "linear": {"method": "linear", "alpha": 0.1},
        "chebyshev": {"method": "chebyshev", "w": 0.5},
        "mdmm": {"method": "mdmm", "epsilon": 1.0},
        **{jd_name(a): {"method": "jd", "aggregator": a} for a in AGGREGATOR_NAMES},
    }
    costs: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(rounds):
        for name, kw in methods.items():
            cfg = TrainConfig(**{**base, **kw, "epochs": epochs})
            start = time.perf_counter()
            train(get_setup(setup)(**(setup_options or {})), data, model, cfg)
            costs[name].append((time.perf_counter() - start) / epochs)
    return costs


def cost_table(costs: dict[str, list[float]]) -> list[str]:
    """Median seconds per epoch and the ratio to linear α's, one row per inner method."""
    linear = statistics.median(costs["linear"])
    return markdown_table(
        ["inner method", "ms per epoch", "× linear"],
        [
            [
                name,
                f"{1000 * statistics.median(v):.1f}",
                f"{statistics.median(v) / linear:.1f}",
            ]
            for name, v in costs.items()
        ],
    )
