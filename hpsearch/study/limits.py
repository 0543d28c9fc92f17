"""The caps on a run's size, declared once: the study file's loader and the command line's
flags check against this table (the command line cannot overrule the file's caps)."""

from __future__ import annotations

# name: (smallest, largest) allowed integer.
RUN_LIMITS: dict[str, tuple[int, int]] = {
    "n_trials": (1, 10**6),
    "batch": (1, 4096),  # population size K: one batched model of K members
    "seed": (0, 2**32 - 1),
    "workers": (1, 256),  # processes on one machine
    "threads": (1, 1024),  # torch's intra-op threads per training process
    "epochs": (1, 100_000),  # an MGS lab run's passes over the training split
    "steps": (1, 100_000),  # a playground run's optimizer steps
}


def check_limit(name: str, value: int) -> str | None:
    """Why ``value`` is not allowed for ``name``, or None when it is."""
    low, high = RUN_LIMITS[name]
    if low <= value <= high:
        return None
    return f"{value} is not allowed; must be an integer in [{low}, {high}]"
