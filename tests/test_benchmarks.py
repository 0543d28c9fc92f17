"""Every benchmark script has the same interface (benchmarks/_common.py): --quick, --out and
--write-results, and nothing but --write-results writes benchmarks/results/. Checked without
running a benchmark: each script is imported once and its main() only parses."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

BENCHMARKS = REPO / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def _load(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/X.py` has it
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)

    def ran(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{path.name} started a run: its arguments were not refused")

    monkeypatch.setattr(module, "Run", ran)  # past the argument checks: a real run
    return module


def _main(module: ModuleType, path: Path, *argv: str, monkeypatch) -> tuple[int, str, str]:
    """``python benchmarks/X.py ARGV`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = module.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code or 0, out.getvalue(), err.getvalue()


def test_the_scripts_are_found() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"concave_fronts.py", "population.py", "storage.py"} <= names
    assert "_common.py" not in names


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_has_the_output_flags_and_refuses_quick_results_as_committed_ones(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load(path, monkeypatch)
    code, out, _ = _main(module, path, "--help", monkeypatch=monkeypatch)
    assert code == 0
    for flag in ("--quick", "--out", "--write-results"):
        assert flag in out, f"{path.name} --help does not list {flag}"
    refused = [
        (["--quick", "--write-results"], "--quick results must not replace the committed ones"),
        (["--out", "x", "--write-results"], "give one"),
        (["--out", str(BENCHMARKS / "results")], "use --write-results to write there"),
    ]
    for argv, fragment in refused:
        code, _, err = _main(module, path, *argv, monkeypatch=monkeypatch)
        assert code == 2 and fragment in err, (path.name, argv, err)
        assert err.count("\n") == 1  # one line


def test_results_go_to_out_or_a_new_temporary_folder_with_the_machine_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _common

    parser = argparse.ArgumentParser(prog="x.py")
    _common.add_output_arguments(parser, "less")
    default = _common.Run(_common.parse_args(parser, ["--quick"]), "x")
    assert default.out.is_dir() and default.out != _common.RESULTS
    assert f"results go to {default.out}" in capsys.readouterr().err
    run = _common.Run(_common.parse_args(parser, ["--quick", "--out", str(tmp_path / "o")]), "x")
    assert run.write("a.md", "text").read_text() == "text" and run.out == tmp_path / "o"
    facts = run.facts()
    assert facts["quick"] and facts["torch_threads"] >= 1 and len(facts["load_average_end"]) == 3
    assert "torch.get_num_threads() = " in run.machine_line()
    run.finish()
    assert f"wrote a.md to {tmp_path / 'o'}" in capsys.readouterr().err
    default.out.rmdir()
