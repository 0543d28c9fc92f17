"""Flooding, the paper's protocol, and the other flatness regularizers on noisy labels.

Digits with 20% of the training labels flipped (validation and test clean), MLP 64-128-128-10,
Adam, 100 epochs. Per seed (training, sampler, split and noise draw all take it):

1. ``studies/flooding-digits-noisy-grid.toml``: flood level b on {0, 0.01, …, 0.50} × three
   learning rates, 153 trials (population mode); ``…-tpe.toml``: TPE over b and lr, 153 trials.
   Each picks its best trial on validation accuracy; "no flooding" is the best b = 0 trial of
   the grid (the lr tuned on the same three values).
2. The same budget of ``--budget`` TPE trials for each of: no regularizer (lr only), flooding
   (b, lr), iFlood (per-sample b, lr), backstitch (scale, interval, lr;
   ``studies/backstitch-digits-noisy.toml``).

Writes ``flooding.md`` (tables, test accuracy mean [95% bootstrap interval] over seeds, paired
differences to no flooding, wall time) and
``flooding.png`` (validation loss with and without flooding; accuracy against b; its data in
``flooding_curves.json``, so ``--replot`` redraws it from the committed one) to --out (default:
a temporary folder, printed); ``--write-results`` writes them to benchmarks/results/ instead.
Prints progress.

Usage: python benchmarks/flooding.py [--seeds 3] [--budget 20] [--quick] [--replot]
       [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from _common import RESULTS, Run, add_output_arguments, format_interval, parse_args

from hpsearch import ParamSpec, RunOptions, load_study_file, run_study
from hpsearch.results.report import markdown_table

REPO = Path(__file__).resolve().parents[1]
STUDIES = REPO / "studies"
# --quick: 1 seed, 10 epochs, b on {0, 0.1, …, 0.5} × the 3 learning rates (18 trials), 18 TPE
# trials, 4 per regularizer.
QUICK_EPOCHS, QUICK_TRIALS, QUICK_BUDGET = 10, 18, 4


def _run(config, storage: str) -> tuple[optuna.Study, float]:
    started = time.perf_counter()
    run_study(config, storage, RunOptions(progress=False))
    study = optuna.load_study(study_name=config.name, storage=storage)
    return study, time.perf_counter() - started


def _best(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max(done, key=lambda t: (t.value, -t.number))


def _seeded(config, seed: int, **changes):
    return dataclasses.replace(config, seed=seed, split_seed=seed, **changes)


def _variants(budget: int, epochs: int | None) -> dict:
    """The regularizers compared on one budget: the backstitch study and its three siblings."""
    base = load_study_file(STUDIES / "backstitch-digits-noisy.toml")
    fixed = {
        **base.params,
        "backstitch": ParamSpec("backstitch", "fixed", value=0.0),
        "backstitch_interval": ParamSpec("backstitch_interval", "fixed", value=1),
    }
    b_range = ParamSpec("flood", "float", low=0.0, high=0.5)
    out = {
        "none": {**fixed},
        "flooding": {**fixed, "flood": b_range},
        "iFlood": {
            **fixed,
            "flood": b_range,
            "flood_mode": ParamSpec("flood_mode", "fixed", value="sample"),
        },
        "backstitch": dict(base.params),
    }
    # Batches of 10: every variant trains as populations (iFlood and backstitch batched too).
    budget_changes = {"n_trials": budget, "batch": 10} | ({"epochs": epochs} if epochs else {})
    return {
        name: dataclasses.replace(base, name=f"noisy-{name}", params=params, **budget_changes)
        for name, params in out.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=20, help="trials per regularizer")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only redraw flooding.png from the committed benchmarks/results/flooding_curves.json",
    )
    add_output_arguments(
        parser,
        f"1 seed, {QUICK_EPOCHS} epochs, b on a 6-point grid, {QUICK_TRIALS} trials per "
        f"grid or TPE study and {QUICK_BUDGET} per regularizer",
    )
    args = parse_args(parser)
    torch.set_num_threads(1)
    run = Run(args, "flooding")
    if args.replot:
        material = json.loads((RESULTS / "flooding_curves.json").read_text())
        material["curves"] = {float(b): h for b, h in material["curves"].items()}
        material["by_b"] = {float(lr): pts for lr, pts in material["by_b"].items()}
        _plot(material, run.path("flooding.png"))
        run.finish()
        return 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = QUICK_EPOCHS if args.quick else None
    grid = load_study_file(STUDIES / "flooding-digits-noisy-grid.toml")
    tpe = load_study_file(STUDIES / "flooding-digits-noisy-tpe.toml")
    if args.quick:
        args.seeds, args.budget = 1, QUICK_BUDGET
        coarse = ParamSpec("flood", "float", low=0.0, high=0.5, step=0.1)
        grid = dataclasses.replace(
            grid, params={**grid.params, "flood": coarse}, n_trials=QUICK_TRIALS,
            batch=QUICK_TRIALS, epochs=QUICK_EPOCHS,
        )  # fmt: skip
        tpe = dataclasses.replace(tpe, n_trials=QUICK_TRIALS, batch=9, epochs=QUICK_EPOCHS)
    rows, regularizer_rows, curves = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            storage = f"sqlite:///{tmp}/seed{seed}.db"
            print(f"seed {seed}: grid ({grid.n_trials} trials)…", flush=True)
            g, g_time = _run(_seeded(grid, seed), storage)
            print(f"seed {seed}: TPE ({tpe.n_trials} trials)…", flush=True)
            t, t_time = _run(_seeded(tpe, seed), storage)
            unflooded = _best([x for x in g.trials if x.params["flood"] == 0.0])
            best_g, best_t = _best(g.trials), _best(t.trials)
            rows.append((seed, unflooded, best_g, g_time, best_t, t_time))
            if seed == 0:
                curves = _curves(g.trials, best_g)
            for name, config in _variants(args.budget, epochs).items():
                print(f"seed {seed}: {name} ({config.n_trials} TPE trials)…", flush=True)
                study, secs = _run(_seeded(config, seed), storage)
                regularizer_rows.append((seed, name, _best(study.trials), secs))
    report = _report(rows, regularizer_rows, args, run, grid.n_trials)
    assert curves is not None, "seed 0 draws the figure: --seeds must be >= 1"
    run.write("flooding.md", report)
    run.write("flooding_curves.json", json.dumps({**curves, "meta": run.facts()}))
    _plot(curves, run.path("flooding.png"))
    print(report)
    run.finish()
    return 0


def _acc(t: optuna.trial.FrozenTrial) -> tuple[float, float]:
    return t.user_attrs["val_metric"], t.user_attrs["test_metric"]


GRID_COLUMNS = [
    "seed",
    "no flooding: lr, val, test",
    "grid: b, lr, val, test",
    "grid s",
    "TPE: b, lr, val, test",
    "TPE s",
]
REGULARIZER_COLUMNS = [
    "regularizer",
    "test accuracy",
    "paired − none",
    "val accuracy",
    "best params, seed 0",
    "s / study",
]


def _grid_row(
    seed: int,
    unflooded: optuna.trial.FrozenTrial,
    grid: optuna.trial.FrozenTrial,
    grid_s: float,
    tpe: optuna.trial.FrozenTrial,
    tpe_s: float,
) -> list[str]:
    """One seed: the best trial without flooding, of the grid over b and of TPE over b."""
    return [
        str(seed),
        f"{unflooded.params['lr']:g}, {_acc(unflooded)[0]:.4f}, {_acc(unflooded)[1]:.4f}",
        f"{grid.params['flood']:.2f}, {grid.params['lr']:g}, {_acc(grid)[0]:.4f}, "
        f"{_acc(grid)[1]:.4f}",
        f"{grid_s:.0f}",
        f"{tpe.params['flood']:.3f}, {tpe.params['lr']:.2g}, {_acc(tpe)[0]:.4f}, "
        f"{_acc(tpe)[1]:.4f}",
        f"{tpe_s:.0f}",
    ]


def _regularizer_rows(regularizer_rows) -> list[list[str]]:
    """One row per regularizer: test accuracy, its paired gain over none, val accuracy, seed
    0's best parameters and the mean wall time of a study."""
    plain = {r[0]: _acc(r[2])[1] for r in regularizer_rows if r[1] == "none"}
    table = []
    for name in ("none", "flooding", "iFlood", "backstitch"):
        mine = [r for r in regularizer_rows if r[1] == name]
        first = mine[0][2].params
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in first.items()
        )
        table.append(
            [
                name,
                format_interval([_acc(r[2])[1] for r in mine], 4),
                format_interval([_acc(r[2])[1] - plain[r[0]] for r in mine], 4),
                format_interval([_acc(r[2])[0] for r in mine], 4),
                shown,
                f"{statistics.mean(r[3] for r in mine):.0f}",
            ]
        )
    return table


