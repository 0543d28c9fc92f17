"""Linear-α studies simulated fast: one population-trained batch of runs over a range of α.

The diagnosis tests need many linear studies (shapes × optimizers × seeds); training each α as
one member of a population (the library's own ``train_population``) costs about a second per
study instead of a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpsearch import DivergedError, ModelSpec, TrainConfig, get_setup, load_dataset
from hpsearch._analysis import CONVERGENCE_WINDOW
from hpsearch._population import train_population

# (optimizer, learning rate, steps) that converge on the synthetic problems over most α.
OPTIMIZERS = {"sgd": (0.05, 300), "adam": (0.02, 400)}


@dataclass(frozen=True)
class Sweep:
    """The runs of one simulated linear-α study: α, final validation point, and its drift."""

    alpha: np.ndarray
    points: np.ndarray
    drift: np.ndarray


def linear_sweep(
    setup: str, options: dict, optimizer: str, seed: int, n: int = 40, low=1e-2, high=1e2
) -> Sweep:
    """``n`` runs at α log-uniform in [low, high] (drawn from ``seed``), all from the
    initialization of ``seed``, as in one study."""
    rng = np.random.default_rng(seed)
    alpha = np.exp(rng.uniform(np.log(low), np.log(high), n))
    lr, steps = OPTIMIZERS[optimizer]
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
    kept = [i for i, r in enumerate(results) if not isinstance(r, DivergedError)]
    alpha, results = alpha[kept], [results[i] for i in kept]  # a study stores these as FAIL
    points = np.array([[r.val["loss1"], r.val["loss2"]] for r in results])
    back = int(round(steps * (1 - CONVERGENCE_WINDOW))) - 1
    drift = np.array(
        [
            [
                r.history[-1].val_loss1 - r.history[back].val_loss1,
                r.history[-1].val_loss2 - r.history[back].val_loss2,
            ]
            for r in results
        ]
    )
    return Sweep(alpha, points, drift)
