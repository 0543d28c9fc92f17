"""Trials per second against a competent hand-written loop, idle and beside a busy process.

One run, one machine, the same problem for all: a digits MLP 64-64-64-10 (ReLU), 50 epochs,
batch 64, Adam, tuning lr and the weight-decay α with TPE, trials stored in a fresh SQLite
file. Every configuration runs in its own subprocess with its torch threads set before torch
starts (OMP_NUM_THREADS), and is timed from before its data preparation to its last stored
trial (imports excluded):

    competent    an Optuna objective written as a competent user would: tensors preloaded
                 (no DataLoader), fused Adam with the L2 term as its weight decay, gradients
                 set to None, validation every epoch under inference_mode (a variants table
                 shows that the usual alternatives are slower);
    n_jobs=2     the same objective, ``study.optimize(n_jobs=2)``;
    2 processes  the same objective in two processes sharing the study;
    sequential   ``hpsearch.run_study`` one trial at a time (it also validates every epoch,
                 records the history and the train/val/test figures);
    K=…          ``run_study(batch=K)``, population mode.

The configurations run interleaved, round after round, each round idle and then beside one
CPU-bound process (a Python busy loop, on a 2-core machine: one core left). Every ratio is to
the competent loop at 1 thread measured in the same round and condition; the report gives the
median and range over the rounds, the load average, the float32 matmul peak measured in the
same run, and peak memory. A per-setup table compares population mode with hpsearch's own
sequential mode for each built-in setup (its fast path or the ``vmap`` path), and a pareto
study gives the hypervolume reached per wall-second, population against sequential.

Writes ``population.md`` and ``population.json`` to --out (default: a temporary folder,
printed; ``--write-results``: benchmarks/results/).

Usage: python benchmarks/population.py [--quick] [--rounds N] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import Run, add_output_arguments, parse_args

EPOCHS, BATCH, HIDDEN = 50, 64, 64
QUICK_EPOCHS = 5  # --quick: 5 epochs, 1 round, K in 8 and 32, a 32-trial pareto study
N_TRAIN = 1077  # digits train split (60% of 1,797 rows)
SETUP_EPOCHS = 10  # the per-setup table: shorter runs, four setups


def flops_per_trial(epochs: int) -> int:
    """Multiply-adds of one sample through 64-64-64-10, ×2 for FLOPs, ×3 for forward +
    backward, over the train split and ``epochs``."""
    return 3 * 2 * (64 * HIDDEN + HIDDEN * HIDDEN + HIDDEN * 10) * N_TRAIN * epochs


STUDY = """
[study]
name = "bench-{tag}"
dataset = "digits"
setup = "{setup}"
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
{extra}
"""

# The per-setup table's variants of the weight_decay study: its fast path forced through vmap,
# and the two extra-gradient methods, batched on the fast path.
VARIANTS = {
    "": "",
    "vmap": "",
    "compile": "",
    "backstitch": "backstitch = 0.3",
    "iflood": 'flood = 0.1\nflood_mode = "sample"',
}


# --- the configurations, each run in a child process ---------------------------------------


def _digits_tensors():
    """The digits split of the competent loop (hpsearch's own: 60/20/20, seed 0)."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_rest, x_te, y_rest, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest
    )
    scaler = StandardScaler().fit(x_tr)
    xs = [torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (x_tr, x_va, x_te)]
    return xs, [torch.tensor(a) for a in (y_tr, y_va, y_te)]


# The competent loop's variants: the one every ratio is to ("fused"), and what it is measured
# against in the variants table to show that no simple change makes it faster.
LOOP_VARIANTS = {
    "fused": "fused Adam, L2 as the optimizer's weight decay, grads set to None, "
    "inference_mode validation (the reference)",
    "foreach": "the same with the foreach (multi-tensor) Adam",
    "l2 in loss": "the same with α·Σ‖W‖² added to the loss (autograd)",
    "zero_grad": "the same with zeros written into the gradients instead of None",
    "last round": "the loop of the previous results: foreach Adam, L2 in the loss, "
    "validation once at the end",
}


