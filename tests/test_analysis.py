from __future__ import annotations

import numpy as np
import pytest

from hpsearch._analysis import pareto_mask


def test_pareto_mask_keeps_exactly_the_non_dominated_points() -> None:
    points = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [1, 6]])
    # [3,4] is dominated by [2,3]; [5,5] by everything; [1,6] by [1,5]; duplicates both stay.
    assert pareto_mask(points).tolist() == [True, True, False, True, True, False, False]


def test_pareto_mask_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((200, 2))
    expected = [not any((q <= p).all() and (q < p).any() for q in points) for p in points]
    assert pareto_mask(points).tolist() == expected


def test_pareto_mask_needs_a_matrix() -> None:
    with pytest.raises(ValueError, match="2-D"):
        pareto_mask(np.zeros(3))
