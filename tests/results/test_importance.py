"""Hyperparameter importances: which parameter explains each target, the CLI and the
dashboard chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from hpsearch.errors import HpsearchError
from hpsearch.results.importance import format_importances, plot_importances, study_importances
from hpsearch.results.publish import IMPORTANCE_GRAPH_ID
from hpsearch.study import keys
from tests.cli.test_cli import run_main


def _known_study(storage: str | None = None, n: int = 60) -> optuna.Study:
    """Two objectives and a metric, each driven by one parameter: L1 by x, L2 by y, the
    metric by the optimizer; z is noise for all."""
    study = optuna.create_study(
        study_name="known", storage=storage, directions=["minimize", "minimize"]
    )
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(["val_l1", "val_l2"])
    rng = np.random.default_rng(0)
    dists = {
        "x": FloatDistribution(0, 1),
        "y": FloatDistribution(1e-3, 1, log=True),
        "z": FloatDistribution(0, 1),
        "optimizer": CategoricalDistribution(["adam", "sgd"]),
    }
    for _ in range(n):
        p = {
            "x": rng.uniform(),
            "y": float(np.exp(rng.uniform(np.log(1e-3), 0))),
            "z": rng.uniform(),
            "optimizer": str(rng.choice(["adam", "sgd"])),
        }
        noise = 0.01 * rng.normal(size=3)
        study.add_trial(
            optuna.trial.create_trial(
                params=p,
                distributions=dists,
                values=[p["x"] ** 2 + noise[0], np.log(p["y"]) ** 2 + noise[1]],
                user_attrs={keys.VAL_METRIC: (0.9 if p["optimizer"] == "adam" else 0.5) + noise[2]},
            )
        )
    return study


@pytest.mark.parametrize("evaluator", ["fanova", "ped_anova"])
def test_each_target_is_explained_by_the_parameter_that_drives_it(evaluator) -> None:
    result = study_importances(_known_study(), evaluator)
    assert list(result.targets) == ["val_l1", "val_l2", "val_metric"]
    for target, driver in (("val_l1", "x"), ("val_l2", "y"), ("val_metric", "optimizer")):
        values = result.targets[target]
        assert max(values, key=values.get) == driver, (target, values)
        if evaluator == "fanova":  # PED-ANOVA ranks on the top 10% only (6 trials): noisier
            assert values[driver] > 0.9 and values["z"] < 0.05
        assert sum(values.values()) == pytest.approx(1.0)
    table = format_importances(result)
    assert table.splitlines()[3].split()[0] in {"x", "y", "optimizer"}  # most important first
    assert table.splitlines()[-1].split()[0] == "z"


def test_importances_refuse_what_they_cannot_rank() -> None:
    study = _known_study(n=3)
    with pytest.raises(HpsearchError, match="3 complete trial.*at least 4"):
        study_importances(study)
    with pytest.raises(
        HpsearchError, match="unknown importance evaluator 'anova'; allowed: fanova"
    ):
        study_importances(study, "anova")
    one = optuna.create_study()
    for v in range(5):
        one.add_trial(
            optuna.trial.create_trial(
                params={"alpha": v / 10},
                distributions={"alpha": FloatDistribution(0, 1)},
                value=v,
            )
        )
    with pytest.raises(HpsearchError, match=r"searches 1 parameter\(s\) \(alpha\)"):
        study_importances(one)


def test_the_cli_prints_draws_writes_and_saves_the_dashboard_chart(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    _known_study(storage)
    done = run_main(
        "importance", "known", "--storage", storage, "--plot", "imp.png", "--json", "imp.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("importances of 'known' (fanova, 60 complete trials")
    assert (tmp_path / "imp.png").read_bytes().startswith(b"\x89PNG")
    written = json.loads((tmp_path / "imp.json").read_text())
    assert max(written["targets"]["val_l2"], key=written["targets"]["val_l2"].get) == "y"
    study = optuna.load_study(study_name="known", storage=storage)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert any(IMPORTANCE_GRAPH_ID in k for k in attrs)
    # --no-dashboard saves nothing.
    again = f"sqlite:///{tmp_path / 'again.db'}"
    _known_study(again)
    done = run_main("importance", "known", "--storage", again, "--no-dashboard", cwd=tmp_path)
    study = optuna.load_study(study_name="known", storage=again)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert done.returncode == 0 and not any(IMPORTANCE_GRAPH_ID in k for k in attrs)


def test_the_cli_refuses_in_one_line(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    _known_study(storage, n=2)
    done = run_main("importance", "known", "--storage", storage, cwd=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "hpsearch: error: study 'known' has 2 complete trial(s); importances need at least 4"
    ]
    done = run_main("importance", "nope", "--storage", storage, cwd=tmp_path)
    assert (
        done.returncode != 0 and "no study 'nope'" in done.stderr and "Traceback" not in done.stderr
    )


def test_the_chart_draws(tmp_path: Path) -> None:
    path = plot_importances(study_importances(_known_study()), tmp_path / "i.png")
    assert path.read_bytes().startswith(b"\x89PNG")
