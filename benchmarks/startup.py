"""What a new user waits for: the start-up of commands that never train, and the demo study.

Times, interleaved over rounds (each round runs every command once, in a shuffled order),
the wall time of ``python -c pass``, ``python -c "import optuna"``, ``hpsearch --help``,
``check``, ``list``, ``show`` and ``compare`` on a stored demo study; then ``hpsearch run
studies/demo.toml`` from scratch (what ``make demo`` runs), in population mode as shipped and
with ``--batch 1`` (one trial at a time) for the ratio. Writes ``startup.json`` and
``startup.md``.

Usage: python benchmarks/startup.py [--rounds 10] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Run, add_output_arguments, parse_args  # noqa: E402

from hpsearch.results.report import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HPSEARCH = str(BIN / "hpsearch")
DEMO = ROOT / "studies" / "demo.toml"
DEMO_NAME = "demo-digits-weight-decay"


def _timed(cmd: list[str], env: dict[str, str], said: list[str] | None = None) -> float:
    """Wall seconds of ``cmd``; the thread line it printed is appended to ``said``."""
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
    if said is not None:
        said += [line for line in out.stderr.splitlines() if "torch uses" in line]
    return seconds


def _commands_table(
    times: dict[str, list[float]], medians: dict[str, float], base: float
) -> list[str]:
    """Per command: its median, min and max wall time, and its median over ``base`` (that of
    ``import optuna``)."""
    return markdown_table(
        ["command", "median s", "min s", "max s", "over `import optuna`"],
        [
            [
                f"`{name}`",
                f"{medians[name]:.3f}",
                f"{min(seconds):.3f}",
                f"{max(seconds):.3f}",
                f"{medians[name] - base:+.3f} s",
            ]
            for name, seconds in times.items()
        ],
    )


def _demo_table(demo: dict[str, list[float]]) -> list[str]:
    """Per mode of the demo study: the median wall time and every run's."""
    return markdown_table(
        ["mode", "median s", "runs"],
        [
            [label, f"{statistics.median(seconds):.1f}", ", ".join(f"{x:.1f}" for x in seconds)]
            for label, seconds in demo.items()
        ],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--demo-runs", type=int, default=3, help="runs of the demo study each")
    add_output_arguments(parser, quick="3 rounds, one demo run of 10 trials each way")
    args = parse_args(parser, argv)
    run = Run(args, "startup")
    rounds, demo_runs = (3, 1) if args.quick else (args.rounds, args.demo_runs)
    demo_trials = ["--n-trials", "10"] if args.quick else []

    work = Path(tempfile.mkdtemp(prefix="hpsearch-startup-"))
    storage = f"sqlite:///{work / 'stored.db'}"
    # As a user runs them: hpsearch chooses torch's threads (the usable cores, one process).
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["HPSEARCH_STORAGE"] = storage
    print("storing a demo study to read back ...", file=sys.stderr, flush=True)
    _timed([HPSEARCH, "run", str(DEMO), "--n-trials", "10", "--no-progress"], env)

    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import optuna"': [python, "-c", "import optuna"],
        "hpsearch --help": [HPSEARCH, "--help"],
        "hpsearch check studies/demo.toml": [HPSEARCH, "check", str(DEMO)],
        "hpsearch list": [HPSEARCH, "list"],
        f"hpsearch show {DEMO_NAME}": [HPSEARCH, "show", DEMO_NAME],
        f"hpsearch compare {DEMO_NAME}": [
            HPSEARCH,
            "compare",
            DEMO_NAME,
            "--out",
            str(work / "compare"),
        ],  # fmt: skip
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    shuffle = random.Random(0)
    for r in range(rounds):
        order = list(commands)
        shuffle.shuffle(order)
        for name in order:
            times[name].append(_timed(commands[name], env))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)

    demo: dict[str, list[float]] = {"population (batch = 10, as shipped)": [], "--batch 1": []}
    said: list[str] = []  # what hpsearch chose for the threads, run by run
    for i in range(demo_runs):
        for label, extra in zip(demo, ([], ["--batch", "1"]), strict=True):
            db = work / f"demo-{i}-{len(extra)}.db"
            cmd = [HPSEARCH, "run", str(DEMO), *demo_trials, *extra, "--no-progress"]
            demo[label].append(_timed(cmd, {**env, "HPSEARCH_STORAGE": f"sqlite:///{db}"}, said))
            print(f"demo {label}: {demo[label][-1]:.1f} s", file=sys.stderr, flush=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    base = med['python -c "import optuna"']
    facts = run.facts()
    results = {
        **facts,
        "rounds": rounds,
        "threads_chosen": said,
        "seconds": {name: [round(x, 4) for x in t] for name, t in times.items()},
        "median_s": {name: round(m, 4) for name, m in med.items()},
        "over_import_optuna_s": {name: round(m - base, 4) for name, m in med.items()},
        "demo_trials": 10 if args.quick else 40,
        "demo_s": {label: [round(x, 2) for x in t] for label, t in demo.items()},
    }
    run.write("startup.json", json.dumps(results, indent=2) + "\n")

    lines = [
        "# Start-up of the commands that never train, and the demo study",
        "",
        f"Machine: {run.machine_line()}. Command: `{run.command}`.",
        f"{rounds} interleaved rounds; median wall time of each command as a fresh process.",
        "",
        *_commands_table(times, med, base),
    ]
    trials = results["demo_trials"]
    lines += [
        "",
        f"`hpsearch run studies/demo.toml` from scratch ({trials} trials, {demo_runs} run(s) "
        "each, wall time including start-up; torch threads as hpsearch chose them, below):",
        "",
        *_demo_table(demo),
    ]
    ratio = statistics.median(demo["--batch 1"]) / statistics.median(demo[next(iter(demo))])
    lines += ["", f"Population mode is {ratio:.1f}x faster than one trial at a time here.", ""]
    lines += ["Threads, as each demo run stated them:", ""]
    lines += [f"- `{line}` ({said.count(line)} runs)" for line in dict.fromkeys(said)] + [""]
    run.write("startup.md", "\n".join(lines))
    print("\n".join(lines))
    run.finish()


if __name__ == "__main__":
    main()
