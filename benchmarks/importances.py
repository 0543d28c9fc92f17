"""What matters most in the shipped real-data studies: fANOVA and PED-ANOVA importances.

Runs every study file in ``studies/`` that trains on real data and searches two or more
parameters (the labs' playground and MGS files are other commands), each at up to
``--max-trials`` trials in population batches of ``--batch``, for ``--seeds`` study
seeds (the seed sets the sampler and the initialisation; the split is the file's), and asks
``hpsearch.results.importance`` which searched parameter explains each target: each
objective of the study and the validation metric. Per study and target: the importance of
every parameter (fANOVA, seeded; mean and range over seeds) and the one PED-ANOVA ranks first.

Writes ``importances.md``, ``importances.json`` and ``importances.png`` (fANOVA importance of
each parameter for the validation metric, study by study) to --out (default: a temporary
folder, printed); ``--write-results`` writes them to benchmarks/results/.

Usage: python benchmarks/importances.py [--seeds 3] [--max-trials 40] [--batch 20] [--quick]
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
from _common import Run, add_output_arguments, parse_args  # noqa: E402

from hpsearch import RunOptions, load_study_file, run_study  # noqa: E402
from hpsearch.results.importance import study_importances  # noqa: E402
from hpsearch.results.report import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The knobs the question is about, in the table's order; other searched parameters (depth,
# width, latent_dim, ...) are reported under "other".
KNOBS = ("lr", "alpha", "optimizer", "flood", "backstitch", "lr_decay")
QUICK = {"seeds": 1, "max_trials": 6, "epochs": 2, "studies": 3}


def shipped_studies() -> list[Path]:
    """Study files on real data that search two or more parameters."""
    out = []
    for path in sorted((ROOT / "studies").glob("*.toml")):
        try:
            config = load_study_file(path)
        except Exception:  # noqa: BLE001 - a lab file (playground, MGS): another command
            continue
        searched = [k for k, p in config.params.items() if p.searched]
        if config.dataset != "none" and len(searched) >= 2:
            out.append(path)
    return out


def run_one(path: Path, seed: int, storage: str, args: argparse.Namespace) -> dict:
    config = load_study_file(path)
    changes: dict = {
        "name": f"{config.name}-s{seed}",
        "seed": seed,
        "n_trials": min(config.n_trials, args.max_trials),
        # Population batches (the files' own batch is 1 for most): the same trials, trained K
        # at a time; a file with a one-trial-at-a-time pruner (median, hyperband) keeps it and
        # runs one trial at a time.
        "batch": 1 if config.pruner not in ("none", "successive_halving") else args.batch,
    }
    if args.epochs:
        changes["epochs"] = args.epochs
    config = dataclasses.replace(config, **changes)
    start = time.perf_counter()
    run_study(config, storage, RunOptions(progress=False))
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name=config.name, storage=storage)
    fanova = study_importances(study, "fanova")
    ped = study_importances(study, "ped_anova")
    print(
        f"{path.stem} seed {seed}: {wall:.0f} s; fANOVA "
        + "; ".join(f"{t}: {max(v, key=v.get)}" for t, v in fanova.targets.items()),
        file=sys.stderr,
        flush=True,
    )
    return {
        "study": path.stem,
        "seed": seed,
        "trials": fanova.n_trials,
        "batch": config.batch,
        "epochs": config.epochs,
        "wall_s": wall,
        "fanova": fanova.targets,
        "ped_anova": ped.targets,
    }


def summarize(rows: list[dict]) -> list[dict]:
    """Per study and target: mean, min and max fANOVA importance of each parameter over
    seeds, and how often each parameter is first by either evaluator."""
    out = []
    for study in dict.fromkeys(r["study"] for r in rows):
        mine = [r for r in rows if r["study"] == study]
        for target in mine[0]["fanova"]:
            runs = [r for r in mine if target in r["fanova"]]
            params = sorted({p for r in runs for p in r["fanova"][target]})
            values = {p: [r["fanova"][target].get(p, 0.0) for r in runs] for p in params}
            first = {
                ev: [max(r[ev][target], key=r[ev][target].get) for r in runs if target in r[ev]]
                for ev in ("fanova", "ped_anova")
            }
            out.append(
                {
                    "study": study,
                    "target": target,
                    "seeds": len(runs),
                    "fanova": {
                        p: [float(np.mean(v)), float(np.min(v)), float(np.max(v))]
                        for p, v in values.items()
                    },
                    "first": {ev: {p: f.count(p) for p in set(f)} for ev, f in first.items()},
                }
            )
    return out


def _share(cell: dict, knob: str) -> str:
    if knob == "other":
        others = {p: v for p, v in cell["fanova"].items() if p not in KNOBS}
        if not others:
            return ""
        return ", ".join(f"{p} {v[0]:.2f}" for p, v in others.items())
    if knob not in cell["fanova"]:
        return ""
    mean, lo, hi = cell["fanova"][knob]
    return f"{mean:.2f} ({lo:.2f}–{hi:.2f})" if cell["seeds"] > 1 else f"{mean:.2f}"


def _importance_row(cell: dict, knobs: list[str]) -> list[str]:
    """One (study, target): the share of each knob, of the other parameters, and which
    parameter fANOVA / PED-ANOVA ranks first in how many seeds."""
    first = " / ".join(
        ", ".join(f"{p} {n}" for p, n in sorted(cell["first"][ev].items(), key=lambda x: -x[1]))
        for ev in ("fanova", "ped_anova")
    )
    shares = [_share(cell, k) for k in knobs]
    return [cell["study"], cell["target"], *shares, _share(cell, "other"), first]


def report(run: Run, args: argparse.Namespace, rows: list[dict], summary: list[dict]) -> str:
    knobs = [k for k in KNOBS if any(k in c["fanova"] for c in summary)]
    lines = [
        "# What matters most: hyperparameter importances of the shipped real-data studies",
        "",
        f"Made by `{run.command}` on {run.machine_line()}; wall {run.seconds():.0f} s. Each "
        f"study file at up to {args.max_trials} trials (population batches of "
        f"{args.batch}), seeds 0–{args.seeds - 1} (sampler and initialisation). Importance: "
        "Optuna's fANOVA (seeded), the share of a target's variance over the trials that a "
        "parameter explains (per target the parameters sum to 1); mean over seeds "
        "(min–max). 'first': which parameter fANOVA / PED-ANOVA (which looks at what the "
        "best 10% of trials share) ranks first, in how many seeds. Targets: each objective "
        "of the study (validation losses, or the scalarized value) and the validation metric.",
        "",
    ]
    lines += markdown_table(
        ["study", "target", *knobs, "other", "first (fANOVA / PED-ANOVA)"],
        [_importance_row(cell, knobs) for cell in summary],
    )
    # The question of the issue: how often is the learning rate the first parameter?
    with_lr = [c for c in summary if "lr" in c["fanova"]]
    lr_first = sum(c["first"]["fanova"].get("lr", 0) for c in with_lr)
    total = sum(sum(c["first"]["fanova"].values()) for c in with_lr)
    lines += [
        "",
        f"Of the (study, target, seed) triples whose study searches lr, fANOVA ranks lr "
        f"first in {lr_first} of {total}.",
        "",
        "Wall time per study and seed: "
        + ", ".join(f"{r['study']} s{r['seed']} {r['wall_s']:.0f} s" for r in rows)
        + ".",
        "",
        "![fANOVA importance for the validation metric](importances.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def figure(summary: list[dict], path: Path) -> None:
    # The validation metric is each study's last target.
    last = {c["study"]: c for c in summary}
    cells = list(last.values())
    params = sorted({p for c in cells for p in c["fanova"]}, key=lambda p: (p not in KNOBS, p))
    grid = np.full((len(cells), len(params)), np.nan)
    for i, c in enumerate(cells):
        for j, p in enumerate(params):
            if p in c["fanova"]:
                grid[i, j] = c["fanova"][p][0]
    fig, ax = plt.subplots(figsize=(1.1 * len(params) + 4, 0.42 * len(cells) + 1.6))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(len(cells)):
        for j in range(len(params)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center",
                        color="white" if grid[i, j] < 0.6 else "black", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(params)), params, rotation=30, ha="right")
    ax.set_yticks(range(len(cells)), [f"{c['study']} ({c['target']})" for c in cells], fontsize=8)
    ax.set_title("fANOVA importance for the validation metric (blank: not searched)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=40)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=0, help="override the files' (0: keep)")
    parser.add_argument("--studies", type=int, default=0, help="only the first N files (0: all)")
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()))
    args = parse_args(parser)
    if args.quick:
        vars(args).update(QUICK)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = Run(args, "importances")
    paths = shipped_studies()[: args.studies or None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'importances.db'}"
        for seed in range(args.seeds):
            for path in paths:
                rows.append(run_one(path, seed, storage, args))
    summary = summarize(rows)
    figure(summary, run.path("importances.png"))
    run.write("importances.md", report(run, args, rows, summary))
    run.write(
        "importances.json",
        json.dumps({**run.facts(), "summary": summary, "rows": rows}, indent=1),
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
