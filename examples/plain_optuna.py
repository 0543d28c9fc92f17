"""A plain Optuna study, made without hpsearch, that ``hpsearch show`` diagnoses.

Two losses of one trained point ``(u, v)``: ``L1 = s**p + v**2`` and ``L2 = (1 - s)**p + v**2``
with ``s = sigmoid(u)``. Their Pareto front is ``(s**p, (1 - s)**p)``: concave for ``p < 1``
(the quarter circle at ``p = 0.5``), convex for ``p > 1``. Each trial descends on
``L1 + alpha * L2`` with plain SGD (step 0.2 / (1 + alpha)) from its own random start, alpha
searched by Optuna; this file imports nothing of hpsearch. Then::

    python examples/plain_optuna.py --shape 0.5          # writes plain-optuna.db
    hpsearch show plain-p0.5 --storage sqlite:///plain-optuna.db

says whether alpha reached the whole front (here: no, it jumps from one end to the other).
``--maximize`` stores ``-L2`` maximized instead (hpsearch reads it in its own sign).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import optuna
import torch

Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OFFSET = 1e-3  # keeps s**p differentiable at the ends


def losses(u: torch.Tensor, v: torch.Tensor, shape: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two losses at the point (u, v) for the front exponent ``shape``."""
    s = torch.sigmoid(u)
    return (s + OFFSET) ** shape + v**2, (1 - s + OFFSET) ** shape + v**2


def true_front(shape: float, n: int = 2001) -> torch.Tensor:
    """``n`` points of the Pareto front, by increasing L1."""
    s = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.stack([(s + OFFSET) ** shape, (1 - s + OFFSET) ** shape], dim=1)


def descend(
    combine: Combine, shape: float, seed: int, steps: int = 400, lr: float = 0.2
) -> tuple[float, float, list[tuple[float, float]]]:
    """SGD on ``combine(L1, L2)`` from a random start; the final losses and every 10th step's."""
    start = torch.Generator().manual_seed(seed)
    u = (torch.rand((), generator=start) * 4 - 2).requires_grad_()
    v = (torch.rand((), generator=start) * 2 - 1).requires_grad_()
    optimizer = torch.optim.SGD([u, v], lr=lr)
    curve = []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        l1, l2 = losses(u, v, shape)
        combine(l1, l2).backward()
        optimizer.step()
        if step % 10 == 0:
            curve.append((float(l1.detach()), float(l2.detach())))
    l1, l2 = losses(u.detach(), v.detach(), shape)
    return float(l1), float(l2), curve


def make_objective(shape: float, seed: int, maximize: bool = False):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        alpha = trial.suggest_float("alpha", 0.05, 20.0, log=True)
        # The step divided by 1 + alpha: the sum's gradient grows with alpha.
        l1, l2, _ = descend(
            lambda a, b: a + alpha * b, shape, seed * 10_000 + trial.number, lr=0.2 / (1 + alpha)
        )
        return l1, -l2 if maximize else l2

    return objective


def make_study(
    shape: float,
    seed: int = 0,
    n_trials: int = 30,
    storage: str | None = None,
    maximize: bool = False,
) -> optuna.Study:
    """A two-objective study of linear-alpha runs on the front of exponent ``shape``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"plain-p{shape:g}" + (f"-s{seed}" if seed else ""),
        storage=storage,
        directions=["minimize", "maximize" if maximize else "minimize"],
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )
    study.optimize(make_objective(shape, seed, maximize), n_trials=n_trials - len(study.trials))
    return study


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=float, default=0.5, help="front exponent p")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--maximize", action="store_true", help="store -L2, maximized")
    parser.add_argument("--storage", default="sqlite:///plain-optuna.db")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    study = make_study(args.shape, args.seed, args.trials, args.storage, args.maximize)
    print(f"{study.study_name}: {len(study.trials)} trials in {args.storage}")
    return study


if __name__ == "__main__":
    main()
