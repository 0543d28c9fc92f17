"""Linear-α studies of a synthetic setup simulated fast: one population-trained batch of runs
over a range of α, all from one initialization, as in one study.

What the diagnosis's tests and ``benchmarks/concave_fronts.py`` measure its detection and
false-alarm rates on: training each α as a member of one population (the library's own
``train_population``) costs about a second per study instead of a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hpsearch.core.data import load_dataset
from hpsearch.core.knobs import TrainConfig
from hpsearch.core.models import ModelSpec
from hpsearch.core.population import train_population
from hpsearch.core.setups import get_setup
from hpsearch.core.train import TrainResult
from hpsearch.results.analysis import convergence_drift

# (learning rate, steps) per optimizer that converge on the synthetic problems over most α.
SWEEP_OPTIMIZERS: dict[str, tuple[float, int]] = {"sgd": (0.05, 300), "adam": (0.02, 400)}


@dataclass(frozen=True)
class LinearSweep:
    """The runs of one simulated linear-α study that did not diverge (a study stores those as
    FAIL): α, final validation point (L1, L2), and how far it moved over the last
    :data:`hpsearch.results.analysis.CONVERGENCE_WINDOW` of the steps."""

    alpha: np.ndarray
    points: np.ndarray
    drift: np.ndarray


def linear_sweep(
    setup: str,
    options: dict[str, Any],
    optimizer: str,
    seed: int,
    n: int = 40,
    low: float = 1e-2,
    high: float = 1e2,
) -> LinearSweep:
    """``n`` runs of a synthetic setup (``dataset = "none"``) at α log-uniform in
    [``low``, ``high``] drawn from ``seed``, all from the initialization of ``seed``, with the
    learning rate and steps of :data:`SWEEP_OPTIMIZERS`."""
    rng = np.random.default_rng(seed)
    alpha = np.exp(rng.uniform(np.log(low), np.log(high), n))
    lr, steps = SWEEP_OPTIMIZERS[optimizer]
    configs = [
        TrainConfig(
            method="linear",
            optimizer=optimizer,
            lr=lr,
            alpha=float(a),
            epochs=steps,
            batch_size=1,
            seed=seed,
        )
        for a in alpha
    ]
    results = train_population(
        get_setup(setup)(**options), load_dataset("none"), ModelSpec(kind="linear"), configs
    )
    kept = [i for i, r in enumerate(results) if isinstance(r, TrainResult)]
    runs = [r for r in results if isinstance(r, TrainResult)]
    points = np.array([[r.val["loss1"], r.val["loss2"]] for r in runs]).reshape(-1, 2)
    drift = np.array(
        [
            convergence_drift([e.val_loss1 for e in r.history], [e.val_loss2 for e in r.history])
            for r in runs
        ]
    ).reshape(-1, 2)
    return LinearSweep(alpha[kept], points, drift)
