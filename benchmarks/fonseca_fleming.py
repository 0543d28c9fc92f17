"""The synthetic concave check: Fonseca–Fleming with linear α, Chebyshev w, MDMM ε and Jacobian
descent (every aggregator but CAGrad), over seeds.

Per seed (it sets the sampler and, through ``init_seed = "trial"``, every trial's starting
point), one pareto study per inner method at the same number of trials, the settings of the
shipped ``studies/fonseca_fleming-*-pareto.toml`` (SGD, lr 0.05, 1000 steps). Linear α,
Chebyshev and MDMM train as population batches, Jacobian descent one trial at a time (it cannot
batch). Each study's hypervolume (reference (1, 1), raw units) as % of the true front's: with
every trial (equal trials) and with the trials that ended within the linear study's wall time
(equal wall time). Also: how far an aiming aggregator's preference weight w moves where a run
lands, against how far its starting point does (can ``fill`` aim with it?), and the cost of an
epoch of each method. Writes to --out (default: a temporary folder, printed;
``--write-results``: benchmarks/results/)

    fonseca_fleming.png   seed 0's studies compared
    fonseca_fleming.md    the tables and seed 0's verdicts
    fonseca_fleming.json  every number per seed

Usage: python benchmarks/fonseca_fleming.py [--seeds 5] [--trials 20] [--quick]
       [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import Run, add_output_arguments, format_interval, parse_args
from _jd import MEASURED, cost_table, ended_within, epoch_costs, jd_name, jd_params

from hpsearch import (
    ModelSpec,
    RunOptions,
    TrainConfig,
    compare_points,
    get_setup,
    hypervolume_2d,
    load_dataset,
    load_study_file,
    run_study,
    study_points,
)
from hpsearch.core.aggregators import AIMING_AGGREGATORS
from hpsearch.core.setups import fonseca_fleming_front
from hpsearch.core.train import train
from hpsearch.results.export import write_comparison
from hpsearch.results.report import markdown_table

BASELINES = {  # the shipped study files' [params] and samplers
    "linear": ("tpe", 'alpha = { type = "float", low = 1e-2, high = 1e2, log = true }'),
    "chebyshev": (
        "qmc",
        'w = { type = "float", low = 0.01, high = 0.99 }\nnormalize = "none"\n'
        "ideal1 = 0.0\nideal2 = 0.0",
    ),
    "mdmm": (
        "qmc",
        'epsilon = { type = "float", low = 0.01, high = 0.99 }\ndamping = 10.0\nlambda_lr = 0.5',
    ),
}
METHODS = (*BASELINES, *(jd_name(a) for a in MEASURED))
QUICK = {"seeds": 2, "trials": 6, "epochs": 200}
W_SWEEP = (0.1, 0.3, 0.5, 0.7, 0.9)


def study_toml(method: str, seed: int, trials: int, epochs: int) -> str:
    if method in BASELINES:
        sampler, params = BASELINES[method]
        params = f'method = "{method}"\n{params}'
        batch = trials
    else:
        aggregator = method.removeprefix("jd-")
        sampler, params, batch = "qmc", jd_params(aggregator, (0.01, 0.99)), 1
    return f"""
[study]
name = "ff-{method}-s{seed}"
dataset = "none"
setup = "fonseca_fleming"
model = "linear"
mode = "pareto"
sampler = "{sampler}"
n_trials = {trials}
batch = {batch}
seed = {seed}

[budget]
epochs = {epochs}
batch_size = 1

[params]
optimizer = "sgd"
lr = 0.05
{params}
{"" if "init_seed" in params else 'init_seed = "trial"'}
"""


def run_seed(storage: str, tmp: Path, seed: int, trials: int, epochs: int) -> dict:
    """Every method's study for one seed: HV with all trials and within linear's wall."""
    walls, hv, points = {}, {}, {}
    for method in METHODS:
        path = tmp / f"{method}-{seed}.toml"
        path.write_text(study_toml(method, seed, trials, epochs))
        config = load_study_file(path)
        start = time.perf_counter()
        run_study(config, storage, RunOptions(progress=False))
        walls[method] = time.perf_counter() - start
        points[method] = study_points(storage, config.name)
        hv[method] = hypervolume_2d(points[method].xy[points[method].counted], (1.0, 1.0))
        print(f"seed {seed} {method}: HV {hv[method]:.4f}, {walls[method]:.1f} s", file=sys.stderr)
    budget = walls["linear"]
    hv_at_wall = {}
    for method, p in points.items():
        keep = p.counted & ended_within(storage, p, budget)
        hv_at_wall[method] = hypervolume_2d(p.xy[keep], (1.0, 1.0)) if keep.any() else 0.0
    return {"hv": hv, "hv_at_linear_wall": hv_at_wall, "wall_s": walls, "points": points}


def aiming_sweep(epochs: int, inits: int) -> dict[str, list[list[float]]]:
    """f1 where each aiming aggregator's runs land: per starting point, one per w."""
    setup, data = get_setup("fonseca_fleming")(), load_dataset("none")
    landed: dict[str, list[list[float]]] = {}
    for aggregator in AIMING_AGGREGATORS:
        landed[aggregator] = [
            [
                train(
                    setup,
                    data,
                    ModelSpec(kind="linear"),
                    TrainConfig(
                        method="jd",
                        aggregator=aggregator,
                        w=w,
                        optimizer="sgd",
                        lr=0.05,
                        epochs=epochs,
                        batch_size=1,
                        seed=0,
                        init_seed=init,
                    ),
                ).val["loss1"]  # fmt: skip
                for w in W_SWEEP
            ]
            for init in range(inits)
        ]
    return landed


