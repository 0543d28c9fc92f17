"""Hypervolume per wall-second: population mode with batch pruning against population mode
without it and against sequential mode, on the shipped pareto studies.

For each study with a fixed architecture (a searched width or depth splits a batch into
groups of one or two, where population mode has nothing to batch) and each seed (the study's
``seed``, so sampler and initialisation, and ``split_seed``, so the data split), three runs,
interleaved, in one process at 1 torch thread, each into a fresh SQLite file:

    sequential   ``run_study(batch=1)``, the study's ``n_trials`` (N);
    population   ``run_study(batch=K)``, N trials;
    pruned       ``run_study(batch=K)`` with ``pruner = successive_halving`` (rungs at
                 ``m · 3^i`` epochs, ``m = ⌈epochs / 9⌉``, η = 3, margin 0), slots of pruned
                 runs refilled, until 2N trials were asked.

The hypervolume of a run at time t is that of the validation-loss front of its COMPLETE
trials stored by t, both losses scaled to [0, 1] over the union of the three runs' fronts
of that study and seed, reference point (1.1, 1.1). "Equal final HV": the target of a seed
is 98% of the population run's final hypervolume; each run's time to reach it gives
HV/s = target / time, and the speed-up of a pair is the ratio of their times. A run that
never reaches the target counts as not reached. Medians with 95% bootstrap intervals over
the seeds.

Writes ``batch_pruning.md``, ``batch_pruning.json`` and ``batch_pruning.png`` to --out
(default: a temporary folder, printed; ``--write-results``: benchmarks/results/).

Usage: python benchmarks/batch_pruning.py [--quick] [--seeds N] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import Run, add_output_arguments, bootstrap_interval, parse_args

from hpsearch.results.report import markdown_table

STUDIES = (
    "two_task-digits-pareto",
    "sparsity-diabetes-pareto",
    "weight_decay-iris-pareto",
    "two_task-wine-pareto",
)
BATCH = 8
TARGET_FRACTION = 0.98
MODES = ("sequential", "population", "pruned")
ROOT = Path(__file__).resolve().parent.parent


class Pruning:
    """The batch pruner of the ``pruned`` runs, and how many trials they may ask."""

    def __init__(self, first_rung: float, reduction: int, margin: float, budget: float) -> None:
        self.first_rung, self.reduction = first_rung, reduction
        self.margin, self.budget = margin, budget

    def options(self, epochs: int) -> dict:
        return {
            "min_resource": max(1, math.ceil(self.first_rung * epochs)),
            "reduction_factor": self.reduction,
            "margin": self.margin,
        }

    def describe(self) -> str:
        return (
            f"successive halving across the batch, first rung ⌈{self.first_rung:g} · epochs⌉, "
            f"η = {self.reduction}, margin {self.margin:g}; the pruned run may ask "
            f"{self.budget:g}N trials, the others N (the study's n_trials)"
        )


def one_run(config, mode: str, folder: Path, pruning: Pruning) -> dict:
    """Run one mode of a study; returns its completed points with their completion times."""
    import optuna

    import hpsearch

    n = config.n_trials
    if mode == "pruned":
        config = dataclasses.replace(
            config, pruner="successive_halving", pruner_options=pruning.options(config.epochs)
        )
        n = round(pruning.budget * config.n_trials)
    storage = f"sqlite:///{folder / f'{config.name}.db'}"
    started = datetime.datetime.now()
    clock = time.perf_counter()
    hpsearch.run_study(
        config,
        storage,
        hpsearch.RunOptions(n_trials=n, progress=False, batch=1 if mode == "sequential" else BATCH),
    )
    wall = time.perf_counter() - clock
    trials = optuna.load_study(study_name=config.name, storage=storage).trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    epochs = sum(t.user_attrs.get("epochs_run", 0) for t in trials)
    return {
        "wall_s": wall,
        "points": [list(t.values) for t in done],
        "times": [(t.datetime_complete - started).total_seconds() for t in done],
        "states": {k: v for k, v in states.items() if v},
        "epochs_trained": epochs,
    }


def hypervolume(points: np.ndarray) -> float:
    from hpsearch.results.analysis import hypervolume_2d

    return hypervolume_2d(points, (1.1, 1.1)) if len(points) else 0.0


def front(points: np.ndarray) -> np.ndarray:
    keep = [
        i for i, p in enumerate(points) if not any((q <= p).all() and (q < p).any() for q in points)
    ]
    return points[keep]


def anytime(run: dict, low: np.ndarray, span: np.ndarray) -> tuple[list[float], list[float]]:
    """(times, hypervolumes) after each completion, in scaled units."""
    order = np.argsort(run["times"], kind="stable")
    points = (np.asarray(run["points"], float).reshape(-1, 2) - low) / span
    times, hvs = [], []
    for j in range(1, len(order) + 1):
        times.append(float(np.asarray(run["times"])[order[j - 1]]))
        hvs.append(hypervolume(points[order[:j]]))
    return times, hvs


def time_to(times: list[float], hvs: list[float], target: float) -> float | None:
    for t, h in zip(times, hvs, strict=True):
        if h >= target - 1e-12:
            return t
    return None


def bootstrap_median(values: list[float]) -> tuple[float, float, float]:
    """Median and its 95% percentile-bootstrap interval."""
    return bootstrap_interval(values, np.median)


def analyse(raw: dict) -> dict:
    """Per study and seed: scaled fronts, final HVs, times to the target, ratios."""
    out: dict = {}
    for study, seeds in raw.items():
        rows = []
        for seed, runs in seeds.items():
            fronts = [front(np.asarray(r["points"], float).reshape(-1, 2)) for r in runs.values()]
            union = np.vstack([f for f in fronts if len(f)])
            low, high = union.min(axis=0), union.max(axis=0)
            span = np.where(high > low, high - low, 1.0)
            row: dict = {"seed": seed}
            curves = {m: anytime(r, low, span) for m, r in runs.items()}
            target = TARGET_FRACTION * curves["population"][1][-1]
            row["target_hv"] = target
            for m, (times, hvs) in curves.items():
                reached = time_to(times, hvs, target)
                row[m] = {
                    "final_hv": hvs[-1] if hvs else 0.0,
                    "wall_s": runs[m]["wall_s"],
                    "time_to_target_s": reached,
                    "hv_per_s": None if reached is None else target / reached,
                    "states": runs[m]["states"],
                    "epochs_trained": runs[m]["epochs_trained"],
                    "curve": [times, hvs],
                }
            rows.append(row)
        out[study] = rows
    return out


def summarize(rows: list[dict]) -> dict:
    def ratio(a: str, b: str) -> list[float]:
        vals = []
        for r in rows:
            ta, tb = r[a]["time_to_target_s"], r[b]["time_to_target_s"]
            if ta is not None and tb is not None:
                vals.append(ta / tb)
        return vals

    summary = {}
    for m in MODES:
        summary[m] = {
            "final_hv": bootstrap_median([r[m]["final_hv"] for r in rows]),
            "wall_s": bootstrap_median([r[m]["wall_s"] for r in rows]),
            "reached": sum(r[m]["time_to_target_s"] is not None for r in rows),
        }
    for a, b in (("population", "pruned"), ("sequential", "pruned"), ("sequential", "population")):
        vals = ratio(a, b)
        summary[f"{a}/{b}"] = {
            "ratios": vals,
            "median_ci": bootstrap_median(vals) if vals else None,
        }
    return summary


def fmt_ci(ci: tuple[float, float, float] | None, digits: int = 2, unit: str = "") -> str:
    if ci is None:
        return "n/a"
    m, lo, hi = ci
    return f"{m:.{digits}f}{unit} [{lo:.{digits}f}–{hi:.{digits}f}]"


SUMMARY_COLUMNS = [
    "study",
    "pruned vs population",
    "pruned vs sequential",
    "population vs sequential",
    "final HV seq / pop / pruned",
    "reached target seq / pop / pruned",
    "wall s seq / pop / pruned",
]
SEED_COLUMNS = [
    "study",
    "seed",
    "mode",
    "final HV",
    "wall s",
    "to target s",
    "states",
    "epochs trained",
]


def _summary_rows(results: dict) -> list[list[str]]:
    """One row per study: the three speed-ups, then final HV, seeds reaching the target and
    wall time per mode."""
    table = []
    for study, rows in results["studies"].items():
        s = results["summary"][study]
        table.append(
            [
                study,
                fmt_ci(s["population/pruned"]["median_ci"], unit="×"),
                fmt_ci(s["sequential/pruned"]["median_ci"], unit="×"),
                fmt_ci(s["sequential/population"]["median_ci"], unit="×"),
                " / ".join(f"{s[m]['final_hv'][0]:.3f}" for m in MODES),
                " / ".join(f"{s[m]['reached']}/{len(rows)}" for m in MODES),
                " / ".join(f"{s[m]['wall_s'][0]:.1f}" for m in MODES),
            ]
        )
    return table


def _seed_rows(results: dict) -> list[list[str]]:
    """One row per study, seed and mode."""
    table = []
    for study, rows in results["studies"].items():
        for r in rows:
            for m in MODES:
                x = r[m]
                reached = "—" if x["time_to_target_s"] is None else f"{x['time_to_target_s']:.1f}"
                states = ", ".join(f"{k} {v}" for k, v in x["states"].items())
                table.append(
                    [
                        study,
                        str(r["seed"]),
                        m,
                        f"{x['final_hv']:.3f}",
                        f"{x['wall_s']:.1f}",
                        reached,
                        states,
                        str(x["epochs_trained"]),
                    ]
                )
    return table


def report(results: dict, run: Run, n_seeds: int, pruning: Pruning) -> str:
    lines = [
        "# Batch pruning: hypervolume per wall-second",
        "",
        f"Written by `{run.command}`. Machine: {run.machine_line()}. Every run at 1 torch "
        f"thread (`torch.set_num_threads(1)`), population batch K = {BATCH}, {n_seeds} seeds "
        f"(study seed and split seed), the three modes interleaved per seed. Pruning: "
        f"{pruning.describe()}.",
        "",
        f"Target of a seed: {TARGET_FRACTION:.0%} of the population run's final hypervolume "
        "(validation losses scaled to [0, 1] over the three runs' fronts, reference 1.1). "
        "Speed-up = time to the target of one mode ÷ that of the other, per seed; medians "
        "with 95% bootstrap intervals over the seeds that reached it in both.",
        "",
    ]
    lines += markdown_table(SUMMARY_COLUMNS, _summary_rows(results))
    lines += ["", "## Per seed", ""]
    lines += markdown_table(SEED_COLUMNS, _seed_rows(results))
    return "\n".join(lines) + "\n"


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    studies = list(results["studies"])
    fig, axes = plt.subplots(1, len(studies), figsize=(4.2 * len(studies), 3.6), squeeze=False)
    colours = {"sequential": "tab:gray", "population": "tab:blue", "pruned": "tab:red"}
    for ax, study in zip(axes[0], studies, strict=True):
        for r in results["studies"][study]:
            for m in MODES:
                times, hvs = r[m]["curve"]
                label = m if r is results["studies"][study][0] else None
                ax.step(times, hvs, where="post", color=colours[m], alpha=0.6, lw=1.2, label=label)
        ax.set_title(study, fontsize=9)
        ax.set_xlabel("wall seconds")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("hypervolume (scaled validation losses)")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Hypervolume of the completed trials over time, one line per seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser, "2 seeds, two studies, a quarter of the trials")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per study (default 5)")
    parser.add_argument("--studies", nargs="+", default=list(STUDIES), help="study names")
    parser.add_argument("--first-rung", type=float, default=0.25, help="fraction of epochs")
    parser.add_argument("--reduction", type=int, default=2, help="η")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--budget", type=float, default=3.0, help="asks, in multiples of N")
    args = parse_args(parser, argv)
    pruning = Pruning(args.first_rung, args.reduction, args.margin, args.budget)
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    import hpsearch

    run = Run(args, "batch_pruning")
    seeds = list(range(2 if args.quick else args.seeds))
    studies = args.studies[:2] if args.quick else args.studies
    raw: dict = {s: {} for s in studies}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Warm-up, untimed: the first run of a process imports and compiles what the others
        # reuse (seconds), which would count against whichever mode came first.
        warm = hpsearch.load_study_file(ROOT / "studies" / f"{studies[0]}.toml")
        warm = dataclasses.replace(warm, n_trials=BATCH, epochs=2, name="warm-up")
        for m in MODES:
            one_run(dataclasses.replace(warm, name=f"warm-up-{m}"), m, folder, pruning)
        for seed in seeds:
            for study in studies:
                config = hpsearch.load_study_file(ROOT / "studies" / f"{study}.toml")
                n = max(BATCH, config.n_trials // 4) if args.quick else config.n_trials
                config = dataclasses.replace(config, seed=seed, split_seed=seed, n_trials=n)
                runs = {}
                # The modes in a rotating order, so that drift in the machine's speed does
                # not always favour the same one.
                for m in MODES[seed % 3 :] + MODES[: seed % 3]:
                    named = dataclasses.replace(config, name=f"{study}-{m}-{seed}")
                    runs[m] = one_run(named, m, folder, pruning)
                    print(
                        f"{study} seed {seed} {m}: {runs[m]['wall_s']:.1f} s, {runs[m]['states']}",
                        file=sys.stderr,
                        flush=True,
                    )
                raw[study][seed] = {m: runs[m] for m in MODES}
    studies_out = analyse(raw)
    results = {
        "facts": run.facts(),
        "batch": BATCH,
        "seeds": seeds,
        "studies": studies_out,
        "summary": {s: summarize(rows) for s, rows in studies_out.items()},
    }
    results["pruning"] = vars(pruning)
    text = report(results, run, len(seeds), pruning)
    run.write("batch_pruning.md", text)
    run.write("batch_pruning.json", json.dumps(results, indent=1))
    draw(results, run.path("batch_pruning.png"))
    print(text)
    run.finish()


if __name__ == "__main__":
    main()
