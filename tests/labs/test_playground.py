"""The optimizer playground: trajectories, per-axis learning rates, tuning, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpsearch import OPTIMIZERS, StudyFileError, list_studies
from hpsearch.labs.playground import (
    TEST_FUNCTIONS,
    load_playground_file,
    steps_objective,
    trajectory,
)
from tests.cli.test_cli import run_cli, run_main
from tests.conftest import REPO


def test_sgd_with_a_learning_rate_per_axis_follows_the_closed_form() -> None:
    # f = 0.05 x² + y²: SGD multiplies x by (1 − 0.1·lr_x) and y by (1 − 2·lr_y) each step.
    quad = TEST_FUNCTIONS["quadratic"]
    run = trajectory(quad, "sgd", (0.9, 0.2), steps=10)
    x0, y0 = quad.start
    steps = np.arange(11)
    np.testing.assert_allclose(run.points[:, 0], x0 * (1 - 0.1 * 0.9) ** steps, rtol=1e-12)
    np.testing.assert_allclose(run.points[:, 1], y0 * (1 - 2 * 0.2) ** steps, rtol=1e-12)
    # Swapping the rates makes y overshoot: its factor 1 − 2·0.9 is negative (zig-zag).
    swapped = trajectory(quad, "sgd", (0.2, 0.9), steps=10)
    assert np.all(np.sign(swapped.points[1:, 1]) != np.sign(swapped.points[:-1, 1]))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("function", sorted(TEST_FUNCTIONS))
def test_every_optimizer_runs_on_every_function(optimizer: str, function: str) -> None:
    fn = TEST_FUNCTIONS[function]
    run = trajectory(fn, optimizer, 1e-3, steps=20, momentum=0.5)
    assert run.points.shape == (21, 2) and np.isfinite(run.gaps).all()
    assert tuple(run.points[0]) == fn.start and (run.gaps >= 0).all()
    # A small step size descends (the saddle's start sits on its ridge, so it barely moves).
    assert run.gaps[-1] <= run.gaps[0]


def test_a_diverging_run_stops_and_never_counts_as_reached() -> None:
    run = trajectory(TEST_FUNCTIONS["quadratic"], "sgd", 5.0, steps=500)
    assert run.steps_to(1e-4) is None and math.isinf(run.gaps[-1])
    assert steps_objective(run, 500, 1e-4) > 500


def test_steps_objective_ranks_reached_then_near_misses_then_failures() -> None:
    quad = TEST_FUNCTIONS["quadratic"]
    fast = trajectory(quad, "sgd", (0.9, 0.4), steps=300, stop_at=1e-4)
    slow = trajectory(quad, "sgd", (0.3, 0.3), steps=300, stop_at=1e-4)
    near = trajectory(quad, "sgd", (0.05, 0.05), steps=300)
    assert fast.steps_to(1e-4) is not None and slow.steps_to(1e-4) is not None
    values = [steps_objective(r, 300, 1e-4) for r in (fast, slow, near)]
    assert values[0] < values[1] <= 300 < values[2] < 300 + 1 + 10
    # stop_at ends the run at the first point within the tolerance
    assert fast.gaps[fast.steps_to(1e-4)] <= 1e-4 and np.isnan(fast.points[-1]).all()


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ('[playground]\nfunctions = ["sphere"]', "playground.functions", "quadratic, rosenbrock"),
        ('[playground]\noptimizers = ["lbfgs"]', "playground.optimizers", "sgd, momentum"),
        ("[playground]\nsteps = 0", "playground.steps", "an integer in [1, 100000]"),
        ("[playground]\nlr_range = [1.0, 0.1]", "playground.lr_range", "must be < high"),
        ("[playground]\nspeed = 1", "playground.speed", "unknown key"),
        ('[playground]\nname = "a/b"', "playground.name", "use 1-128 letters, digits"),
        ("[playground]\naxis_lr = [0.5, 0]", "playground.axis_lr", "a number in (0, 1000)"),
        ("[study]\nname = 'x'", "", "exactly one table, [playground]"),
    ],
)
def test_a_bad_playground_file_names_the_key(tmp_path: Path, text, key, fragment) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(StudyFileError) as info:
        load_playground_file(path)
    assert info.value.key == key and fragment in info.value.message


def test_the_shipped_playground_file_covers_every_function_and_optimizer() -> None:
    config = load_playground_file(REPO / "studies" / "playground.toml")
    assert set(config.functions) == set(TEST_FUNCTIONS) and set(config.optimizers) == set(
        OPTIMIZERS
    )


def test_hpsearch_playground_tunes_draws_and_continues(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[playground]\nname = "pg"\nfunctions = ["quadratic", "saddle"]\n'
        'optimizers = ["sgd", "momentum"]\nsteps = 150\nn_trials = 8\nseed = 3\n'
    )
    out = run_cli("playground", str(path), "--out", "figs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[4/4] saddle     momentum" in out.stdout
    figs = tmp_path / "figs"
    for name in ("pg-quadratic.png", "pg-saddle.png", "pg-axis-lr.png"):
        assert (figs / name).read_bytes().startswith(b"\x89PNG")
    table = (figs / "pg.md").read_text()
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    study = optuna.load_study(study_name="pg-quadratic-momentum", storage=storage)
    assert len(study.trials) == 8
    listed = {r.name: r for r in list_studies(storage)}
    assert len(listed) == 4
    sgd = listed["pg-saddle-sgd"]
    assert (sgd.mode, sgd.dataset, sgd.setup) == ("playground", "saddle", "sgd")
    assert sgd.complete == 8
    row = next(line for line in table.splitlines() if line.startswith("| quadratic |"))
    best = study.best_value  # momentum's cell: its steps, or '—' past the 150-step budget
    assert row.split("|")[3].strip() == (str(int(best)) if best <= 150 else "—")
    # The same command again continues the stored studies: no new trials, the same table.
    again = run_cli("playground", str(path), "--out", "figs", cwd=tmp_path)
    assert again.returncode == 0 and (figs / "pg.md").read_text() == table
    assert len(optuna.load_study(study_name="pg-quadratic-momentum", storage=storage).trials) == 8


def test_n_trials_and_steps_override_the_file_and_a_rerun_tops_up(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[playground]\nname = "pg"\nfunctions = ["quadratic"]\noptimizers = ["sgd"]\n'
        "steps = 500\nn_trials = 30\nthreads = 1\n"
    )
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"

    def play(*flags: str):
        return run_main("playground", str(path), "--out", "figs", *flags, cwd=tmp_path)

    def trials() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="pg-quadratic-sgd", storage=storage).trials

    out = play("--n-trials", "2", "--steps", "20")
    assert out.returncode == 0, out.stderr
    assert "torch uses 1 thread (the study file's threads 1" in out.stderr  # the file's threads
    assert len(trials()) == 2  # not the file's 30
    assert (
        "2 TPE trials per function and optimizer, at most 20 steps"
        in (tmp_path / "figs" / "pg.md").read_text()
    )
    study = optuna.load_study(study_name="pg-quadratic-sgd", storage=storage)
    assert study.user_attrs["budget"] == {"steps": 20}
    # As with `run`, N is the study's total: 3 adds one trial, 2 adds none.
    assert play("--n-trials", "3", "--steps", "20").returncode == 0 and len(trials()) == 3
    assert play("--n-trials", "2", "--steps", "20").returncode == 0 and len(trials()) == 3
    # Trials of another step budget are not mixed in: refused in one line, nothing run.
    other = play("--n-trials", "4")  # the file's 500 steps
    assert other.returncode == 1 and len(trials()) == 3
    assert (
        "hpsearch: error: study 'pg-quadratic-sgd' in the storage was tuned with steps=20, not "
        "steps=500; continue it with --steps 20, or use another --storage\n" in other.stderr
    )
    bad = play("--steps", "0")
    assert bad.returncode == 2 and "must be an integer in [1, 100000]" in bad.stderr