def competent_train(data, lr: float, alpha: float, epochs: int, variant: str = "fused"):
    """Train the MLP as a competent user writes it; returns it and its last validation loss.

    The L2 term α·Σ‖W‖² of the weight matrices has the gradient 2α·W: Adam's (coupled)
    ``weight_decay = 2α`` on their group adds exactly that to the gradient, inside the fused
    kernel, instead of a penalty through autograd.
    """
    import torch

    (x_tr, x_va, _), (y_tr, y_va, _) = data
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
        torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10),
    )  # fmt: skip
    weights = [p for p in model.parameters() if p.dim() > 1]
    biases = [p for p in model.parameters() if p.dim() == 1]
    l2_in_loss = variant in ("l2 in loss", "last round")
    kernel = {"foreach": True} if variant in ("foreach", "last round") else {"fused": True}
    decay = 0.0 if l2_in_loss else 2 * alpha
    opt = torch.optim.Adam(
        [{"params": weights, "weight_decay": decay}, {"params": biases}], lr=lr, **kernel
    )
    val = float("nan")
    for epoch in range(epochs):
        perm = torch.randperm(len(x_tr))
        for s in range(0, len(x_tr), BATCH):
            idx = perm[s : s + BATCH]
            loss = torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            if l2_in_loss:
                loss = loss + alpha * sum(w.pow(2).sum() for w in weights)
            opt.zero_grad(set_to_none=variant != "zero_grad")
            loss.backward()
            opt.step()
        if variant != "last round" or epoch == epochs - 1:
            with torch.inference_mode():  # per epoch: what early stopping and pruning read
                val = float(torch.nn.functional.cross_entropy(model(x_va), y_va))
    return model, val


def _competent_objective(epochs: int, variant: str = "fused"):
    """The competent loop as an Optuna objective, with its data prepared (timed)."""
    import optuna
    import torch

    data = _digits_tensors()

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 1e-2, log=True)
        alpha = trial.suggest_float("alpha", 1e-5, 1e-1, log=True)
        model, val = competent_train(data, lr, alpha, epochs, variant)
        with torch.inference_mode():
            test = float(torch.nn.functional.cross_entropy(model(data[0][2]), data[1][2]))
        trial.set_user_attr("test_loss1", test)
        return val

    return objective


def phase_competent(n: int, storage: str, epochs: int, n_jobs: int = 1) -> float:
    import optuna

    start = time.perf_counter()
    objective = _competent_objective(epochs)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n, n_jobs=n_jobs)
    return time.perf_counter() - start


