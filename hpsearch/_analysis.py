"""Analysis of trials in the objective space (validation L1, validation L2)."""

from __future__ import annotations

import numpy as np


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
    le = (points[:, None, :] <= points[None, :, :]).all(-1)  # le[j, i]: j weakly dominates i
    lt = (points[:, None, :] < points[None, :, :]).any(-1)
    dominated = (le & lt).any(0)
    return ~dominated