def _report(rows, regularizer_rows, args, run: Run, n_grid: int) -> str:
    lines = [
        "# Flooding on digits with 20% noisy training labels",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s on {run.machine_line()}): "
        f"seeds 0–{args.seeds - 1}, {args.budget} trials per regularizer; MLP 64-128-128-10, "
        "Adam, batch 64, validation and test labels clean. Best trial of each study on "
        "validation accuracy; its test accuracy.",
        "",
        f"## Grid over b (paper's protocol) vs TPE over b, same budget ({n_grid} trials)",
        "",
    ]
    lines += markdown_table(GRID_COLUMNS, [_grid_row(*row) for row in rows])
    lines += [
        "",
        "Test accuracy over seeds (mean [95% bootstrap interval]): "
        f"no flooding {format_interval([_acc(r[1])[1] for r in rows], 4)}, "
        f"grid {format_interval([_acc(r[2])[1] for r in rows], 4)}, "
        f"TPE {format_interval([_acc(r[4])[1] for r in rows], 4)}; paired, grid − no flooding "
        f"{format_interval([_acc(r[2])[1] - _acc(r[1])[1] for r in rows], 4)}, TPE − no flooding "
        f"{format_interval([_acc(r[4])[1] - _acc(r[1])[1] for r in rows], 4)}.",
        "",
        f"## Regularizers on the same noisy data, {args.budget} TPE trials each",
        "",
    ]
    lines += markdown_table(REGULARIZER_COLUMNS, _regularizer_rows(regularizer_rows))
    return "\n".join(lines) + "\n"