def phase_competent_worker(n: int, storage: str, epochs: int, seed: int) -> None:
    """One of two processes sharing a study: waits for "go" on stdin, then runs ``n`` trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("ready", flush=True)
    sys.stdin.readline()
    objective = _competent_objective(epochs)
    study = optuna.load_study(
        study_name="shared", storage=storage, sampler=optuna.samplers.TPESampler(seed=seed)
    )
    study.optimize(objective, n_trials=n)


def phase_processes(n: int, storage: str, epochs: int) -> float:
    """Two processes on one study, timed from "go" (their imports done) to both finished."""
    import optuna

    optuna.create_study(storage=storage, study_name="shared")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--phase",
                "worker",
                str(n // 2),
                storage,
                str(epochs),
                str(seed),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (0, 1)
    ]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in workers:
        if w.wait() != 0:
            raise RuntimeError("a competent-loop worker failed")
    return time.perf_counter() - start


def _study_file(
    folder: Path, tag: str, n: int, epochs: int, mode: str, setup: str, variant: str
) -> Path:
    # Pareto runs, sequential and population alike, use NSGA-II with generations of 32.
    sampler = '"tpe"' if mode == "scalarized" else '{ name = "nsgaii", population_size = 32 }'
    objective = 'objective = "loss1"' if mode == "scalarized" else ""
    path = folder / f"{tag}.toml"
    text = STUDY.format(
        tag=tag, setup=setup, mode=mode, objective=objective, sampler=sampler, n=n,
        epochs=epochs, batch=BATCH, hidden=HIDDEN, extra=VARIANTS[variant],
    )  # fmt: skip
    path.write_text(textwrap.dedent(text))
    return path


def phase_hpsearch(
    n: int, storage: str, batch: int, epochs: int, folder: Path, mode: str, setup: str,
    variant: str,
) -> dict:  # fmt: skip
    import hpsearch
    import hpsearch.core.population

    if variant == "vmap":  # the generic path every setup without a batched form takes
        hpsearch.core.population.stacked_supported = lambda module: False
    if variant == "compile":  # the fast path's elementwise task loss fused by inductor
        import torch

        import hpsearch.core.stacked

        task_loss = torch.compile(hpsearch.core.stacked.stacked_task_loss, dynamic=False)
        hpsearch.core.stacked.stacked_task_loss = task_loss
    tag = f"{mode}-{setup}-b{batch}"
    path = _study_file(folder, tag, n, epochs, mode, setup, variant)
    config = hpsearch.load_study_file(path)
    start = time.perf_counter()
    hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=batch))
    result: dict = {"seconds": time.perf_counter() - start}
    import optuna

    study = optuna.load_study(study_name=f"bench-{tag}", storage=storage)
    result["threads_used"] = sorted({t.user_attrs.get("torch_threads") for t in study.trials})
    if mode == "pareto":
        points = hpsearch.study_points(storage, f"bench-{tag}")
        result["points"] = [
            [float(a), float(b)] for a, b in zip(points.loss1, points.loss2, strict=True)
        ]
    return result


def phase_variants(epochs: int, rounds: int) -> dict:
    """Seconds per trial of each competent-loop variant, training alone, interleaved."""
    data = _digits_tensors()
    times: dict[str, list[float]] = {v: [] for v in LOOP_VARIANTS}
    competent_train(data, 3e-3, 1e-3, 1)  # warm-up
    for _ in range(rounds):
        for variant in LOOP_VARIANTS:
            start = time.perf_counter()
            competent_train(data, 3e-3, 1e-3, epochs, variant)
            times[variant].append(time.perf_counter() - start)
    return {"seconds": times}


# hpsearch's sequential run, step by step from the previous results' code to today's: what the
# profile of the last round pointed at (Adam's unfused update, the L2 penalty's autograd graph).
ABLATION = {
    "competent loop": "the reference loop (fused Adam, L2 as weight decay)",
    "hpsearch before": "foreach Adam, L2 through autograd (the code of the last results)",
    "+ fused Adam": "Adam's fused kernel, L2 through autograd",
    "+ L2 gradient by hand": "fused Adam, backward through L1 only, c2·∇L2 added (now)",
}


def phase_ablation(epochs: int, rounds: int) -> dict:
    """Seconds per trial of hpsearch's ``train`` with each change of ABLATION undone or
    applied, against the competent loop, training alone (no Optuna), interleaved."""
    import hpsearch
    from hpsearch.core import optimizers

    cls = hpsearch.get_setup("weight_decay")

    class ThroughAutograd(cls):  # type: ignore[misc, valid-type]
        def losses(self, module, x, y):  # overridden: hpsearch then takes L2 through autograd
            return super().losses(module, x, y)

    fused_adam = optimizers.adam

    def foreach_adam(*args, **kw):
        return fused_adam(*args, **{**kw, "foreach": True, "fused": False})

    data, tensors = hpsearch.load_dataset("digits"), _digits_tensors()
    spec = hpsearch.ModelSpec(depth=2, width=HIDDEN)
    config = hpsearch.TrainConfig(
        optimizer="adam", lr=3e-3, alpha=1e-3, epochs=epochs, batch_size=BATCH
    )

    def run(kind: str) -> None:
        if kind == "competent loop":
            competent_train(tensors, 3e-3, 1e-3, epochs)
            return
        optimizers.adam = foreach_adam if kind == "hpsearch before" else fused_adam
        setup = cls() if kind == "+ L2 gradient by hand" else ThroughAutograd()
        hpsearch.train(setup, data, spec, config)

    times: dict[str, list[float]] = {kind: [] for kind in ABLATION}
    for kind in ABLATION:
        run(kind)  # warm-up
    for _ in range(rounds):
        for kind in ABLATION:
            start = time.perf_counter()
            run(kind)
            times[kind].append(time.perf_counter() - start)
    optimizers.adam = fused_adam
    return {"seconds": times}


def random_configs(k: int, epochs: int, seed: int) -> list:
    """K Adam configs of the problem, lr and the weight-decay α drawn log-uniformly as the
    studies search them (no Optuna: benchmarks/gpu.py uses these on a GPU host)."""
    import random

    import hpsearch

    rng = random.Random(seed)
    return [
        hpsearch.TrainConfig(optimizer="adam", lr=10 ** rng.uniform(-3, -2),
                             alpha=10 ** rng.uniform(-5, -1), epochs=epochs, batch_size=BATCH)
        for _ in range(k)
    ]  # fmt: skip


MATMUL_OPS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")


def phase_ops(k: int, epochs: int) -> dict:
    """Where population mode's time goes: torch.profiler's self CPU time per op over a K-member
    run (the matmuls against the elementwise rest)."""

    from torch.profiler import ProfilerActivity, profile

    import hpsearch
    from hpsearch.core.population import train_population

    configs = random_configs(k, epochs, seed=0)
    setup, data = hpsearch.get_setup("weight_decay")(), hpsearch.load_dataset("digits")
    spec = hpsearch.ModelSpec(depth=2, width=HIDDEN)
    train_population(setup, data, spec, configs[:2])  # warm-up
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_population(setup, data, spec, configs)
    seconds = time.perf_counter() - start
    ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    return {"seconds": seconds, "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])[:12]),
            "matmul_seconds": sum(ops.get(name, 0.0) for name in MATMUL_OPS),
            "total_seconds": sum(ops.values())}  # fmt: skip


def phase_peak() -> float:
    """Float32 matmul GFLOP/s of this process's thread setting."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * 1024**3 * reps / (time.perf_counter() - start) / 1e9


