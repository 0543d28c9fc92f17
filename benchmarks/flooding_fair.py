"""Flooding, judged fairly: against early stopping at the same budget, in the regime where the
unflooded model memorizes the noise, over seeds that vary the split, the noise and the init.

Digits with 20% of the training labels flipped (validation and test clean), MLP 64-128-128-10,
Adam, ``--epochs`` epochs (default 150). Per seed s (``split_seed`` = study seed = s: the
split, the flipped labels, the initialisation):

1. ``studies/flooding-digits-noisy-fair.toml``: a grid study of the flood level b on
   {0, 0.06, …, 1.5} × lr {1e-3, 3e-3} (52 trials, one population batch). At both learning
   rates the unflooded run drives its training loss toward 0 and its validation loss rises
   within the budget (shown in the figure);
2. **flooding**: the (b, lr) of best final validation accuracy, its test accuracy;
3. **no flooding**: the b = 0 run of best final validation accuracy (over the two lr);
4. **early stopping** at the same budget: over the b = 0 runs, the (lr, epoch) of best
   validation accuracy (the earliest on a tie), retrained to that epoch (the same seeds give
   the same run up to it), its test accuracy; and **both**, flooding with early stopping:
   the (b, lr, epoch) of best validation accuracy over the whole grid, retrained;
5. **the rule of thumb** "b ≈ the training loss at which the validation loss starts to rise",
   and half of it: read off the b = 0 run at the chosen lr (its training loss at the epoch of
   least validation loss), taken to the nearest grid value, its test accuracy.

Paired per-seed differences of test accuracy with 95% percentile-bootstrap intervals over the
seeds. The test split has 360 rows: one prediction is 0.28 points.

Writes ``flooding_fair.md``, ``flooding_fair.json`` and ``flooding_fair.png`` to --out
(default: a temporary folder, printed); ``--write-results`` writes them to benchmarks/results/.

Usage: python benchmarks/flooding_fair.py [--seeds 5] [--epochs 150] [--quick]
       [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from _common import Run, add_output_arguments, bootstrap_interval, parse_args  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hpsearch import RunOptions, get_setup, load_study_file, run_study, train  # noqa: E402
from hpsearch.results.report import markdown_table  # noqa: E402
from hpsearch.study import keys  # noqa: E402
from hpsearch.study.config import ParamSpec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "studies" / "flooding-digits-noisy-fair.toml"
QUICK = {"seeds": 2, "epochs": 12}
VARIANTS = (
    "no_flooding",
    "flooding",
    "early_stopping",
    "flooding_early_stopping",
    "rule",
    "half_rule",
)
TEST_ROWS_NOTE = "the test split has 360 rows: one prediction is 0.28 points"


def _trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def _best_by_val(trials: list) -> optuna.trial.FrozenTrial:
    # Ties (common: 360 validation rows) go to the smaller b, then the smaller lr.
    return max(
        trials, key=lambda t: (t.user_attrs[keys.VAL_METRIC], -t.params["flood"], -t.params["lr"])
    )


def _test(t: optuna.trial.FrozenTrial) -> float:
    return float(t.user_attrs[keys.split_key("test", "metric")])


def run_seed(tmp: Path, seed: int, args: argparse.Namespace) -> dict:
    config = load_study_file(STUDY_FILE)
    changes: dict = {
        "name": f"fair-s{seed}",
        "seed": seed,
        "split_seed": seed,
        "epochs": args.epochs,
    }
    if args.quick:
        coarse = ParamSpec("flood", "float", low=0.0, high=1.5, step=0.3)
        changes.update(params={**config.params, "flood": coarse}, n_trials=12, batch=12)
    config = dataclasses.replace(config, **changes)
    storage = f"sqlite:///{tmp / f'seed{seed}.db'}"
    start = time.perf_counter()
    run_study(config, storage, RunOptions(progress=False))
    grid_s = time.perf_counter() - start
    trials = _trials(optuna.load_study(study_name=config.name, storage=storage))
    flooded = _best_by_val(trials)
    unflooded_runs = [t for t in trials if t.params["flood"] == 0.0]
    unflooded = _best_by_val(unflooded_runs)
    # Early stopping over the b = 0 runs: the (lr, epoch) of best validation accuracy.
    candidates = []
    for t in unflooded_runs:
        acc = np.array(t.user_attrs[keys.HISTORY]["val_metric"])
        e = int(np.argmax(acc))  # the earliest epoch of the best accuracy
        candidates.append((float(acc[e]), -e, -t.params["lr"], t, e + 1))
    es_val, _, _, es_trial, es_epoch = max(candidates, key=lambda c: c[:3])
    data = config.load_data()

    def retrain(t: optuna.trial.FrozenTrial, epochs: int):
        train_config, model, options = config.resolve(t.params, trial_number=t.number)
        train_config = dataclasses.replace(train_config, epochs=epochs)
        return train(get_setup(config.setup)(**options), data, model, train_config)

    start = time.perf_counter()
    stopped = retrain(es_trial, es_epoch)
    es_s = time.perf_counter() - start
    # Flooding and early stopping together: the (b, lr, epoch) of best validation accuracy
    # over every run of the grid.
    both = []
    for t in trials:
        acc = np.array(t.user_attrs[keys.HISTORY]["val_metric"])
        e = int(np.argmax(acc))
        both.append((float(acc[e]), -t.params["flood"], -e, -t.params["lr"], t, e + 1))
    fes_val, _, _, _, fes_trial, fes_epoch = max(both, key=lambda c: c[:4])
    flooded_stopped = retrain(fes_trial, fes_epoch)
    both_row = {
        "b": fes_trial.params["flood"],
        "lr": fes_trial.params["lr"],
        "epoch": fes_epoch,
        "val": fes_val,
        "test": flooded_stopped.test["metric"],
    }
    # Rule of thumb, at the flooded pick's lr: the b = 0 run's training loss where its
    # validation loss is least.
    base = next(t for t in unflooded_runs if t.params["lr"] == flooded.params["lr"])
    history = base.user_attrs[keys.HISTORY]
    rise = int(np.argmin(history["val_loss1"]))
    b_rule = float(history["train_objective"][rise])
    grid_b = sorted({t.params["flood"] for t in trials})

    def at_b(b: float) -> optuna.trial.FrozenTrial:
        nearest = min(grid_b, key=lambda g: abs(g - b))
        return next(
            t
            for t in trials
            if t.params["flood"] == nearest and t.params["lr"] == flooded.params["lr"]
        )

    rule, half = at_b(b_rule), at_b(b_rule / 2)
    row = {
        "seed": seed,
        "grid_s": grid_s,
        "early_stopping_retrain_s": es_s,
        "flooding": {
            "b": flooded.params["flood"],
            "lr": flooded.params["lr"],
            "val": flooded.user_attrs[keys.VAL_METRIC],
            "test": _test(flooded),
        },
        "no_flooding": {
            "lr": unflooded.params["lr"],
            "val": unflooded.user_attrs[keys.VAL_METRIC],
            "test": _test(unflooded),
        },
        "early_stopping": {
            "lr": es_trial.params["lr"],
            "epoch": es_epoch,
            "val": es_val,
            "val_retrained": stopped.val["metric"],
            "test": stopped.test["metric"],
        },
        "flooding_early_stopping": both_row,
        "rule": {
            "b_rule": b_rule,
            "rise_epoch": rise + 1,
            "b": rule.params["flood"],
            "test": _test(rule),
            "val": rule.user_attrs[keys.VAL_METRIC],
        },
        "half_rule": {
            "b": half.params["flood"],
            "test": _test(half),
            "val": half.user_attrs[keys.VAL_METRIC],
        },
        "by_b": {
            str(lr): sorted(
                (t.params["flood"], t.user_attrs[keys.VAL_METRIC], _test(t))
                for t in trials
                if t.params["lr"] == lr
            )
            for lr in sorted({t.params["lr"] for t in trials})
        },
        "curves": {
            str(t.params["lr"]): {
                k: t.user_attrs[keys.HISTORY][k]
                for k in ("val_loss1", "train_objective", "val_metric")
            }
            for t in unflooded_runs
        },
    }
    # The flooded pick's own curve, beside the unflooded ones.
    row["curves"]["flooded"] = {
        k: flooded.user_attrs[keys.HISTORY][k]
        for k in ("val_loss1", "train_objective", "val_metric")
    }
    print(
        f"seed {seed}: flooding b={row['flooding']['b']} lr={row['flooding']['lr']} test "
        f"{row['flooding']['test']:.4f}; no flooding {row['no_flooding']['test']:.4f}; early "
        f"stopping (epoch {es_epoch}) {row['early_stopping']['test']:.4f}; rule b={b_rule:.3f} "
        f"-> {row['rule']['test']:.4f}; {grid_s:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return row


def summarize(rows: list[dict]) -> dict:
    def col(name: str) -> list[float]:
        return [r[name]["test"] for r in rows]

    out = {name: bootstrap_interval(col(name)) for name in VARIANTS}
    for a, b in (
        ("flooding", "no_flooding"),
        ("flooding", "early_stopping"),
        ("early_stopping", "no_flooding"),
        ("flooding_early_stopping", "early_stopping"),
        ("rule", "flooding"),
        ("half_rule", "flooding"),
    ):
        out[f"{a} - {b}"] = bootstrap_interval([x - y for x, y in zip(col(a), col(b), strict=True)])
    return out


def _pct(v: tuple[float, float, float]) -> str:
    return f"{100 * v[0]:.2f} [{100 * v[1]:.2f}, {100 * v[2]:.2f}]"


SEED_COLUMNS = [
    "seed",
    "flooding: b, lr, val, test",
    "no flooding: lr, val, test",
    "early stopping: lr, epoch, val, test",
    "both: b, lr, epoch, test",
    "rule: b, test",
    "half rule: b, test",
    "grid s",
]


def _seed_row(r: dict) -> list[str]:
    """One seed: the pick of each variant, and the grid's wall time."""
    f, n, e, ru, h = (
        r["flooding"],
        r["no_flooding"],
        r["early_stopping"],
        r["rule"],
        r["half_rule"],
    )
    fe = r["flooding_early_stopping"]
    return [
        str(r["seed"]),
        f"{f['b']:.2f}, {f['lr']:g}, {f['val']:.4f}, {f['test']:.4f}",
        f"{n['lr']:g}, {n['val']:.4f}, {n['test']:.4f}",
        f"{e['lr']:g}, {e['epoch']}, {e['val']:.4f}, {e['test']:.4f}",
        f"{fe['b']:.2f}, {fe['lr']:g}, {fe['epoch']}, {fe['test']:.4f}",
        f"{ru['b']:.2f} (from {ru['b_rule']:.3f} at epoch {ru['rise_epoch']}), {ru['test']:.4f}",
        f"{h['b']:.2f}, {h['test']:.4f}",
        f"{r['grid_s']:.0f}",
    ]