def aiming_table(landed: dict[str, list[list[float]]]) -> list[str]:
    """How far w moves the landing f1 (its range over w, per start) against how far the start
    does (its range over starts, per w), and the share of runs inside the stretch."""
    rows = []
    for aggregator, grid in landed.items():
        f1 = np.array(grid)  # starts × w
        by_w = np.ptp(f1, axis=1)
        by_start = np.ptp(f1, axis=0)
        inside = float(np.mean((f1 > 0.05) & (f1 < 0.95)))
        rows.append([
            jd_name(aggregator),
            f"{by_w.mean():.2f} [{by_w.min():.2f}, {by_w.max():.2f}]",
            f"{by_start.mean():.2f} [{by_start.min():.2f}, {by_start.max():.2f}]",
            f"{100 * inside:.0f}",
        ])  # fmt: skip
    return markdown_table(
        ["aggregator", "f1 range over w, per start", "f1 range over starts, per w", "% inside"],
        rows,
    )


def hv_table(per_seed: list[dict], true_hv: float) -> list[str]:
    def pct(key: str, method: str) -> str:
        return format_interval([100 * s[key][method] / true_hv for s in per_seed], 1)

    return markdown_table(
        ["inner method", "HV % (equal trials)", "HV % (linear's wall time)", "wall s"],
        [
            [
                m,
                pct("hv", m),
                pct("hv_at_linear_wall", m),
                f"{statistics.median(s['wall_s'][m] for s in per_seed):.1f}",
            ]
            for m in METHODS
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser, "2 seeds, 6 trials of 200 steps per study")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20, help="trials per study")
    args = parse_args(parser)
    torch.set_num_threads(1)
    run = Run(args, "fonseca_fleming")
    seeds, trials, epochs = (
        (QUICK["seeds"], QUICK["trials"], QUICK["epochs"])
        if args.quick
        else (args.seeds, args.trials, 1000)
    )
    true_hv = hypervolume_2d(fonseca_fleming_front(20001), (1.0, 1.0))
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'ff.db'}"
        for seed in range(seeds):
            per_seed.append(run_seed(storage, Path(tmp), seed, trials, epochs))
        comparison = compare_points(
            [(per_seed[0]["points"][m], per_seed[0]["wall_s"][m]) for m in METHODS]
        )
        paths = write_comparison(comparison, Path(tmp) / "cmp")
        run.write("fonseca_fleming.png", paths["png"].read_bytes())
    landed = aiming_sweep(epochs, inits=5)
    costs = epoch_costs(
        "fonseca_fleming", "none", ModelSpec(kind="linear"),
        {"optimizer": "sgd", "lr": 0.05, "batch_size": 1}, epochs=100 if args.quick else 500,
    )  # fmt: skip
    lines = [
        "# Fonseca–Fleming: what linear α, Chebyshev, MDMM and Jacobian descent reach on a "
        "concave front",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s on {run.machine_line()}). "
        f"Seeds 0–{seeds - 1}; per seed and inner method a pareto study of {trials} trials "
        f"of {epochs} SGD steps (lr 0.05) on x ∈ R², each trial from its own random start "
        '(`init_seed = "trial"`); TPE over α, QMC over w (Chebyshev, and the aggregators that '
        "take preference weights) and ε; the aggregators without a knob search the starting "
        "point alone. Linear, Chebyshev and MDMM train as one population batch, Jacobian "
        "descent one trial at a time. HV: reference (1, 1) in raw units, as % of the true "
        f"front's ({true_hv:.4f}); mean [95% percentile-bootstrap interval] over seeds. Equal "
        "wall time: the trials that ended within the linear study's wall time of the same "
        "seed. No data here, so no test split: the front is the losses themselves.",
        "",
        "## Hypervolume at equal trials and at equal wall time",
        "",
        *hv_table(per_seed, true_hv),
        "",
        "## Can the preference weight aim?",
        "",
        f"Each aggregator that takes preference weights, at w ∈ {list(W_SWEEP)} from 5 "
        "starting points (`init_seed` 0–4), the same steps: how far f1 of where a run lands "
        "moves with w (its range over w at one start; mean [min, max] over the starts) and "
        "with the start (its range over starts at one w); % inside: runs that land inside "
        "the concave stretch (0.05 < f1 < 0.95).",
        "",
        *aiming_table(landed),
        "",
        "## Cost of an epoch",
        "",
        "One sequential run per method (one SGD step an epoch here), median of 3 interleaved "
        "rounds; Jacobian descent's two backward passes and the aggregator against linear α's "
        "one backward.",
        "",
        *cost_table(costs),
        "",
        "![Fonseca–Fleming](fonseca_fleming.png)",
        "",
        *[f"- {v}" for v in comparison.verdicts()],
    ]
    run.write("fonseca_fleming.md", "\n".join(lines) + "\n")
    record = {
        "facts": run.facts(),
        "true_hv": true_hv,
        "seeds": [{k: s[k] for k in ("hv", "hv_at_linear_wall", "wall_s")} for s in per_seed],
        "aiming_f1": landed,
        "epoch_seconds": costs,
    }
    run.write("fonseca_fleming.json", json.dumps(record, indent=1) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