def child(argv: list[str]) -> None:
    # Imports are not timed, for any configuration: what the competent loop and hpsearch's
    # data preparation import (scikit-learn's datasets, splits and scaler) is loaded here.
    import optuna  # noqa: F401
    import sklearn.datasets  # noqa: F401
    import sklearn.model_selection  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import torch

    kind = argv[0]
    if kind == "worker":
        phase_competent_worker(int(argv[1]), argv[2], int(argv[3]), int(argv[4]))
        return
    # torch's one-time lazy set-up (the first optimizer it builds imports its compiler,
    # about 1.5 s) is done before the clock starts, for every configuration alike.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'b.db'}"
        if kind == "peak":
            result["gflops"] = phase_peak()
        elif kind == "variants":
            result.update(phase_variants(int(argv[1]), int(argv[2])))
        elif kind == "ablation":
            result.update(phase_ablation(int(argv[1]), int(argv[2])))
        elif kind == "ops":
            result.update(phase_ops(int(argv[1]), int(argv[2])))
        elif kind == "competent":
            result["seconds"] = phase_competent(int(argv[1]), storage, int(argv[2]), int(argv[3]))
        elif kind == "processes":
            result["seconds"] = phase_processes(int(argv[1]), storage, int(argv[2]))
        else:
            n, batch, epochs = int(argv[1]), int(argv[2]), int(argv[3])
            mode, setup, variant = argv[4], argv[5], argv[6] if len(argv) > 6 else ""
            result.update(
                phase_hpsearch(n, storage, batch, epochs, Path(tmp), mode, setup, variant)
            )
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


# --- the parent: rounds, conditions, report -------------------------------------------------


class Config:
    """One configuration of the speed table, and its results per condition."""

    def __init__(self, name: str, trials: int, args: list[str], threads: int | None) -> None:
        self.name, self.trials, self.args = name, trials, args
        self.threads = threads  # None: hpsearch's own choice (follows the load in population)
        self.results: dict[str, list[dict]] = {"idle": [], "busy": []}


