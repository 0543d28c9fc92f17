"""torch's threads: hpsearch's choice against torch's default, idle and beside a busy process.

Runs a digits study (weight_decay, one trial at a time) with ``hpsearch run`` and with
``hpsearch run --workers 2``, each with the threads hpsearch chooses (the usable cores divided
by the workers) and with torch's default (one thread per core in every process: ``--threads``
set to it), on an idle machine and beside one CPU-bound process (a Python busy loop, as another
user's job would be). The configurations are interleaved over rounds; each is timed from
start to exit of the command (start-up included) into a fresh SQLite file. Writes
``threads.json`` and ``threads.md`` with trials/s and the ratio of the choice to the default.

Usage: python benchmarks/threads.py [--rounds 3] [--trials 6] [--quick]
       [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Run, add_output_arguments, parse_args  # noqa: E402

from hpsearch.results.report import markdown_table  # noqa: E402

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")

STUDY = """
[study]
name = "threads"
dataset = "digits"
setup = "weight_decay"
mode = "pareto"
sampler = "random"
n_trials = {trials}
seed = 0

[budget]
epochs = {epochs}
batch_size = 64

[params]
alpha = {{ type = "float", low = 1e-5, high = 1.0, log = true }}
lr = {{ type = "float", low = 1e-3, high = 3e-2, log = true }}
optimizer = "adam"
depth = 2
width = 64
"""


def _torch_default_threads(env: dict[str, str]) -> int:
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.check_output([sys.executable, "-c", code], env=env, text=True))


def _busy() -> subprocess.Popen:
    # Spins until its parent is gone: a benchmark killed by a signal leaves nothing spinning.
    spin = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    return subprocess.Popen([sys.executable, "-c", spin])


Config = tuple[int, int | None, bool]  # workers, --threads or None for hpsearch's choice, busy


def _label(c: Config, default: int) -> str:
    """``command | threads | machine`` of a configuration, ``default`` torch's threads."""
    workers, flag, busy = c
    who = "hpsearch's choice" if flag is None else f"--threads {flag}"
    if flag == default:
        who += " (torch's default)"
    where = "beside a busy process" if busy else "idle"
    return f"{'run' if workers == 1 else 'run --workers 2'} | {who} | {where}"


def _threads_table(
    configs: list[Config], default: int, rate: dict[str, float], chosen: dict[str, set[int]]
) -> list[str]:
    """Per configuration: the threads each process used, trials/s (``rate``, by label) and its
    ratio to the same run at torch's ``default`` threads."""
    rows = []
    for c in configs:
        workers, _, busy = c
        name = _label(c, default)
        base = rate[_label((workers, default, busy), default)]
        command, who, where = (part.strip() for part in name.split("|"))
        threads = "/".join(str(n) for n in sorted(chosen[name]))
        trials_per_s = rate[name]
        rows.append(
            [
                f"`{command}`",
                f"{who}: {threads}",
                where,
                f"{trials_per_s:.2f}",
                f"{trials_per_s / base:.2f}x",
            ]
        )
    return markdown_table(
        ["command", "threads per process", "machine", "trials/s", "vs torch's default"], rows
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--trials", type=int, default=6, help="trials per run (default 6)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    add_output_arguments(parser, quick="1 round of 2 trials of 3 epochs, no --threads 1 runs")
    args = parse_args(parser, argv)
    run = Run(args, "threads")
    rounds, trials, epochs = (1, 2, 3) if args.quick else (args.rounds, args.trials, args.epochs)

    work = Path(tempfile.mkdtemp(prefix="hpsearch-threads-"))
    study = work / "threads.toml"
    study.write_text(textwrap.dedent(STUDY.format(trials=trials, epochs=epochs)))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    default = _torch_default_threads(env)
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} usable cores; torch's default: {default} threads", file=sys.stderr)

    # (workers, --threads or None for hpsearch's choice, a busy neighbour)
    configs: list[Config] = []
    for busy in (False, True):
        for workers in (1, 2):
            configs.append((workers, None, busy))
            configs.append((workers, default, busy))  # torch's default, in every process
            if workers == 1 and default > 1 and not args.quick:
                configs.append((workers, 1, busy))

    seconds: dict[str, list[float]] = {_label(c, default): [] for c in configs}
    chosen: dict[str, set[int]] = {_label(c, default): set() for c in configs}
    for r in range(rounds):
        for i, c in enumerate(configs):
            workers, flag, busy = c
            cmd = [HPSEARCH, "run", str(study), "--no-progress", "--no-dashboard"]
            cmd += ["--storage", f"sqlite:///{work / f'r{r}-{i}.db'}"]
            cmd += ["--workers", str(workers)] if workers > 1 else []
            cmd += ["--threads", str(flag)] if flag is not None else []
            neighbour = _busy() if busy else None
            try:
                started = time.perf_counter()
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                took = time.perf_counter() - started
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
            stated = re.search(r"torch uses (\d+) thread", out.stderr)
            name = _label(c, default)
            chosen[name].add(int(stated[1]) if stated else -1)
            seconds[name].append(took)
            print(f"round {r + 1}: {name}: {took:.1f} s, {out.stderr.splitlines()[0]}",
                  file=sys.stderr, flush=True)  # fmt: skip

    rate = {k: trials / statistics.median(v) for k, v in seconds.items()}
    results = {
        **run.facts(),
        "usable_cores": cores,
        "torch_default_threads": default,
        "rounds": rounds,
        "trials": trials,
        "epochs": epochs,
        "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        "trials_per_s": {k: round(v, 3) for k, v in rate.items()},
        "threads_per_process": {k: sorted(v) for k, v in chosen.items()},
    }
    run.write("threads.json", json.dumps(results, indent=2) + "\n")
    lines = [
        "# torch threads: hpsearch's choice vs torch's default",
        "",
        f"Machine: {run.machine_line()}. Command: `{run.command}`.",
        f"A digits MLP 64-64 (weight_decay), {trials} trials of {epochs} epochs per run, "
        f"{rounds} interleaved round(s); median wall time of the whole command.",
        "",
    ]
    lines += _threads_table(configs, default, rate, chosen)
    run.write("threads.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    run.finish()


if __name__ == "__main__":
    main()
