"""Trials per second: a plain Optuna loop vs hpsearch sequential vs hpsearch population mode.

One run, one machine, the same problem for all: a digits MLP 64-64-10 (ReLU), 50 epochs,
batch 64, Adam, tuning lr and the weight-decay α. Each measurement runs in its own subprocess
(peak memory is that process's maximum resident set) and stores trials in a fresh SQLite file.

    (a) plain: an Optuna objective written the ordinary way (torch.nn + torch.optim, one trial
        at a time, validation loss at the end);
    (b) hpsearch sequential: ``hpsearch.run_study`` one trial at a time;
    (c) hpsearch population: ``run_study(batch=K)`` for K in 8, 32, 64, 128.

Prints trials/s, each ratio to (a), achieved GFLOP/s beside a measured float32 matmul peak,
peak memory, and the hypervolume reached per wall-second on one pareto study, population vs
sequential; writes the same as ``population.md`` and ``population.json`` to --out (default: a
temporary folder, printed; ``--write-results``: benchmarks/results/).

Usage: python benchmarks/population.py [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Run, add_output_arguments, parse_args

EPOCHS, BATCH, HIDDEN = 50, 64, 64
QUICK_EPOCHS = 5  # --quick: also 3 sequential trials, K in 8 and 32, a 32-trial pareto study
N_TRAIN = 1077  # digits train split (60% of 1,797 rows)


def flops_per_trial(epochs: int) -> int:
    """Multiply-adds of one sample through 64-64-64-10, ×2 for FLOPs, ×3 for forward +
    backward, over the train split and ``epochs``."""
    return 3 * 2 * (64 * HIDDEN + HIDDEN * HIDDEN + HIDDEN * 10) * N_TRAIN * epochs


STUDY = """
[study]
name = "bench-{mode}-{tag}"
dataset = "digits"
setup = "weight_decay"
mode = "{mode}"
{objective}
sampler = {sampler}
n_trials = {n}
seed = 0

[budget]
epochs = {epochs}
batch_size = {batch}

[params]
optimizer = "adam"
lr = {{ type = "float", low = 1e-3, high = 1e-2, log = true }}
alpha = {{ type = "float", low = 1e-5, high = 1e-1, log = true }}
depth = 2
width = {hidden}
"""


def _study_file(folder: Path, mode: str, tag: str, n: int, sampler: str, epochs: int) -> Path:
    objective = 'objective = "loss1"' if mode == "scalarized" else ""
    path = folder / f"{mode}-{tag}.toml"
    path.write_text(
        textwrap.dedent(
            STUDY.format(
                mode=mode,
                tag=tag,
                objective=objective,
                sampler=sampler,
                n=n,
                epochs=epochs,
                batch=BATCH,
                hidden=HIDDEN,
            )
        )
    )
    return path


def phase_plain(n: int, storage: str, epochs: int) -> float:
    """(a) The ordinary way: an objective that builds, trains and evaluates one model."""
    import optuna
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    # Timed like hpsearch's run: data preparation and storage creation count, imports do not.
    start = time.perf_counter()
    x, y = load_digits(return_X_y=True)
    x_rest, _, y_rest, _ = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest
    )
    scaler = StandardScaler().fit(x_tr)
    x_tr = torch.tensor(scaler.transform(x_tr), dtype=torch.float32)
    x_va = torch.tensor(scaler.transform(x_va), dtype=torch.float32)
    y_tr, y_va = torch.tensor(y_tr), torch.tensor(y_va)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 1e-2, log=True)
        alpha = trial.suggest_float("alpha", 1e-5, 1e-1, log=True)
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, HIDDEN),
            torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, 10),
        )
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            perm = torch.randperm(len(x_tr))
            for s in range(0, len(x_tr), BATCH):
                idx = perm[s : s + BATCH]
                loss = torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
                loss = loss + alpha * sum(p.pow(2).sum() for p in model.parameters() if p.dim() > 1)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model(x_va), y_va))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n)
    return time.perf_counter() - start


def phase_hpsearch(n: int, storage: str, batch: int, mode: str, folder: Path, epochs: int) -> float:
    """(b)/(c) hpsearch's own run loop."""
    import hpsearch

    # Pareto runs, sequential and population alike, use NSGA-II with generations of 32.
    sampler = '"tpe"' if mode == "scalarized" else '{ name = "nsgaii", population_size = 32 }'
    path = _study_file(folder, mode, f"b{batch}", n, sampler, epochs)
    config = hpsearch.load_study_file(path)
    start = time.perf_counter()
    hpsearch.run_study(config, storage, progress=False, batch=batch)
    return time.perf_counter() - start


