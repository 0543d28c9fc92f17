"""Concave and convex fronts with known truth: what each inner method reaches, whether a single
linear-α study is diagnosed right, and what ``hpsearch fill`` adds.

Problems (all synthetic, with a known front; see ``hpsearch.core.setups``):

- ``fonseca_fleming`` (concave everywhere) and ``front_curve`` with ``shape = "concave"`` and
  ``"mixed"`` (convex, then concave): a linear study must be flagged;
- ``front_curve`` with ``shape = "convex"`` and ``"convex_cubic"``: it must never be.

Per problem and seed (the seed sets the initialization and the sampler): three pareto studies
(TPE, 60 trials each, population mode) with inner method linear α, Chebyshev w and MDMM ε;
each study's hypervolume as a % of the true front's (reference point (1, 1) in raw units);
whether the linear study alone is diagnosed concave; then, on the concave problems, ``fill``
from a 45-trial linear study with 30 Chebyshev trials, and the HV before and after.

Part two repeats the diagnosis on many more simulated linear studies (SGD and Adam, 16 seeds
per shape) to measure the detection and false-alarm rates of the jump test.

Writes ``concave_fronts.md`` and ``concave_fronts.json`` to --out (default: a temporary
folder, printed); ``--write-results`` writes them to benchmarks/results/ instead.

Usage: python benchmarks/concave_fronts.py [--seeds 5] [--quick] [--out DIR | --write-results]
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

import numpy as np
import torch
from _common import Run, add_output_arguments, parse_args

from hpsearch import RunOptions, hypervolume_2d, load_study_file, run_study, study_points
from hpsearch.core.setups import fonseca_fleming_front, front_curve, get_setup
from hpsearch.errors import HpsearchError
from hpsearch.labs.sweeps import SWEEP_OPTIMIZERS, linear_sweep
from hpsearch.results.analysis import analyze_front
from hpsearch.results.fill import run_fill
from hpsearch.results.report import markdown_table
from hpsearch.study.config import ParamSpec

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = {
    "fonseca_fleming": ("fonseca_fleming", {}, True),
    "concave": ("front_curve", {"shape": "concave"}, True),
    "mixed": ("front_curve", {"shape": "mixed"}, True),
    "convex": ("front_curve", {"shape": "convex"}, False),
    "convex_cubic": ("front_curve", {"shape": "convex_cubic"}, False),
}
METHODS = ("linear", "chebyshev", "mdmm")
QUICK_EPOCHS = 300  # --quick: steps of each run (the study files': 1000)


def true_front(setup: str, options: dict) -> np.ndarray:
    if setup == "fonseca_fleming":
        return fonseca_fleming_front(20001)
    return front_curve(options["shape"], 20001)


def study_config(
    method: str, setup: str, options: dict, seed: int, n_trials: int, epochs: int | None = None
):
    """The shipped Fonseca–Fleming study file of ``method``, on another problem if asked (and
    with ``epochs`` steps instead of the file's, if given)."""
    config = load_study_file(ROOT / "studies" / f"fonseca_fleming-{method}-pareto.toml")
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    own = get_setup(setup).options
    old = get_setup(config.setup).options
    params = {k: p for k, p in config.params.items() if k not in old}
    params.update({k: ParamSpec(k, "fixed", value=o.default) for k, o in own.items()})
    for key, value in options.items():
        params[key] = ParamSpec(key, "fixed", value=value)
    name = f"{setup}-{options.get('shape', 'ff')}-{method}-s{seed}"
    return dataclasses.replace(
        config, name=name, setup=setup, params=params, seed=seed, n_trials=n_trials
    )


def best_placement_pct(front: np.ndarray, n: int) -> float:
    """HV % of the front's two ends and ``n`` more points of the true front, each placed
    greedily where it adds the most HV: about the most ``n`` fill trials can reach."""
    truth_hv = hypervolume_2d(front, (1.0, 1.0))
    candidates = front[:: max(1, len(front) // 1000)]
    chosen = [front[0], front[-1]]
    for _ in range(n):
        gains = [hypervolume_2d(np.vstack([*chosen, c]), (1.0, 1.0)) for c in candidates]
        chosen.append(candidates[int(np.argmax(gains))])
    return 100 * hypervolume_2d(np.array(chosen), (1.0, 1.0)) / truth_hv


def hv_percent(storage: str, name: str, truth_hv: float) -> float:
    points = study_points(storage, name)
    return 100 * hypervolume_2d(points.xy, (1.0, 1.0)) / truth_hv


def studies_part(
    seeds: int, n_trials: int, fill_base: int, fill_trials: int, log, epochs: int | None = None
) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (setup, options, concave) in PROBLEMS.items():
            truth_hv = hypervolume_2d(true_front(setup, options), (1.0, 1.0))
            rows = []
            for seed in range(seeds):
                storage = f"sqlite:///{Path(tmp) / f'{label}-{seed}.db'}"
                row: dict = {"seed": seed}
                for method in METHODS:
                    config = study_config(method, setup, options, seed, n_trials, epochs)
                    start = time.perf_counter()
                    run_study(config, storage, RunOptions(progress=False, batch=n_trials))
                    row[f"{method}_wall_s"] = time.perf_counter() - start
                    row[f"{method}_hv_pct"] = hv_percent(storage, config.name, truth_hv)
                    if method == "linear":
                        points = study_points(storage, config.name)
                        analysis = points.analyze()
                        row["linear_flagged"] = analysis.concave
                        # Neither: a hole the α sampled cannot settle ("undecided").
                        row["linear_undecided"] = analysis.undecided
                if concave:
                    base = study_config("linear", setup, options, seed, fill_base, epochs)
                    base = dataclasses.replace(base, name=base.name + "-base")
                    path = Path(tmp) / f"{base.name}.toml"
                    path.write_text(_study_file_text(base, setup, options))
                    base = dataclasses.replace(base, path=str(path))
                    run_study(base, storage, RunOptions(progress=False, batch=fill_base))
                    row["fill_before_pct"] = hv_percent(storage, base.name, truth_hv)
                    start = time.perf_counter()
                    try:
                        result = run_fill(
                            storage, base.name, "chebyshev", fill_trials, study_file=str(path),
                            progress=False,
                        )  # fmt: skip
                    except HpsearchError as e:  # nothing diagnosed: nothing to fill
                        row["fill_note"] = str(e)
                        row["fill_after_pct"] = row["fill_before_pct"]
                    else:
                        # Raw points of the linear study and its follow-up together.
                        both = np.concatenate([s.xy for s in result.comparison.studies])
                        row["fill_after_pct"] = 100 * hypervolume_2d(both, (1, 1)) / truth_hv
                    row["fill_wall_s"] = time.perf_counter() - start
                rows.append(row)
                log(f"{label} seed {seed}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
            out[label] = {"concave": concave, "true_hv": truth_hv, "seeds": rows}
            if concave:
                front = true_front(setup, options)
                out[label]["fill_ceiling_pct"] = best_placement_pct(front, fill_trials)
    return out


def _study_file_text(config, setup: str, options: dict) -> str:
    """A study file for ``config`` (``hpsearch fill`` reads the original's file)."""
    lines = [
        "[study]",
        f'name = "{config.name}"',
        'dataset = "none"',
        f'setup = "{setup}"',
        'model = "linear"',
        'mode = "pareto"',
        f"n_trials = {config.n_trials}",
        f"seed = {config.seed}",
        "[budget]",
        f"epochs = {config.epochs}",
        "batch_size = 1",
        "[params]",
        'method = "linear"',
        'optimizer = "sgd"',
        f"lr = {config.params['lr'].value}",
        'alpha = { type = "float", low = 1e-2, high = 1e2, log = true }',
        *(f'{k} = "{v}"' for k, v in options.items()),
    ]
    return "\n".join(lines) + "\n"


def sweeps_part(seeds: int, log) -> dict:
    """Simulated linear studies (:func:`hpsearch.labs.sweeps.linear_sweep`): 40 α log-uniform in
    [0.01, 100], one population each."""
    out: dict = {}
    for label, (setup, options, concave) in PROBLEMS.items():
        for opt in SWEEP_OPTIMIZERS:
            flags = []
            for seed in range(seeds):
                sweep = linear_sweep(setup, options, opt, seed)
                a = analyze_front(sweep.points, alpha=sweep.alpha, drift=sweep.drift)
                flags.append("concave" if a.concave else ("hole" if a.stretches else "convex"))
            out[f"{label}/{opt}"] = {"concave": concave, "verdicts": flags}
            log(f"{label}/{opt}: " + " ".join(flags))
    return out


def _fmt(v) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _mean_ci(values: list[float]) -> str:
    """Mean and a 95% t-interval half-width over seeds (sample sd, ddof = 1)."""
    t95 = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78, 6: 2.57, 7: 2.45, 8: 2.36, 10: 2.26}
    m = statistics.mean(values)
    if len(values) < 2:
        return f"{m:.1f}"
    half = t95.get(len(values), 2.0) * statistics.stdev(values) / len(values) ** 0.5
    return f"{m:.1f} ± {half:.1f}"


METHOD_COLUMNS = [
    "problem",
    "front",
    "linear HV %",
    "Chebyshev HV %",
    "MDMM HV %",
    "linear study called concave",
    "undecided",
]
FILL_COLUMNS = [
    "problem",
    "HV % before",
    "HV % after",
    "lowest seed after",
    "best placement",
    "fill wall s",
]


def _front(res: dict) -> str:
    return "concave" if res["concave"] else "convex"


def _method_rows(studies: dict) -> list[list[str]]:
    """Per problem: the mean HV % of each inner method and the linear study's diagnoses."""
    table = []
    for label, res in studies.items():
        rows = res["seeds"]
        flagged = sum(r["linear_flagged"] for r in rows)
        undecided = sum(r["linear_undecided"] for r in rows)
        hv = [_mean_ci([r[f"{m}_hv_pct"] for r in rows]) for m in METHODS]
        table.append([label, _front(res), *hv, f"{flagged} of {len(rows)}", str(undecided)])
    return table


def _fill_rows(studies: dict) -> list[list[str]]:
    """Per problem with fill runs: HV % before and after the fill, and the best placement."""
    table = []
    for label, res in studies.items():
        rows = [r for r in res["seeds"] if "fill_after_pct" in r]
        if rows:
            table.append(
                [
                    label,
                    _mean_ci([r["fill_before_pct"] for r in rows]),
                    _mean_ci([r["fill_after_pct"] for r in rows]),
                    f"{min(r['fill_after_pct'] for r in rows):.1f}",
                    f"{res['fill_ceiling_pct']:.1f}",
                    f"{statistics.mean(r['fill_wall_s'] for r in rows):.1f}",
                ]
            )
    return table


def _sweep_rows(sweeps: dict) -> list[list[str]]:
    """Per problem and optimizer: how many simulated linear studies got each verdict."""
    return [
        [key, _front(res), *(str(res["verdicts"].count(v)) for v in ("concave", "hole", "convex"))]
        for key, res in sweeps.items()
    ]


def report(studies: dict, sweeps: dict, meta: dict) -> str:
    lines = [
        "# Concave and convex fronts with a known truth",
        "",
        f"Made by `{meta['command']}` ({meta['wall_s']:.0f} s here: {meta['machine']}); "
        "regenerate with `python benchmarks/concave_fronts.py --write-results`. HV: reference "
        "point (1, 1) in raw "
        "units, as % of the true front's; mean ± 95% t-interval over seeds (sample sd). "
        "Pareto studies of "
        f"{meta['n_trials']} trials in population mode (the shipped Fonseca–Fleming study files: "
        f"TPE over α, QMC over w and ε), SGD lr 0.05, {meta['epochs']} steps, one "
        "initialization per seed; MDMM with damping 10 and multiplier step 0.5.",
        "",
        "## Each inner method, and the diagnosis of the linear study alone",
        "",
    ]
    lines += markdown_table(METHOD_COLUMNS, _method_rows(studies))
    lines += [
        "",
        f"## `hpsearch fill`: {meta['fill_base']} linear trials, then {meta['fill_trials']} "
        "Chebyshev trials",
        "",
    ]
    lines += markdown_table(FILL_COLUMNS, _fill_rows(studies))
    lines += [
        "",
        f"Best placement: the true front's two ends and {meta['fill_trials']} more of its points, "
        "each placed where it adds the most HV: about what the fill trials could reach from a "
        "linear study that found only the two ends (a linear study that found more of the front, "
        "as on `mixed`, leaves them less to do).",
        "",
        "## The jump test on simulated linear studies",
        "",
        "40 α log-uniform in [0.01, 100] per study, one initialization per study; verdicts of "
        "the diagnosis: concave, an unresolved hole (α too sparse to tell), or convex.",
        "",
    ]
    lines += markdown_table(
        ["problem / optimizer", "front", "concave", "hole", "convex"], _sweep_rows(sweeps)
    )
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the studies (default 5)")
    parser.add_argument("--sweep-seeds", type=int, default=16, help="simulated studies per case")
    add_output_arguments(
        parser, f"2 seeds, fewer trials of {QUICK_EPOCHS} steps, 2 simulated studies per case"
    )
    args = parse_args(parser)
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.sweep_seeds = 2, 2
    n_trials, fill_base, fill_trials = (30, 30, 16) if args.quick else (60, 45, 30)
    file_epochs = load_study_file(ROOT / "studies" / "fonseca_fleming-linear-pareto.toml").epochs
    epochs = QUICK_EPOCHS if args.quick else file_epochs
    run = Run(args, "concave_fronts")

    def log(text: str) -> None:
        print(f"[{run.seconds():6.0f} s] {text}", file=sys.stderr, flush=True)

    studies = studies_part(args.seeds, n_trials, fill_base, fill_trials, log, epochs)
    sweeps = sweeps_part(args.sweep_seeds, log)
    meta = {
        **run.facts(),
        "machine": run.machine_line(),
        "n_trials": n_trials,
        "fill_base": fill_base,
        "fill_trials": fill_trials,
        "epochs": epochs,
    }
    run.write("concave_fronts.md", report(studies, sweeps, meta))
    run.write(
        "concave_fronts.json",
        json.dumps({"meta": meta, "studies": studies, "sweeps": sweeps}, indent=1) + "\n",
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