def report(run: Run, args: argparse.Namespace, rows: list[dict], summary: dict) -> str:
    lines = [
        "# Flooding against early stopping on noisy digits",
        "",
        f"Made by `{run.command}` on {run.machine_line()}; wall {run.seconds():.0f} s. "
        f"`studies/flooding-digits-noisy-fair.toml`: digits, 20% of the training labels flipped, "
        f"MLP 64-128-128-10, Adam, {args.epochs} epochs; grid of b × lr {{1e-3, 3e-3}}; "
        f"{len(rows)} seeds, each setting the split, the flipped labels and the init. Picks on "
        f"validation accuracy, test accuracy reported ({TEST_ROWS_NOTE}). Early stopping: the "
        "b = 0 runs' (lr, epoch) of best validation accuracy, retrained to that epoch. Rule: "
        "Both: flooding with early stopping, the (b, lr, epoch) of best validation accuracy over "
        "the whole grid, retrained to that epoch. "
        "Rule: b = the b = 0 run's training loss at its epoch of least validation loss (at the "
        "flooded pick's lr), nearest grid value; half: half of it.",
        "",
    ]
    lines += markdown_table(SEED_COLUMNS, [_seed_row(r) for r in rows])
    lines += [
        "",
        "Test accuracy, % (mean [95% bootstrap interval] over seeds; differences paired per seed):",
        "",
    ]
    lines += markdown_table(["", "test accuracy %"], [[k, _pct(v)] for k, v in summary.items()])
    lines += ["", "![flooding against early stopping](flooding_fair.png)", ""]
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    r0 = rows[0]
    for name, curve in r0["curves"].items():
        label = (
            f"b = 0, lr {name}"
            if name != "flooded"
            else (f"flooded pick: b = {r0['flooding']['b']:.2f}, lr {r0['flooding']['lr']:g}")
        )
        x = range(1, len(curve["val_loss1"]) + 1)
        (line,) = axes[0].plot(x, curve["val_loss1"], label=f"{label} (validation)")
        axes[0].plot(
            x, curve["train_objective"], ls=":", color=line.get_color(), label=f"{label} (training)"
        )
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss (validation: clean labels)")
    axes[0].set_title("seed 0: loss per epoch")
    axes[0].legend(fontsize=7)
    for lr in r0["by_b"]:
        pts = np.array([[b, v, t] for r in rows for b, v, t in r["by_b"][lr]])
        bs = np.unique(pts[:, 0])
        mean_test = [pts[pts[:, 0] == b, 2].mean() for b in bs]
        mean_val = [pts[pts[:, 0] == b, 1].mean() for b in bs]
        (line,) = axes[1].plot(bs, mean_test, marker="o", ms=3, label=f"test, lr {lr}")
        axes[1].plot(bs, mean_val, ls=":", color=line.get_color(), label=f"validation, lr {lr}")
    es = np.mean([r["early_stopping"]["test"] for r in rows])
    axes[1].axhline(es, color="k", ls="--", lw=1, label="early stopping (test)")
    axes[1].set_xlabel("flood level b")
    axes[1].set_ylabel(f"accuracy, mean over {len(rows)} seeds")
    axes[1].set_title("accuracy against b")
    axes[1].legend(fontsize=7)
    names = list(VARIANTS)
    for i, name in enumerate(names):
        vals = [100 * r[name]["test"] for r in rows]
        axes[2].scatter(np.full(len(vals), i) + np.linspace(-0.12, 0.12, len(vals)), vals, s=18)
        axes[2].hlines(np.mean(vals), i - 0.25, i + 0.25, color="k")
    for k in range(len(rows)):  # one line per seed: the pairing
        axes[2].plot(
            range(len(names)),
            [100 * rows[k][n]["test"] for n in names],
            color="grey",
            alpha=0.3,
            lw=0.8,
        )
    labels = ["no\nflooding", "flooding", "early\nstopping", "flooding +\nearly stopping",
              "rule", "half\nrule"]  # fmt: skip
    axes[2].set_xticks(range(len(names)), labels)
    axes[2].set_ylabel("test accuracy %")
    axes[2].set_title("per seed (lines pair a seed's runs)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=150)
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()) + ", b step 0.1")
    args = parse_args(parser)
    if args.quick:
        vars(args).update(QUICK)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = Run(args, "flooding_fair")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(Path(tmp), seed, args) for seed in range(args.seeds)]
    summary = summarize(rows)
    figure(rows, run.path("flooding_fair.png"))
    run.write("flooding_fair.md", report(run, args, rows, summary))
    run.write(
        "flooding_fair.json",
        json.dumps({**run.facts(), "summary": summary, "rows": rows}, indent=1),
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