def phase_peak() -> float:
    """Float32 matmul GFLOP/s of this machine with torch's thread setting."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * 1024**3 * reps / (time.perf_counter() - start) / 1e9


def run_phase(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(argv: list[str]) -> None:
    import torch

    kind = argv[0]
    # Seconds count the study run only, after imports and data loading, with torch's one-time
    # lazy set-up (the first optimizer it builds imports its compiler, ~1.5 s) done before.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'b.db'}"
        if kind == "peak":
            result["gflops"] = phase_peak()
        elif kind == "plain":
            result["seconds"] = phase_plain(int(argv[1]), storage, int(argv[2]))
        else:
            n, batch, mode, epochs = int(argv[1]), int(argv[2]), argv[3], int(argv[4])
            result["seconds"] = phase_hpsearch(n, storage, batch, mode, Path(tmp), epochs)
            if mode == "pareto":
                import hpsearch

                points = hpsearch.study_points(storage, f"bench-pareto-b{batch}")
                result["points"] = [
                    [float(a), float(b)] for a, b in zip(points.loss1, points.loss2, strict=True)
                ]
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(
        parser, f"{QUICK_EPOCHS} epochs, 3 sequential trials, K in 8 and 32, 32 pareto trials"
    )
    parser.add_argument("--phase", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parse_args(parser)
    if args.phase:
        child(args.phase)
        return 0
    import torch

    run = Run(args, "population")
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    flops = flops_per_trial(epochs)
    n_seq = 3 if args.quick else 8
    sizes = (8, 32) if args.quick else (8, 32, 64, 128)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(
        f"machine: {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; digits MLP 64-{HIDDEN}-{HIDDEN}-10, {epochs} "
        f"epochs, batch {BATCH}; {flops / 1e9:.2f} GFLOP per trial (fwd+bwd)"
    )
    peak = run_phase(["peak"])["gflops"]
    say(f"float32 matmul peak (1024², {torch.get_num_threads()} threads): {peak:.1f} GFLOP/s")
    rows = []
    plain = run_phase(["plain", str(n_seq), str(epochs)])
    plain_rate = n_seq / plain["seconds"]
    rows.append(("(a) plain Optuna loop", n_seq, plain))
    rows.append(
        (
            "(b) hpsearch sequential",
            n_seq,
            run_phase(["hp", str(n_seq), "1", "scalarized", str(epochs)]),
        )
    )
    for k in sizes:
        result = run_phase(["hp", str(k), str(k), "scalarized", str(epochs)])
        rows.append((f"(c) hpsearch population K={k}", k, result))
    say(
        f"\n{'run':<32}{'trials':>7}{'wall s':>9}{'trials/s':>10}{'vs (a)':>8}"
        f"{'GFLOP/s':>9}{'% peak':>8}{'peak MB':>9}"
    )
    for name, n, r in rows:
        rate = n / r["seconds"]
        gflops = flops * n / r["seconds"] / 1e9
        say(
            f"{name:<32}{n:>7}{r['seconds']:>9.1f}{rate:>10.3f}{rate / plain_rate:>7.1f}x"
            f"{gflops:>9.1f}{100 * gflops / peak:>7.1f}%{r['max_rss_mb']:>9.0f}"
        )

    import numpy as np

    from hpsearch import Normalization, analyze_front

    k = 32
    n_pareto = 32 if args.quick else 64
    seq = run_phase(["hp", str(n_pareto), "1", "pareto", str(epochs)])
    pop = run_phase(["hp", str(n_pareto), str(k), "pareto", str(epochs)])
    fronts = [np.array(r["points"]) for r in (seq, pop)]
    norm = Normalization.from_fronts(fronts)
    say(f"\npareto study, {n_pareto} trials, NSGA-II (population {k}):")
    pareto = {}
    for name, r, pts in (("sequential", seq, fronts[0]), (f"population K={k}", pop, fronts[1])):
        hv = analyze_front(pts, normalization=norm).hypervolume
        pareto[name] = {"trials": n_pareto, "seconds": r["seconds"], "hv": hv}
        say(
            f"  {name:<18} HV {hv:.3f} in {r['seconds']:.1f} s = {hv / r['seconds']:.4f} "
            "HV per wall-second"
        )
    report = [
        "# Trials per second: plain Optuna loop, hpsearch sequential, population mode",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s on {run.machine_line()}).",
        "",
        "```",
        *lines,
        "```",
    ]
    run.write("population.md", "\n".join(report) + "\n")
    measured = [{"run": name, "trials": n, **r} for name, n, r in rows]
    for item in (seq, pop):
        item.pop("points", None)
    facts = {"meta": run.facts(), "epochs": epochs, "peak_gflops": peak}
    run.write(
        "population.json",
        json.dumps({**facts, "runs": measured, "pareto": pareto}, indent=1) + "\n",
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
