"""What every benchmark script shares: ``--out`` / ``--write-results`` / ``--quick``, where the
results go, and the machine facts written beside them (cores, torch threads, load average).

The committed results in benchmarks/results/ are written only with ``--write-results``; a
``--quick`` run (a smoke run, under 2 minutes on 2 cores) never writes them. Without either, a
script writes to ``--out``, by default a new temporary folder, printed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hpsearch.results.stats import bootstrap_interval  # one bootstrap for every table

RESULTS = Path(__file__).resolve().parent / "results"
__all__ = [
    "RESULTS",
    "Run",
    "add_output_arguments",
    "bootstrap_interval",
    "format_interval",
    "parse_args",
]


def format_interval(values: Sequence[float], digits: int) -> str:
    """Mean [95% percentile-bootstrap interval] of ``values`` (the seeds), as tables print it."""
    mean, low, high = bootstrap_interval(values)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def add_output_arguments(parser: argparse.ArgumentParser, quick: str) -> None:
    """Add ``--quick`` (``quick`` says what it shrinks), ``--out`` and ``--write-results``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run, under 2 minutes on 2 cores: {quick}; its results go to --out "
        "(never to benchmarks/results/)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the results (default: a new temporary folder, printed)",
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="write the committed results in benchmarks/results/ (the only way to touch them; "
        "not with --quick)",
    )


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    """Parse, refusing in one line what would overwrite benchmarks/results/ unasked, or with
    quick numbers."""
    args = parser.parse_args(argv)

    def refuse(message: str) -> None:
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    if args.quick and args.write_results:
        refuse("--quick results must not replace the committed ones: drop --write-results")
    if args.out and args.write_results:
        refuse("--out and --write-results both choose the folder: give one")
    if args.out and Path(args.out).resolve().is_relative_to(RESULTS):
        refuse(f"--out {args.out} is benchmarks/results/: use --write-results to write there")
    return args


class Run:
    """One run of a benchmark: its output folder, and the facts about the machine it ran on.

    Prints where the results go and the machine line when made; :meth:`write` puts a file in
    the folder, :meth:`finish` prints what was written and where.
    """

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        self.quick: bool = args.quick
        if args.write_results:
            self.out = RESULTS
        elif args.out:
            self.out = Path(args.out)
        else:
            self.out = Path(tempfile.mkdtemp(prefix=f"hpsearch-{name}-"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.command = shlex.join(["python", f"benchmarks/{name}.py", *sys.argv[1:]])
        self.load_start = os.getloadavg()
        self.started = time.perf_counter()
        self.written: list[Path] = []
        print(f"results go to {self.out}", file=sys.stderr, flush=True)
        print(f"machine: {self.machine_line(end=False)}", file=sys.stderr, flush=True)

    def seconds(self) -> float:
        """Wall seconds since the run started."""
        return time.perf_counter() - self.started

    def facts(self) -> dict:
        """What a results file records about the run: command, machine, threads, load."""
        import torch  # read now: a script sets its threads after its imports

        return {
            "command": self.command,
            "quick": self.quick,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "load_average_start": [round(x, 2) for x in self.load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(self.seconds(), 1),
        }

    def machine_line(self, end: bool = True) -> str:
        """One line for a report: cores, torch threads and the load averages (1, 5, 15 min)
        at the start and, with ``end``, now."""
        facts = self.facts()
        line = (
            f"{facts['cores']} cores, torch {facts['torch']}, torch.get_num_threads() = "
            f"{facts['torch_threads']}, load average "
            + " ".join(f"{x:.2f}" for x in facts["load_average_start"])
        )
        if end:
            now = " ".join(f"{x:.2f}" for x in facts["load_average_end"])
            line += f" at the start, {now} at the end"
        return line

    def path(self, filename: str) -> Path:
        """Where ``filename`` goes in the output folder, for a writer of its own (a figure);
        :meth:`finish` lists it."""
        path = self.out / filename
        self.written.append(path)
        return path

    def write(self, filename: str, content: str | bytes) -> Path:
        """Write ``content`` to ``filename`` in the output folder."""
        path = self.path(filename)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def finish(self) -> None:
        """Print the machine line and what was written where."""
        print(f"machine: {self.machine_line()}", file=sys.stderr)
        names = ", ".join(p.name for p in self.written) or "nothing"
        print(f"wrote {names} to {self.out} in {self.seconds():.0f} s", file=sys.stderr)
