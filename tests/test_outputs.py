"""The outputs that README.md and docs/ show are what the code prints today.

``benchmarks/outputs.py`` runs the commands and writes ``benchmarks/results/outputs.md``; the
documents include its sections (``tests/test_readme.py`` checks the copies). Here each section
is made again and compared with the committed file, so a change that alters an output fails
until the file (and with it every document) is regenerated. The line that says which threads
torch uses names the machine's cores and load, so only its presence is compared; population
results do not depend on the thread count (``tests/core/test_threads.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

BENCHMARKS = REPO / "benchmarks"
COMMITTED = "benchmarks/results/outputs.md"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            f"benchmark_{name}", BENCHMARKS / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


outputs = _module("outputs")
include = _module("_include")


def _comparable(text: str) -> list[str]:
    lines = text.splitlines()
    assert sum(line.startswith(outputs.THREAD_LINE) for line in lines) <= 1
    return [line for line in lines if not line.startswith(outputs.THREAD_LINE)]


@pytest.mark.parametrize("heading", list(outputs.OUTPUTS))
def test_each_shown_output_is_what_the_code_prints(heading: str, tmp_path: Path) -> None:
    committed = include.section(COMMITTED, heading)
    fresh = outputs.section(heading, tmp_path).split("\n", 2)[2]  # the heading and blank out
    assert _comparable(fresh) == _comparable(committed)


def test_the_demo_output_names_its_threads(tmp_path: Path) -> None:
    shown = include.section(COMMITTED, "## make demo: hpsearch run studies/demo.toml")
    assert shown.splitlines()[1].startswith(outputs.THREAD_LINE)


def test_a_changed_output_is_seen(tmp_path: Path) -> None:
    shown = include.section(COMMITTED, "## A refused study file")
    assert _comparable(shown.replace("got 0.0", "got 0")) != _comparable(shown)
