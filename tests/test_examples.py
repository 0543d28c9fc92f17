"""The worked examples of examples/ run as the README shows them, on a small budget."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import optuna

from hpsearch.study import keys
from tests.cli.test_cli import run_main
from tests.conftest import REPO

EXAMPLES = REPO / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_loop_records_diagnoses_and_show_reads_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    own_loop = _example("own_loop")
    diagnosis = own_loop.main(["--trials", "6", "--epochs", "4", "--fill", "2", "--storage", url])
    study = optuna.load_study(study_name=own_loop.STUDY, storage=url)
    first = study.trials[0]
    assert len(first.user_attrs[keys.HISTORY][keys.VAL_LOSS1]) == 4  # one entry per epoch
    assert diagnosis.points.convergence == "history"
    assert len(diagnosis.points.numbers) == len(study.trials) >= 6
    shown = run_main("show", own_loop.STUDY, "--storage", url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"diagnosis: {diagnosis.verdict}" in shown.stdout


def test_plain_optuna_study_is_diagnosed_concave_by_show(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    study = _example("plain_optuna").main(["--shape", "0.5", "--trials", "16", "--storage", url])
    assert keys.STUDY not in study.user_attrs  # made without hpsearch
    shown = run_main("show", study.study_name, "--storage", url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "\ndiagnosis: concave: " in shown.stdout


def test_the_csv_study_file_checks_and_runs(tmp_path: Path) -> None:
    study_file = str(EXAMPLES / "wine-csv.toml")
    assert run_main("check", study_file, cwd=tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path / 'csv.db'}"
    ran = run_main("run", study_file, "--storage", url, "--n-trials", "4", "--no-progress",
                   "--no-dashboard", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    listed = run_main("list", "--storage", url, cwd=tmp_path)
    row = listed.stdout.splitlines()[2].split()
    assert row[:3] == ["wine-csv-weight-decay", "pareto", "wine.csv"]
    shown = run_main("show", "wine-csv-weight-decay", "--storage", url, cwd=tmp_path)
    assert (
        shown.returncode == 0 and "val_task_loss  val_sq_weight_norm  val_accuracy" in shown.stdout
    )
