"""Intervals over seeds: the one bootstrap every table in hpsearch and benchmarks/ uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000


def bootstrap_interval(
    values: Sequence[float], statistic: Callable[..., Any] = np.mean, seed: int = 0
) -> tuple[float, float, float]:
    """``statistic`` of ``values`` and its 95% percentile-bootstrap interval (resampling the
    values, i.e. the seeds, with replacement; a fixed resampling seed, so a rerun prints the
    same interval)."""
    data = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    resampled = statistic(rng.choice(data, size=(BOOTSTRAP_RESAMPLES, len(data))), axis=1)
    low, high = np.quantile(resampled, [0.025, 0.975])
    return float(statistic(data)), float(low), float(high)
