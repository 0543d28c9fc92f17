"""The command outputs that README.md and docs/ show, made by running the commands.

Runs, in a new folder with the default storage (``sqlite:///hpsearch.db``), what ``make
demo`` runs, the Fonseca–Fleming linear-α study and ``show`` of it, a refused study file, and
reads every command's usage from the real parser; writes ``outputs.md``, one section per
output, which the documents include (``benchmarks/_include.py``). ``tests/test_outputs.py``
runs the same functions and fails when a section no longer matches what the code prints.
Population-mode results do not depend on the thread count, so the tables are the same on any
machine; only the line that says which threads torch uses names this machine's cores.

Usage: python benchmarks/outputs.py [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Run, add_output_arguments, parse_args  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HPSEARCH = str(Path(sys.executable).parent / "hpsearch")
THREAD_LINE = "hpsearch: torch uses"  # the one line that names the machine's cores
WIDTH = 96  # a long line (a verdict) is wrapped at this width, as the documents show it


def hpsearch(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``hpsearch ARGS`` in ``cwd``; with ``ok``, fail loudly when it fails."""
    out = subprocess.run([HPSEARCH, *args], cwd=cwd, capture_output=True, text=True)
    if ok and out.returncode != 0:
        raise RuntimeError(f"hpsearch {' '.join(args)} failed: {out.stderr.strip()}")
    return out


def abbreviated(table: list[str], head: int = 2) -> list[str]:
    """A printed table's title and rule, its first ``head`` rows, ``...`` and its last row."""
    if len(table) <= head + 3:
        return table
    return [*table[: 2 + head], "...", table[-1]]


def demo_run(cwd: Path) -> str:
    """What ``make demo``'s ``hpsearch run studies/demo.toml`` prints: the thread line on
    stderr, then the summary and the front's table on stdout (shortened)."""
    out = hpsearch("run", str(ROOT / "studies" / "demo.toml"), "--no-progress", cwd=cwd)
    threads = [line for line in out.stderr.splitlines() if line.startswith(THREAD_LINE)]
    summary, *table = out.stdout.splitlines()
    return "\n".join([*threads, summary, *abbreviated(table)])


def fonseca_fleming_show(cwd: Path) -> str:
    """``hpsearch show`` of the shipped linear-α Fonseca–Fleming study: its verdict."""
    name = "fonseca_fleming-linear-pareto"
    hpsearch("run", str(ROOT / "studies" / f"{name}.toml"), "--no-progress", cwd=cwd)
    shown = hpsearch("show", name, cwd=cwd).stdout.splitlines()
    verdict = [line for line in shown if line.startswith("diagnosis:")]
    return "\n".join([f"$ hpsearch show {name}", "...", *_wrapped(verdict)])


def refused_study_file(cwd: Path) -> str:
    """The one line a wrong study file gets: the demo file with a log range starting at 0."""
    text = (ROOT / "studies" / "demo.toml").read_text()
    broken = text.replace("low = 1e-5", "low = 0.0", 1)
    assert broken != text, "studies/demo.toml no longer has alpha's low = 1e-5"
    (cwd / "broken.toml").write_text(broken)
    out = hpsearch("run", "broken.toml", cwd=cwd, ok=False)
    return "\n".join(
        ["$ hpsearch run broken.toml", out.stderr.strip(), f"$ echo $?\n{out.returncode}"]
    )


def synopsis(_cwd: Path) -> str:
    """Every command with its arguments, from the real parser: ``hpsearch CMD --help``'s
    usage without ``[-h]``, the positional arguments first."""
    from hpsearch.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    lines = []
    for command in commands.values():
        usage = " ".join(command.format_usage().split()).removeprefix("usage: ")
        usage = re.sub(r"\{([^}]*)\}", lambda m: m[1].replace(",", "|"), usage)  # choices
        options = re.findall(r"\[-[^\]]*\]", usage.replace(" [-h]", ""))
        rest = re.sub(r"\[-[^\]]*\]", "", usage).split()
        prog, positionals = " ".join(rest[:2]), " ".join(rest[2:])
        # Spaces inside a bracket must not break a line: held as no-break spaces meanwhile.
        words = [positionals, *options] if positionals else options
        held = " ".join(w.replace(" ", "\xa0") for w in words)
        indent = " " * (len(prog) + 1)
        wrapped = textwrap.wrap(held, WIDTH - len(indent), break_on_hyphens=False)
        lines += [
            (prog if i == 0 else indent) + " " * (i == 0) + part.replace("\xa0", " ")
            for i, part in enumerate(wrapped)
        ]
    return "\n".join(lines)


def _wrapped(lines: list[str]) -> list[str]:
    return [part for line in lines for part in textwrap.wrap(line, WIDTH)]


# Heading in outputs.md → what writes the section under it.
OUTPUTS: dict[str, Callable[[Path], str]] = {
    "## make demo: hpsearch run studies/demo.toml": demo_run,
    "## hpsearch show fonseca_fleming-linear-pareto": fonseca_fleming_show,
    "## A refused study file": refused_study_file,
    "## Every command and its arguments": synopsis,
}


def section(heading: str, cwd: Path) -> str:
    """The section under ``heading``: the output in a fenced block."""
    return f"{heading}\n\n```\n{OUTPUTS[heading](cwd)}\n```\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser, quick="the same (it is quick)")
    args = parse_args(parser, argv)
    run = Run(args, "outputs")
    parts = [
        "# Outputs shown in the documents",
        f"Written by `{run.command}` on {run.machine_line(end=False)}; the documents include "
        "the sections below (`benchmarks/_include.py`).",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for heading in OUTPUTS:
            print(f"running: {heading.removeprefix('## ')}", file=sys.stderr, flush=True)
            parts.append(section(heading, Path(folder)))
    run.write("outputs.md", "\n\n".join(parts).rstrip() + "\n")
    run.finish()


if __name__ == "__main__":
    main()