def run_child(args: list[str], threads: int | None, busy: bool) -> dict:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)
        if threads is not None:
            env[name] = str(threads)
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if neighbour is not None:
            time.sleep(0.5)  # let it take its core before the clock starts
        out = subprocess.run(
            [sys.executable, __file__, "--phase", *args],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    if out.returncode != 0:
        raise RuntimeError(f"{args}: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _span(values: list[float], fmt: str = ".2f") -> str:
    """median [min–max] of ``values``."""
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:{fmt}}"
    return f"{med:{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


RUN_COLUMNS = [
    "run",
    "threads",
    "trials",
    "idle: trials/s",
    "idle: vs competent, 1 thread",
    "busy: trials/s",
    "busy: vs competent, 1 thread",
    "idle GFLOP/s (% of peak)",
    "peak MB",
]
SETUP_COLUMNS = [
    "setup",
    "path",
    "sequential trials/s",
    "population trials/s",
    "population / sequential",
    "population vs weight_decay's fast path",
]


def _runs_table(summary: list[dict], idle_peak: float, flops: float) -> list[str]:
    """The speed table: one row per configuration (an item of population.json's ``runs``),
    ``idle_peak`` the median matmul peak in GFLOP/s, ``flops`` those of a trial."""
    from hpsearch.results.report import markdown_table  # here: the --phase children need not

    rows = []
    for result in summary:
        threads = result["threads"] or f"hpsearch's choice (used {result['threads_used']})"
        gflops = statistics.median(flops * rate / 1e9 for rate in result["idle_trials_per_s"])
        rows.append(
            [
                result["run"],
                str(threads),
                str(result["trials"]),
                _span(result["idle_trials_per_s"]),
                f"{_span(result['idle_vs_competent'])}×",
                _span(result["busy_trials_per_s"]),
                f"{_span(result['busy_vs_competent'])}×",
                f"{gflops:.1f} ({100 * gflops / idle_peak:.0f}%)",
                f"{result['max_rss_mb']:.0f}",
            ]
        )
    return markdown_table(RUN_COLUMNS, rows)


def _setups_table(setup_rows: list[dict]) -> list[str]:
    """The per-setup table (population.json's ``setups``): population against sequential, and
    against the first row's population (weight_decay's fast path)."""
    from hpsearch.results.report import markdown_table  # here: the --phase children need not

    fast = setup_rows[0]["population"]
    rows = []
    for setup in setup_rows:
        seq, pop = setup["sequential"], setup["population"]
        ratio = [p / s for p, s in zip(pop, seq, strict=True)]
        versus = [p / f for p, f in zip(pop, fast, strict=True)]
        rows.append(
            [
                setup["setup"],
                setup["path"],
                _span(seq),
                _span(pop),
                f"{_span(ratio)}×",
                f"{_span(versus)}×",
            ]
        )
    return markdown_table(SETUP_COLUMNS, rows)


def _loop_sections(epochs: int, rounds: int, k: int, peak: float, say) -> dict:
    """The competent loop's variants, hpsearch's sequential ablation and population mode's op
    profile, each in one child at 1 thread, idle; their tables said, their figures returned."""
    from hpsearch.results.report import markdown_table  # here: the --phase children need not

    reps = max(3, rounds)
    variants = run_child(["variants", str(epochs), str(reps)], 1, False)["seconds"]
    ablation = run_child(["ablation", str(epochs), str(reps)], 1, False)["seconds"]
    ops_epochs = max(2, epochs // 5)
    ops = run_child(["ops", str(k), str(ops_epochs)], 1, False)

    def per_trial(times: dict[str, list[float]], reference: str, names: dict) -> list[str]:
        ref = times[reference]
        rows = [
            [name, names[name], _span(t, ".3f"),
             f"{_span([r / x for r, x in zip(ref, t, strict=True)])}×"]
            for name, t in times.items()
        ]  # fmt: skip
        return markdown_table(["run", "what", "seconds per trial", "speed vs reference"], rows)

    say(f"\ncompetent-loop variants, training alone, 1 thread, idle, {reps} interleaved rounds:")
    for row in ["", *per_trial(variants, "fused", LOOP_VARIANTS)]:
        say(row)
    say(f"\nhpsearch sequential, before and after, training alone (no Optuna), 1 thread, idle, "
        f"{reps} interleaved rounds; speed against the competent loop:")  # fmt: skip
    for row in ["", *per_trial(ablation, "competent loop", ABLATION)]:
        say(row)
    flops = flops_per_trial(ops_epochs) * k
    share = ops["matmul_seconds"] / ops["total_seconds"]
    say(
        f"\npopulation K={k}, {ops_epochs} epochs, torch.profiler self CPU time: matmuls "
        f"(bmm, baddbmm) {100 * share:.0f}%, the rest {100 * (1 - share):.0f}%; the matmuls run "
        f"at {flops / ops['matmul_seconds'] / 1e9:.1f} GFLOP/s "
        f"({100 * flops / ops['matmul_seconds'] / 1e9 / peak:.0f}% of the 1024² peak), the whole "
        f"run at {flops / ops['seconds'] / 1e9:.1f} GFLOP/s (profiled)"
    )
    rows = [[name, f"{t:.3f}", f"{100 * t / ops['total_seconds']:.1f}%"]
            for name, t in ops["ops"].items()]  # fmt: skip
    for row in ["", *markdown_table(["op", "self CPU s", "share"], rows)]:
        say(row)
    return {"variants": variants, "ablation": ablation, "ops": ops}


def hp_args(
    n: int, k: int, epochs: int, setup: str = "weight_decay", variant: str = "",
    mode: str = "scalarized",
) -> list[str]:  # fmt: skip
    """A child's arguments for ``n`` trials of hpsearch, ``k`` at a time."""
    return ["hp", str(n), str(k), str(epochs), mode, setup, variant]


def speed_configs(epochs: int, n_seq: int, sizes: tuple[int, ...]) -> list[Config]:
    """The speed table's rows; the first, the competent loop at 1 thread, is the reference."""
    k = sizes[-2]
    return [
        Config("competent loop", n_seq, ["competent", str(n_seq), str(epochs), "1"], 1),
        Config("competent loop", n_seq, ["competent", str(n_seq), str(epochs), "1"], 2),
        Config("Optuna n_jobs=2", n_seq, ["competent", str(n_seq), str(epochs), "2"], 1),
        Config("Optuna 2 processes", n_seq, ["processes", str(n_seq), str(epochs)], 1),
        Config("hpsearch sequential", n_seq, hp_args(n_seq, 1, epochs), 1),
        *(Config(f"hpsearch population K={size}", size, hp_args(size, size, epochs), 1)
          for size in sizes),
        Config(f"hpsearch population K={k}", k, hp_args(k, k, epochs), None),
        Config(f"hpsearch population K={k}, task loss compiled", k,
               hp_args(k, k, epochs, variant="compile"), 1),
    ]  # fmt: skip


def run_rounds(configs: list[Config], rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    """Every configuration, round after round, idle then busy; the matmul peaks and loads."""
    peaks: dict[str, list[float]] = {"idle": [], "busy": []}
    loads: list[float] = []
    for r in range(rounds):
        for condition in ("idle", "busy"):
            busy = condition == "busy"
            loads.append(os.getloadavg()[0])
            peaks[condition].append(run_child(["peak"], 1, busy)["gflops"])
            for c in configs:
                result = run_child(c.args, c.threads, busy)
                c.results[condition].append(result)
                rate = c.trials / result["seconds"]
                print(
                    f"  round {r + 1} {condition:<4} {c.name:<28} threads "
                    f"{c.threads or 'auto'}: {result['seconds']:6.1f} s, {rate:6.2f} trials/s",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
    return peaks, loads


def summarize(configs: list[Config]) -> list[dict]:
    """population.json's ``runs``: rates and ratios to the first configuration, per condition."""

    def rates(c: Config, condition: str) -> list[float]:
        return [c.trials / x["seconds"] for x in c.results[condition]]

    def ratios(c: Config, condition: str) -> list[float]:
        pairs = zip(rates(c, condition), rates(configs[0], condition), strict=True)
        return [a / b for a, b in pairs]

    summary = []
    for c in configs:
        used = sorted(
            {t for x in c.results["idle"] + c.results["busy"] for t in x.get("threads_used", [])}
        )
        summary.append({
            "run": c.name, "threads": c.threads, "threads_used": used, "trials": c.trials,
            **{f"{cond}_trials_per_s": rates(c, cond) for cond in ("idle", "busy")},
            **{f"{cond}_vs_competent": ratios(c, cond) for cond in ("idle", "busy")},
            "max_rss_mb": max(x["max_rss_mb"] for x in c.results["idle"]),
        })  # fmt: skip
    return summary


SETUP_ROWS = (
    ("weight_decay", "", "fast (hand-derived)"),
    ("weight_decay", "vmap", "vmap (forced)"),
    ("sparsity", "", "fast (hand-derived)"),
    ("two_task", "", "vmap"),
    ("beta_vae", "", "vmap"),
    ("weight_decay", "backstitch", "fast, backstitch 0.3"),
    ("weight_decay", "iflood", "fast, iFlood b = 0.1"),
)


def setups_section(quick: bool, rounds: int, say) -> list[dict]:
    """Per setup: population against hpsearch's own sequential mode (fast path or vmap)."""
    k = 8 if quick else 32
    n = 2 if quick else 4
    epochs = QUICK_EPOCHS if quick else SETUP_EPOCHS
    say(
        f"\nper setup, idle, 1 thread, {epochs} epochs: hpsearch sequential ({n} "
        f"trials) against population K={k}, median of {rounds} round(s)"
    )
    setup_rows = []
    for setup, variant, path in SETUP_ROWS:
        seq, pop = [], []
        for _ in range(rounds):
            seq.append(n / run_child(hp_args(n, 1, epochs, setup, variant), 1, False)["seconds"])
            pop.append(k / run_child(hp_args(k, k, epochs, setup, variant), 1, False)["seconds"])
        print(
            f"  {setup} {path}: sequential {_span(seq)}, population {_span(pop)} trials/s",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        setup_rows.append(
            {"setup": setup, "variant": variant, "path": path, "sequential": seq,
             "population": pop}
        )  # fmt: skip
    for row in ["", *_setups_table(setup_rows)]:
        say(row)
    return setup_rows


def pareto_section(quick: bool, epochs: int, say) -> dict:
    """A pareto study, sequential and population (K = 32): hypervolume per wall-second."""
    import numpy as np

    from hpsearch import Normalization, analyze_front

    k, n = 32, 32 if quick else 64
    seq = run_child(hp_args(n, 1, epochs, mode="pareto"), 1, False)
    pop = run_child(hp_args(n, k, epochs, mode="pareto"), 1, False)
    fronts = [np.array(x.pop("points")) for x in (seq, pop)]
    norm = Normalization.from_fronts(fronts)
    say(f"\npareto study, idle, 1 thread, {n} trials, NSGA-II (population {k}), 1 run:")
    pareto = {}
    for name, x, pts in (("sequential", seq, fronts[0]), (f"population K={k}", pop, fronts[1])):
        hv = analyze_front(pts, normalization=norm).hypervolume
        pareto[name] = {"trials": n, "seconds": x["seconds"], "hv": hv}
        say(
            f"  {name:<18} HV {hv:.3f} in {x['seconds']:.1f} s = {hv / x['seconds']:.4f} "
            "HV per wall-second"
        )
    return pareto


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser, f"{QUICK_EPOCHS} epochs, 1 round, K in 8 and 32, 32 pareto trials")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--phase", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parse_args(parser)
    if args.phase:
        child(args.phase)
        return 0
    run = Run(args, "population")
    epochs = QUICK_EPOCHS if args.quick else EPOCHS
    rounds = 1 if args.quick else args.rounds
    sizes = (8, 32) if args.quick else (8, 32, 64, 128)
    configs = speed_configs(epochs, 4 if args.quick else 8, sizes)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    flops = flops_per_trial(epochs)
    say(
        f"digits MLP 64-{HIDDEN}-{HIDDEN}-10, {epochs} epochs, batch {BATCH}, Adam, TPE, SQLite; "
        f"{flops / 1e9:.2f} GFLOP per trial (fwd+bwd); {rounds} interleaved round(s), each "
        "idle then beside one busy process"
    )
    peaks, loads = run_rounds(configs, rounds)
    say(
        f"float32 matmul peak, 1 thread (1024²): idle {_span(peaks['idle'], '.1f')}, beside "
        f"a busy process {_span(peaks['busy'], '.1f')} GFLOP/s"
    )
    say(f"1-minute load average before each condition: {min(loads):.2f}–{max(loads):.2f}")
    summary = summarize(configs)
    peak = statistics.median(peaks["idle"])
    for row in ["", *_runs_table(summary, peak, flops)]:
        say(row)
    extra = _loop_sections(epochs, rounds, sizes[-2], peak, say)
    setup_rows = setups_section(args.quick, rounds, say)
    pareto = pareto_section(args.quick, epochs, say)
    report = [
        "# Trials per second against a competent loop, idle and beside a busy process",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s; {run.machine_line()}).",
        "Each cell: median [range] over the rounds; ratios are to the competent loop at 1 "
        'thread in the same round and condition. "busy": beside one CPU-bound process.',
        "",
        *lines,
    ]
    run.write("population.md", "\n".join(report) + "\n")
    facts = {
        "meta": run.facts(), "epochs": epochs, "rounds": rounds, "peak_gflops": peaks,
        "load_average_1min": loads, "runs": summary, "setups": setup_rows, "pareto": pareto,
    }  # fmt: skip
    run.write("population.json", json.dumps({**facts, **extra}, indent=1) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
