"""Trials per second and % of the float32 matmul peak on a GPU, K = 1 … 1024 trials at once.

The problem of ``benchmarks/population.py`` (digits MLP 64-64-64-10, ReLU, batch 64, Adam,
lr and the weight-decay α drawn at random), trained by hpsearch's core with the data moved to
the device once (``Dataset.to``): K = 1 is a sequential run (``hpsearch.train``), K > 1 one
population (``train_population``, K models as one batched model). Training only: no Optuna,
no storage (those cost the same on any device; ``population.py`` measures them). Each size is
timed after a warm-up of the same size (CUDA kernels loaded, cuBLAS planned), over --rounds
interleaved rounds, with the device synchronized before the clock stops.

The peak is the float32 matmul of two 8192² matrices on the same device in the same run,
TF32 off (torch's default for float32 matmuls, and what training used). A CPU reference on
the same host (all its cores, and 1 thread) gives the ratio a user would see.

Ready to run in one short call on a GPU host (about 2 minutes on one H100):

    python benchmarks/gpu.py --out DIR            # cuda, K = 1, 4, 16, 64, 256, 1024
    python benchmarks/gpu.py --device cpu --quick # the same code path, on the CPU

Writes ``gpu.md`` and ``gpu.json`` to --out (default: a temporary folder, printed;
``--write-results``: benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _common import Run, add_output_arguments, parse_args
from population import BATCH, HIDDEN, flops_per_trial, random_configs

EPOCHS = 10
SIZES = (1, 4, 16, 64, 256, 1024)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, n: int) -> float:
    """Float32 GFLOP/s of an n² matmul on ``device`` (TF32 off)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    synchronize(device)
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    synchronize(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def train_k(data, k: int, epochs: int) -> float:
    """Seconds to train K trials on ``data``'s device (sequential for K = 1)."""
    import hpsearch
    from hpsearch.core.population import train_population

    setup, spec = hpsearch.get_setup("weight_decay")(), hpsearch.ModelSpec(depth=2, width=HIDDEN)
    synchronize(data.device)
    start = time.perf_counter()
    if k == 1:
        hpsearch.train(setup, data, spec, random_configs(1, epochs, k)[0])
    else:
        train_population(setup, data, spec, random_configs(k, epochs, k))
    synchronize(data.device)
    return time.perf_counter() - start


def measure(device_name: str, sizes, epochs: int, rounds: int, threads: int | None) -> dict:
    """trials/s per K on one device (and thread setting), median over interleaved rounds."""
    import torch

    import hpsearch
    from hpsearch.core.device import resolve_device

    if threads is not None:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    data = hpsearch.load_dataset("digits").to(device)
    peak = matmul_peak(device, 8192 if device.type == "cuda" else 1024)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # training's peak, not the matmul's
    for k in sizes:
        train_k(data, k, 1)  # warm-up of this size
    seconds: dict[int, list[float]] = {k: [] for k in sizes}
    for r in range(rounds):
        for k in sizes:
            seconds[k].append(train_k(data, k, epochs))
            print(f"  round {r + 1} {device} K={k}: {seconds[k][-1]:.2f} s", file=sys.stderr)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"device": str(device), "name": name, "threads": torch.get_num_threads(),
            "peak_gflops": peak, "seconds": {str(k): v for k, v in seconds.items()},
            "max_memory_mib": memory}  # fmt: skip


def table(results: list[dict], epochs: int) -> list[str]:
    from hpsearch.results.tables import markdown_table  # no Optuna: a GPU host may lack it

    flops = flops_per_trial(epochs)
    rows = []
    for res in results:
        for k, times in res["seconds"].items():
            rate = int(k) / statistics.median(times)
            gflops = flops * rate / 1e9
            rows.append([
                f"{res['name']} ({res['device']}, {res['threads']} threads)", k,
                f"{rate:.1f} [{int(k) / max(times):.1f}–{int(k) / min(times):.1f}]",
                f"{gflops:.1f}", f"{100 * gflops / res['peak_gflops']:.1f}%",
            ])  # fmt: skip
    columns = ["device", "K", "trials/s (median [range])", "GFLOP/s", "% of its matmul peak"]
    return markdown_table(columns, rows)


def report(run: Run, results: list[dict], epochs: int, rounds: int) -> list[str]:
    """gpu.md's lines: what ran, the peaks, the table."""
    peaks = "; ".join(
        f"{r['name']} {r['threads']} threads {r['peak_gflops']:.0f} GFLOP/s" for r in results
    )
    return [
        "# Trials per second on a GPU, K = 1 … 1024",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s; {run.machine_line()}).",
        f"digits MLP 64-{HIDDEN}-{HIDDEN}-10, {epochs} epochs, batch {BATCH}, Adam; training only "
        f"(no Optuna, no storage); {flops_per_trial(epochs) / 1e9:.2f} GFLOP per trial; median "
        f"[range] of {rounds} interleaved round(s). Float32 matmul peaks: {peaks}.",
        "",
        *table(results, epochs),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser, "2 epochs, 1 round, K in 1, 4, 16")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu (default cuda)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-cpu-reference", action="store_true",
                        help="skip the CPU rows (all cores, then 1 thread)")  # fmt: skip
    args = parse_args(parser)
    from hpsearch.core.device import resolve_device
    from hpsearch.errors import HpsearchError

    try:
        resolve_device(args.device)  # not there: one line before anything runs
    except HpsearchError as e:
        parser.exit(1, f"{parser.prog}: error: {e}\n")
    run = Run(args, "gpu")
    epochs = 2 if args.quick else EPOCHS
    rounds = 1 if args.quick else args.rounds
    sizes = (1, 4, 16) if args.quick else SIZES
    results = [measure(args.device, sizes, epochs, rounds, None)]
    if not args.no_cpu_reference and results[0]["device"] != "cpu":
        cpu_sizes = tuple(k for k in sizes if k <= 256)  # 1024 on a CPU: minutes, not seconds
        results += [measure("cpu", cpu_sizes, epochs, rounds, t) for t in (None, 1)]
    facts = {"meta": run.facts(), "epochs": epochs, "rounds": rounds, "results": results}
    run.write("gpu.json", json.dumps(facts, indent=1) + "\n")  # first: the figures are kept
    lines = report(run, results, epochs, rounds)
    print("\n".join(lines))
    run.write("gpu.md", "\n".join(lines) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
