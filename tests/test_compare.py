"""`hpsearch compare` and the outer × inner matrix, on a concave problem that is not built in."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

import hpsearch
from tests.conftest import REPO
from tests.test_cli import run_cli, run_main

# A concave front through the public setup API: L1 = t, L2 = 1 − t², t = (1 + sin u) / 2.
USER_SETUP = """
import torch
import hpsearch

@hpsearch.register_setup("test_quarter_circle")
class QuarterCircle(hpsearch.Setup):
    loss_names = ("t", "one_minus_t2")
    metric_name = "neg_t"

    def build_model(self, data, spec):
        module = torch.nn.Module()
        module.u = torch.nn.Parameter(torch.randn(()) * 0.5)
        return module

    def losses(self, module, x, y):
        t = (1 + torch.sin(module.u)) / 2
        return t, 1 - t**2

    def metrics(self, module, split):
        return {"neg_t": -float((1 + torch.sin(module.u)) / 2)}
"""

STUDY = """
[study]
name = "qc-{mode}-{method}"
dataset = "none"
setup = "test_quarter_circle"
mode = "{mode}"
{objective}
sampler = "tpe"
n_trials = {n_trials}
seed = 0
imports = ["user_setup.py"]

[budget]
epochs = 150
batch_size = 1

[params]
method = "{method}"
optimizer = "{optimizer}"
lr = 0.5
flood = {flood}
normalize = "none"
lambda_lr = 0.5
{knob}
"""
KNOBS = {
    "linear": 'alpha = { type = "float", low = 0.1, high = 3.0, log = true }',
    "chebyshev": 'w = { type = "float", low = 0.05, high = 0.95 }',
    "mdmm": 'epsilon = { type = "float", low = 0.05, high = 0.95 }',
}


def _write(
    folder: Path,
    mode: str,
    method: str,
    n_trials: int = 12,
    optimizer: str = "sgd",
    flood: float = 0.0,
) -> Path:
    (folder / "user_setup.py").write_text(USER_SETUP)
    objective = (
        'objective = "weighted"\nobjective_weights = [1.0, 1.0]' if mode == "scalarized" else ""
    )
    path = folder / f"{mode}-{method}.toml"
    path.write_text(
        textwrap.dedent(
            STUDY.format(
                mode=mode,
                method=method,
                objective=objective,
                n_trials=n_trials,
                knob=KNOBS[method],
                optimizer=optimizer,
                flood=flood,
            )
        )
    )
    return path


@pytest.mark.parametrize("method", ["linear", "chebyshev", "mdmm"])
@pytest.mark.parametrize("mode", ["scalarized", "pareto"])
def test_outer_by_inner_matrix_runs_and_records_feasibility(tmp_path, storage, mode, method):
    path = _write(tmp_path, mode, method, n_trials=3, optimizer="adam", flood=0.05)
    hpsearch.run_study(hpsearch.load_study_file(path), storage, progress=False)
    trials = optuna.load_study(study_name=f"qc-{mode}-{method}", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    for t in trials:
        assert {"val_loss1", "val_loss2", "val_metric"} <= set(t.user_attrs)
        assert ("feasible" in t.user_attrs) == (method == "mdmm")
        if method == "mdmm":
            assert set(t.constraints) == {"0"}  # the list format optuna-dashboard reads
            assert (t.constraints["0"] <= 0) == t.user_attrs["feasible"]


def test_the_diagnosis_flags_a_concave_problem_plugged_in_from_outside(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'cmp.db'}"
    for method in ("linear", "chebyshev", "mdmm"):
        path = _write(tmp_path, "pareto", method)
        assert (
            run_main(
                "run",
                str(path),
                "--storage",
                storage,
                "--no-progress",
                "--no-dashboard",
                cwd=tmp_path,
            ).returncode
            == 0
        )
    names = [f"qc-pareto-{m}" for m in ("linear", "chebyshev", "mdmm")]
    comparison = hpsearch.compare_studies(storage, names)
    linear, cheb, mdmm = comparison.studies
    # Linear α only reaches the two ends (t ≈ 0 or t ≈ 1); the others fill the middle.
    assert all(min(x, y) < 0.05 for x, y in linear.xy)
    assert cheb.analysis.hypervolume > 1.5 * linear.analysis.hypervolume
    assert mdmm.analysis.hypervolume > 1.5 * linear.analysis.hypervolume
    assert comparison.union.n_unsupported >= 10 and comparison.union.gap_fraction > 0.2
    assert "concave stretches" in comparison.verdicts()[-2]
    knee_study, knee_trial = comparison.locate(comparison.union.knee)
    assert comparison.verdicts()[-1].startswith(
        f"knee of the joint front: {knee_study} trial {knee_trial} "
    )
    assert comparison.locate(len(linear.xy)) == ("qc-pareto-chebyshev", 0)

    out = run_main("compare", *names, "--storage", storage, "--out", "cmp", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "all studies together: front has concave stretches between" in out.stdout
    assert "linear α cannot reach" in out.stdout
    rows = list(csv.DictReader((tmp_path / "cmp" / "compare.csv").open()))
    assert [r["study"] for r in rows] == [*names, "(all together)"]
    assert float(rows[1]["HV"]) == pytest.approx(cheb.analysis.hypervolume, abs=1e-4)
    assert int(rows[0]["trials"]) == 12 and float(rows[0]["wall_s"]) > 0
    assert "HV gap" in (tmp_path / "cmp" / "compare.md").read_text()
    with Image.open(tmp_path / "cmp" / "compare.png") as img:
        assert img.size[0] > 1000 and len(img.convert("RGB").getcolors(100_000) or []) > 50


def test_compare_refuses_studies_of_different_losses(tmp_path, study_file) -> None:
    storage = f"sqlite:///{tmp_path / 'mixed.db'}"
    hpsearch.run_study(hpsearch.load_study_file(study_file(n_trials=1)), storage, progress=False)
    other = study_file(n_trials=1, name="vae", setup="beta_vae", dataset="digits")
    hpsearch.run_study(hpsearch.load_study_file(other), storage, progress=False)
    out = run_cli("compare", "small", "vae", "--storage", storage, cwd=tmp_path)
    assert out.returncode == 1 and "cannot compare studies of different loss pairs" in out.stderr


def test_fonseca_fleming_studies_ship_for_every_inner_method() -> None:
    methods = set()
    for path in (REPO / "studies").glob("fonseca_fleming-*.toml"):
        config = hpsearch.load_study_file(path)
        methods.add(config.params["method"].value)
        assert config.dataset == "none" and config.mode == "pareto"
    assert methods == {"linear", "chebyshev", "mdmm"}


def test_chebyshev_pareto_study_reaches_95_percent_of_the_true_fonseca_fleming_hv(storage):
    config = hpsearch.load_study_file(REPO / "studies" / "fonseca_fleming-chebyshev-pareto.toml")
    hpsearch.run_study(config, storage, progress=False)
    points = hpsearch.study_points(storage, config.name)
    xy = list(zip(points.loss1, points.loss2, strict=True))
    from hpsearch._setups import fonseca_fleming_front

    true_hv = hpsearch.hypervolume_2d(fonseca_fleming_front(20001), (1.0, 1.0))
    assert hpsearch.hypervolume_2d(xy, (1.0, 1.0)) >= 0.95 * true_hv
