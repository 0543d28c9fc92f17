"""Outer search × inner scalarization on every real setup: hypervolume, gap and wall time.

For each real setup, runs the 2 × 3 matrix {scalarized, pareto} outer search × {linear α,
Chebyshev w, MDMM ε} inner training at a fixed trial budget and several seeds, then puts all of
a setup's trials under one normalization (see ``hpsearch.results.analysis``) and writes to
--out (default: a temporary folder, printed; ``--write-results``: benchmarks/results/)

    scalarization_matrix.md    the table (HV mean ± sd, gap, wall time)
    matrix_<setup>.png          the pareto-outer studies of seed 0 compared

Usage: python benchmarks/scalarization_matrix.py [--trials 16] [--seeds 3] [--epochs 10]
       [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import Run, add_output_arguments, parse_args

from hpsearch import load_study_file, run_study
from hpsearch.results.analysis import Normalization
from hpsearch.results.compare import compare_points, write_comparison
from hpsearch.results.report import study_points

QUICK = {"trials": 4, "seeds": 1, "epochs": 3}  # --quick

# Per setup: dataset, model params, the inner knobs' ranges, and the scalarized objective (a
# fixed trade-off written down: w1*L1 + w2*L2 with both terms of similar size).
SETUPS = {
    "weight_decay": {
        "dataset": "digits",
        "params": "lr = 0.003\ndepth = 1\nwidth = 64",
        "alpha": (1e-4, 1.0),
        "epsilon": (0.5, 80.0),
        "weights": (1.0, 0.02),
    },
    "sparsity": {
        "dataset": "wine",
        "params": "lr = 0.01\ndepth = 1\nwidth = 32",
        "alpha": (1e-4, 1.0),
        "epsilon": (1.0, 60.0),
        "weights": (1.0, 0.01),
    },
    "beta_vae": {
        "dataset": "digits",
        "params": "lr = 0.003\ndepth = 1\nwidth = 64\nlatent_dim = 8",
        "alpha": (0.01, 10.0),
        "epsilon": (0.5, 40.0),
        "weights": (1.0, 1.0),
    },
    "two_task": {
        "dataset": "digits",
        "params": "lr = 0.01\ndepth = 1\nwidth = 8",
        "alpha": (1e-2, 100.0),
        "epsilon": (0.4, 1.2),
        "weights": (1.0, 1.0),
    },
}
INNER = ("linear", "chebyshev", "mdmm")
OUTER = ("scalarized", "pareto")


def study_toml(setup: str, outer: str, inner: str, seed: int, trials: int, epochs: int) -> str:
    spec = SETUPS[setup]
    if inner == "linear":
        lo, hi = spec["alpha"]
        knob = f'alpha = {{ type = "float", low = {lo}, high = {hi}, log = true }}'
    elif inner == "chebyshev":
        knob = 'w = { type = "float", low = 0.02, high = 0.98 }'
    else:
        lo, hi = spec["epsilon"]
        knob = (
            f'epsilon = {{ type = "float", low = {lo}, high = {hi}, log = true }}\n'
            "damping = 1.0\nlambda_lr = 0.1"
        )
    objective = ""
    if outer == "scalarized":
        w1, w2 = spec["weights"]
        objective = f'objective = "weighted"\nobjective_weights = [{w1}, {w2}]'
    return f"""
[study]
name = "{setup}-{outer}-{inner}-s{seed}"
dataset = "{spec["dataset"]}"
setup = "{setup}"
mode = "{outer}"
{objective}
sampler = "tpe"
n_trials = {trials}
seed = {seed}

[budget]
epochs = {epochs}
batch_size = 64

[params]
method = "{inner}"
optimizer = "adam"
{spec["params"]}
{knob}
"""


def _mean_sd(values: list[float], digits: int) -> str:
    """Mean ± sample sd (ddof = 1, as everywhere in benchmarks/)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()))
    args = parse_args(parser)
    torch.set_num_threads(1)
    if args.quick:
        vars(args).update(QUICK)
    run = Run(args, "scalarization_matrix")
    table = run.path("scalarization_matrix.md")  # rewritten after each setup
    lines = [
        "# Outer search × inner scalarization on real data",
        "",
        f"{args.trials} trials per study (TPE), {args.epochs} epochs per trial, seeds "
        f"0–{args.seeds - 1}; made by `{run.command}` on {run.machine_line(end=False)}; "
        "regenerate with `python benchmarks/scalarization_matrix.py --write-results`. "
        "HV: hypervolume of each study's Pareto front in (validation L1, validation L2) (every "
        "trial counts in pareto mode, the feasible ones in scalarized mode), normalized per setup "
        "by the joint front of all its studies, reference point (1.1, 1.1). Gap: HV(front) − "
        "HV(supported part), as % of HV. Called concave: studies whose own trials the diagnosis "
        "calls concave. Mean ± sample sd over seeds. MDMM: the inequality form (coefficient "
        "max(0, λ + c·(L2 − ε))).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'matrix.db'}"
        for setup in args.setups:
            cells: dict[tuple[str, str], list[tuple]] = {}
            for outer in OUTER:
                for inner in INNER:
                    for seed in range(args.seeds):
                        path = Path(tmp) / f"{setup}-{outer}-{inner}-{seed}.toml"
                        path.write_text(
                            study_toml(setup, outer, inner, seed, args.trials, args.epochs)
                        )
                        config = load_study_file(path)
                        start = time.perf_counter()
                        run_study(config, storage, progress=False)
                        wall = time.perf_counter() - start
                        cells.setdefault((outer, inner), []).append(
                            (study_points(storage, config.name), wall)
                        )
                        print(f"{config.name}: {wall:.1f} s", file=sys.stderr, flush=True)
            # One normalization per setup: the joint front of every counted trial.
            norm = Normalization.from_fronts(
                [p.xy[p.counted] for runs in cells.values() for p, _ in runs]
            )
            names = cells[("pareto", "linear")][0][0].loss_names
            lines += [
                f"## {setup} on {SETUPS[setup]['dataset']} (L1 = {names[0]}, L2 = {names[1]})",
                "",
                "| outer | inner | HV | gap % | Pareto size | feasible % | called concave "
                "| wall s |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for (outer, inner), runs in cells.items():
                hv, gap, size, feas, wall, concave = [], [], [], [], [], 0
                for p, w in runs:
                    a = p.analyze(norm)
                    hv.append(a.hypervolume)
                    gap.append(100 * a.gap_fraction)
                    size.append(len(a.front))
                    feas.append(100 * p.feasible.mean())
                    wall.append(w)
                    concave += a.concave
                lines.append(
                    f"| {outer} | {inner} | {_mean_sd(hv, 3)} | {_mean_sd(gap, 1)} | "
                    f"{np.mean(size):.1f} | {np.mean(feas):.0f} | {concave} of {len(runs)} | "
                    f"{np.mean(wall):.1f} |"
                )
            seed0 = [cells[("pareto", inner)][0] for inner in INNER]
            comparison = compare_points(seed0)
            paths = write_comparison(comparison, Path(tmp) / setup)
            png = run.write(f"matrix_{setup}.png", paths["png"].read_bytes())
            lines += [
                "",
                f"Seed 0, pareto outer, all three inner methods: ![{setup}]({png.name})",
                "",
            ]
            lines += [f"- {v}" for v in comparison.verdicts()] + [""]
            table.write_text("\n".join(lines) + "\n")
    lines.append(f"Wall {run.seconds():.0f} s; {run.machine_line()}.")
    table.write_text("\n".join(lines) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
