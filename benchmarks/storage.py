"""Storages and workers: storage overhead per trial, and trials/s with 1 and 2 workers.

Two measurements, each storage fresh:

    (1) overhead: 1,000 trials of a trivial objective (one float, squared) with Optuna's own
        loop and a random sampler, per storage; the overhead per trial is its time per trial
        minus the in-memory storage's.
    (2) workers: ``hpsearch run STUDY --workers N`` for N = 1 and 2 on a small real study
        (digits, weight_decay, MLP 64-64, 30 epochs, random sampler, 24 trials), wall time of the
        command (process start-up included).

Storages: SQLite file, Optuna journal file, and PostgreSQL when a URL is given (--postgres, or
the environment variable HPSEARCH_TEST_POSTGRES that ``bash .ci/postgres.sh`` prints; its role
must be allowed to create databases; an unreachable server is skipped, with a line saying so).
Prints the tables and writes them as ``storage.md`` and ``storage.json`` to --out (default: a
temporary folder, printed; ``--write-results``: benchmarks/results/).

Usage: python benchmarks/storage.py [--postgres URL] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from _common import Run, add_output_arguments, parse_args

from hpsearch.errors import mask_secrets

REPO = Path(__file__).resolve().parents[1]
HPSEARCH = str(Path(sys.executable).parent / "hpsearch")

STUDY = """
[study]
name = "{name}"
dataset = "digits"
setup = "weight_decay"
mode = "pareto"
sampler = "random"
n_trials = {n}

[budget]
epochs = {epochs}

[params]
alpha = {{ type = "float", low = 1e-4, high = 1.0, log = true }}
lr = {{ type = "float", low = 1e-3, high = 3e-2, log = true }}
depth = {depth}
width = {width}
"""


@contextmanager
def fresh_storage(kind: str, folder: Path, postgres: str | None) -> Iterator[str]:
    """A URL of an empty storage of ``kind``; a PostgreSQL database is dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{tag}.db'}"
    elif kind == "journal":
        yield f"journal:///{folder / f'{tag}.log'}"
    else:
        import psycopg

        name = f"hpsearch_bench_{tag}"
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f"create database {name}")
        try:
            yield f"{postgres.rsplit('/', 1)[0]}/{name}"
        finally:
            # A new connection: the server may have been restarted meanwhile (benchmarks/load.py).
            with psycopg.connect(postgres, autocommit=True) as admin:
                admin.execute(f"drop database if exists {name} with (force)")


def trivial_seconds_per_trial(url: str | None, n: int) -> float:
    """Seconds per trial of ``n`` trials of a trivial objective on ``url`` (None: in memory)."""
    from hpsearch import open_storage

    storage = optuna.storages.InMemoryStorage() if url is None else open_storage(url)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=n)
    return (time.perf_counter() - start) / n


def workers_seconds(url: str, workers: int, n: int, epochs: int, folder: Path) -> float:
    """Wall seconds of ``hpsearch run --workers N`` for ``n`` trials of the small study."""
    path = folder / "bench-workers.toml"
    study = STUDY.format(name="bench-workers", n=n, epochs=epochs, depth=2, width=64)
    path.write_text(textwrap.dedent(study))
    start = time.perf_counter()
    out = subprocess.run(
        [HPSEARCH, "run", str(path), "--storage", url, "--workers", str(workers), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=folder,
    )
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"hpsearch run failed: {out.stderr.strip()}")
    return seconds


def postgres_problem(url: str) -> str | None:
    """Why the PostgreSQL server at ``url`` cannot be used, or None when it can."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            return None
    except Exception as e:  # no driver, no server, bad credentials: skip its rows
        return " ".join(str(e).split()) or type(e).__name__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("HPSEARCH_TEST_POSTGRES"))
    add_output_arguments(parser, "200 trivial trials, 6 trials of 5 epochs per worker run")
    args = parse_args(parser)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = Run(args, "storage")
    n_trivial = 200 if args.quick else 1000
    n_real, epochs = (6, 5) if args.quick else (24, 30)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"machine: {os.cpu_count()} cores; optuna {optuna.__version__}")
    kinds = ["sqlite", "journal"]
    if not args.postgres:
        say("PostgreSQL: no URL (--postgres or HPSEARCH_TEST_POSTGRES); its rows are skipped")
    elif problem := postgres_problem(args.postgres):
        say(f"PostgreSQL: not reachable ({mask_secrets(problem)}); its rows are skipped")
    else:
        kinds.append("postgresql")
    overhead: dict[str, float] = {}
    workers_rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = trivial_seconds_per_trial(None, n_trivial)
        say(f"\n(1) {n_trivial} trials of a trivial objective, random sampler")
        say(f"{'storage':<12}{'ms/trial':>10}{'overhead ms/trial':>19}")
        say(f"{'in-memory':<12}{base * 1e3:>10.2f}{'-':>19}")
        overhead["in-memory"] = base * 1e3
        for kind in kinds:
            with fresh_storage(kind, folder, args.postgres) as url:
                per = trivial_seconds_per_trial(url, n_trivial)
            overhead[kind] = per * 1e3
            say(f"{kind:<12}{per * 1e3:>10.2f}{(per - base) * 1e3:>19.2f}")
        say(
            f"\n(2) hpsearch run --workers N: {n_real} trials of digits/weight_decay, MLP 64-64, "
            f"{epochs} epochs"
        )
        say(f"{'storage':<12}{'workers':>8}{'wall s':>8}{'trials/s':>10}{'vs 1 worker':>13}")
        for kind in kinds:
            rates = {}
            for workers in (1, 2):
                with fresh_storage(kind, folder, args.postgres) as url:
                    seconds = workers_seconds(url, workers, n_real, epochs, folder)
                rates[workers] = n_real / seconds
                workers_rows.append({"storage": kind, "workers": workers, "seconds": seconds})
                say(
                    f"{kind:<12}{workers:>8}{seconds:>8.1f}{rates[workers]:>10.2f}"
                    f"{rates[workers] / rates[1]:>12.2f}x"
                )
    report = [
        "# Storages and workers",
        "",
        f"Made by `{run.command}` ({run.seconds():.0f} s on {run.machine_line()}).",
        "",
        "```",
        *lines,
        "```",
    ]
    run.write("storage.md", "\n".join(report) + "\n")
    facts = {"meta": run.facts(), "trivial_trials": n_trivial, "real_trials": n_real}
    run.write(
        "storage.json",
        json.dumps(
            {**facts, "epochs": epochs, "ms_per_trial": overhead, "workers": workers_rows},
            indent=1,
        )
        + "\n",
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
