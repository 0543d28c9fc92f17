"""Your own PyTorch training loop and Optuna study, diagnosed and filled by hpsearch.

The model is yours: a two-task network on scikit-learn's digits (task A: the digit; task B:
how much ink the image has, in tertiles) whose shared trunk is one unit wide, too narrow to
serve both tasks. The loop is yours too: mini-batch Adam on ``loss_a + alpha * loss_b``, with
alpha searched by Optuna. hpsearch enters in four lines:

1. ``hpsearch.record(trial, val_a, val_b)`` each epoch: the history that tells converged runs;
2. ``hpsearch.diagnose(study)``: can alpha reach every trade-off? (here: no, it jumps);
3. ``hpsearch.plan_fill(study, n=8).enqueue(study)``: queue trials aimed into the stretch that
   alpha skipped (the CLI: ``hpsearch fill STUDY --plan --enqueue``);
4. ``hpsearch.fill_aim(trial)`` in the objective: those trials train on Chebyshev instead.

Run: ``python examples/own_loop.py [--trials 24] [--epochs 150] [--storage URL]``; then
``hpsearch show own-loop-digits --storage URL`` shows the same front and diagnosis.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

import hpsearch

STUDY = "own-loop-digits"
BATCH_SIZE = 64


def load_data(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Digits split 60/20/20, pixels scaled by their 0-16 range; labels: digit, ink tertile."""
    x, digit = load_digits(return_X_y=True)
    ink = x.sum(1)
    rows = np.arange(len(x))
    train, rest = train_test_split(rows, test_size=0.4, random_state=seed, stratify=digit)
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=digit[rest])
    edges = np.quantile(ink[train], [1 / 3, 2 / 3])
    tertile = np.digitize(ink, edges)

    def split(r: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.tensor(x[r] / 16.0, dtype=torch.float32),
            torch.tensor(digit[r]),
            torch.tensor(tertile[r]),
        )

    return {"train": split(train), "val": split(val), "test": split(test)}


class TwoTaskNet(nn.Module):
    """A trunk of ``width`` units shared by two heads."""

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(64, width), nn.Tanh())
        self.head_a = nn.Linear(width, 10)
        self.head_b = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.head_a(h), self.head_b(h)


def losses(model: nn.Module, split: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    x, a, b = split
    out_a, out_b = model(x)
    return F.cross_entropy(out_a, a), F.cross_entropy(out_b, b)


def make_objective(data: dict, epochs: int, lr: float, seed: int = 0):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        alpha = trial.suggest_float("alpha", 0.01, 100.0, log=True)
        aim = hpsearch.fill_aim(trial)  # None, unless hpsearch fill --enqueue queued this trial
        if aim is None:

            def combine(la: torch.Tensor, lb: torch.Tensor) -> torch.Tensor:
                return la + alpha * lb

        else:
            combine = aim.scalarizer()  # hpsearch.Chebyshev(w, ideal, scales)
        torch.manual_seed(seed)  # the same initialization for every trial of the study
        model = TwoTaskNet(width=1)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        # x 0.05 by the last epoch: the runs settle, so the diagnosis can trust where they end
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.05 ** (1 / epochs))
        batches = torch.Generator().manual_seed(trial.number)
        x, a, b = data["train"]
        for epoch in range(1, epochs + 1):
            model.train()
            for rows in torch.randperm(len(x), generator=batches).split(BATCH_SIZE):
                optimizer.zero_grad(set_to_none=True)
                combine(*losses(model, (x[rows], a[rows], b[rows]))).backward()
                optimizer.step()
            decay.step()
            with torch.inference_mode():
                val_a, val_b = losses(model.eval(), data["val"])
            hpsearch.record(trial, val_a, val_b, epoch=epoch)
        with torch.inference_mode():  # kept aside, for reporting on data nobody selected on
            test_a, test_b = losses(model, data["test"])
        trial.set_user_attr("test_losses", [float(test_a), float(test_b)])
        return float(val_a), float(val_b)

    return objective


def main(argv: list[str] | None = None) -> hpsearch.Diagnosis:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="linear-alpha trials")
    parser.add_argument("--fill", type=int, default=8, help="trials aimed into the stretch")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0, help="split, initialization, sampler")
    parser.add_argument("--storage", default="sqlite:///own-loop.db")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(
        study_name=STUDY + (f"-s{args.seed}" if args.seed else ""),
        storage=args.storage or None,  # "": in memory
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.QMCSampler(seed=args.seed, scramble=True),
        load_if_exists=True,
    )
    study.set_metric_names(["loss_digit", "loss_ink"])
    objective = make_objective(load_data(args.seed), args.epochs, args.lr, args.seed)
    study.optimize(objective, n_trials=max(0, args.trials - len(study.trials)))

    diagnosis = hpsearch.diagnose(study)
    print(diagnosis, end="\n\n")
    if diagnosis.stretches and args.fill > 0 and diagnosis.fill is None:
        plan = hpsearch.plan_fill(study, n=args.fill)  # `hpsearch fill STUDY --plan`
        plan.enqueue(study)  # `--enqueue`
        study.optimize(objective, n_trials=len(plan.aims))
        diagnosis = hpsearch.diagnose(study)
        print(diagnosis)
    return diagnosis


if __name__ == "__main__":
    main()