def _curves(trials: list[optuna.trial.FrozenTrial], best: optuna.trial.FrozenTrial) -> dict:
    """Seed 0's material for the figure: loss curves at the learning rate where the unflooded
    model overfits most (its validation loss rises most from its minimum: where flooding has
    something to do), with b = 0, that lr's best b and two others; and accuracy against b."""

    def rise(t: optuna.trial.FrozenTrial) -> float:
        curve = t.user_attrs["history"]["val_loss1"]
        return curve[-1] - min(curve)

    unflooded = [t for t in trials if t.params["flood"] == 0.0]
    lr = max(unflooded, key=rise).params["lr"]
    same_lr = {t.params["flood"]: t for t in trials if t.params["lr"] == lr}
    best_b = _best(list(same_lr.values())).params["flood"]
    shown = sorted({0.0, best_b, 0.1, 0.3} & set(same_lr))
    return {
        "lr": lr,
        "curves": {b: same_lr[b].user_attrs["history"] for b in shown},
        "by_b": {
            lr_: sorted((t.params["flood"], *_acc(t)) for t in trials if t.params["lr"] == lr_)
            for lr_ in sorted({t.params["lr"] for t in trials})
        },
        "best_b": best_b,
        "overall_best": (best.params["flood"], best.params["lr"]),
    }


def _plot(material: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6), layout="constrained")
    ax_val, ax_train, ax_b = fig.subplots(1, 3)
    for b, history in material["curves"].items():
        label = (
            "no flooding"
            if b == 0
            else f"b = {b:.2f}" + (" (best)" if b == material["best_b"] else "")
        )
        epochs = range(1, len(history["val_loss1"]) + 1)
        ax_val.plot(epochs, history["val_loss1"], label=label)
        ax_train.plot(epochs, history["train_objective"], label=label)
    ax_val.set(
        title="validation cross-entropy (clean labels)\n"
        f"at lr = {material['lr']:g}, where it rises most",
        xlabel="epoch",
        ylabel="cross-entropy",
    )
    ax_train.set(
        title="training objective (noisy labels)\n|L − b| + b: hovers at the flood level b",
        xlabel="epoch",
        ylabel="|L − b| + b",
        yscale="log",
    )
    for lr, points in material["by_b"].items():
        b, val, test = zip(*points, strict=True)
        line = ax_b.plot(b, test, label=f"test, lr = {lr:g}")[0]
        ax_b.plot(b, val, linestyle=":", color=line.get_color(), alpha=0.7)
    b_best, lr_best = material["overall_best"]
    ax_b.axvline(b_best, color="k", linewidth=0.8, linestyle="--")
    ax_b.set(
        title=f"accuracy against b\n(dotted: validation; dashed: the best b, at lr {lr_best:g})",
        xlabel="flood level b",
        ylabel="accuracy",
    )
    for ax in (ax_val, ax_train, ax_b):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
