"""MLE-guided parameter search, REINFORCE and their study runner."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from sklearn.metrics import f1_score

from hpsearch import ModelSpec, StudyFileError, build_mlp, list_studies, load_dataset
from hpsearch.labs.mgs import (
    MGSConfig,
    candidate_costs,
    metric_value,
    mgs_direction,
    mgs_weights,
    train_metric,
)
from hpsearch.labs.mgs_study import load_mgs_file
from tests.cli.test_cli import run_cli, run_main
from tests.conftest import REPO

SPEC = ModelSpec(depth=1, width=32)


def test_importance_weights_are_self_normalized_and_computed_in_log_space() -> None:
    costs = torch.tensor([0.10, 0.05, 0.20, 0.05])
    log_q = torch.tensor([-3000.0, -3001.0, -2999.5, -3000.2])  # exp() of these underflows
    w = mgs_weights(costs, log_q, alpha=0.05)
    expected = np.exp(-costs.numpy() / 0.05 - log_q.numpy() - 3000.0)
    np.testing.assert_allclose(w.numpy(), expected / expected.sum(), rtol=1e-5)
    assert float(w.sum()) == pytest.approx(1.0)
    # Only cost differences matter: l(θ) cancels.
    torch.testing.assert_close(mgs_weights(costs + 7.0, log_q, 0.05), w)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_matches_scikit_learn_and_batches(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (40,), generator=gen)
    preds = torch.randint(0, 5, (3, 40), generator=gen)
    got = metric_value(preds, y, 5, "macro_f1")
    for p, value in zip(preds, got, strict=True):
        assert float(value) == pytest.approx(f1_score(y, p, average="macro"), rel=1e-6)
    assert metric_value(preds, y, 5, "accuracy").tolist() == pytest.approx(
        [float((p == y).float().mean()) for p in preds]
    )


def test_candidates_are_evaluated_as_one_batch_with_the_loop_s_results() -> None:
    data = load_dataset("digits")
    torch.manual_seed(0)
    module = build_mlp(data.n_features, 10, SPEC)
    params = {k: v.detach() for k, v in module.named_parameters()}
    stacked = {k: v.unsqueeze(0) + 0.3 * torch.randn(5, *v.shape) for k, v in params.items()}
    batched = candidate_costs(module, stacked, data.val.x, data.val.y, 10, "accuracy")
    for i in range(5):
        with torch.no_grad():
            logits = torch.func.functional_call(
                module, {k: v[i] for k, v in stacked.items()}, (data.val.x,)
            )
        assert float(batched[i]) == pytest.approx(
            1 - float((logits.argmax(-1) == data.val.y).float().mean())
        )


@pytest.mark.parametrize("mix, expected", [(0.0, "gradient"), (1.0, "zero")])
def test_with_little_noise_the_update_follows_its_mixture_component(mix, expected) -> None:
    grads = {"w": torch.tensor([[1.0, -2.0], [0.5, 3.0]]), "b": torch.tensor([0.25, -1.0])}
    params = {k: torch.zeros_like(g) for k, g in grads.items()}
    config = MGSConfig(n=6, sigma=1e-4, alpha=0.1, mix=mix)
    step = mgs_direction(
        params, grads, lambda s: torch.rand(6), config, torch.Generator().manual_seed(0)
    )
    for k, g in grads.items():
        target = -g if expected == "gradient" else torch.zeros_like(g)
        torch.testing.assert_close(step[k], target, atol=1e-2, rtol=0)


@pytest.mark.parametrize("estimator", ["mgs", "reinforce", "cross_entropy"])
@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_every_estimator_raises_the_metric_and_is_seeded(estimator: str, metric: str) -> None:
    data = load_dataset("digits")
    config = MGSConfig(estimator=estimator, metric=metric, lr=0.01, n=6, epochs=3, sigma=0.3)
    result = train_metric(data, SPEC, config)
    # From 0.1 (chance). REINFORCE learns slower from its noisier estimate (see the study).
    assert result.val >= (0.3 if estimator == "reinforce" else 0.8), result.val_curve
    assert result.val_curve[-1] > result.val_curve[0]
    assert len(result.val_curve) == len(result.seconds) == 3
    assert result.seconds == sorted(result.seconds)
    again = train_metric(data, SPEC, config)
    assert (again.val, again.test) == (result.val, result.test)


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        (
            '[mgs]\nname = "m"\ndataset = "diabetes"',
            "mgs.dataset",
            "allowed: digits, breast_cancer",
        ),
        ('[mgs]\nname = "../m"', "mgs.name", "use 1-128 letters, digits"),
        ('[mgs]\nname = "m"\nmetric = "auc"', "mgs.metric", "accuracy, macro_f1"),
        ('[mgs]\nname = "m"\nepochs = 0', "mgs.epochs", "an integer in [1, 100000]"),
        ('[mgs]\nname = "m"\nestimators = ["sgd"]', "mgs.estimators", "mgs, reinforce"),
        ('[mgs]\nname = "m"\nsigma = 1.0', "mgs.sigma", "unknown key"),
        ("[mgs]\nepochs = 2", "mgs.name", "missing"),
    ],
)
def test_a_bad_mgs_file_names_the_key(tmp_path: Path, text, key, fragment) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(StudyFileError) as info:
        load_mgs_file(path)
    assert info.value.key == key and fragment in info.value.message


def test_the_shipped_mgs_file_is_valid() -> None:
    config = load_mgs_file(REPO / "studies" / "mgs-digits.toml")
    assert (
        set(config.estimators) == {"mgs", "reinforce", "cross_entropy"} and config.eval_seeds >= 5
    )


def test_hpsearch_mgs_tunes_reruns_and_writes_the_figure_and_table(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[mgs]\nname = "m"\ndataset = "wine"\nepochs = 3\nn_trials = 3\neval_seeds = 2\n'
        'estimators = ["cross_entropy", "mgs"]\nwidth = 16\n'
    )
    out = run_cli("mgs", str(path), "--out", "res", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "res" / "m.png").read_bytes().startswith(b"\x89PNG")
    table = (tmp_path / "res" / "m.md").read_text()
    assert "| mgs |" in table and "| cross_entropy |" in table and "sigma=" in table
    study = optuna.load_study(study_name="m-mgs", storage=f"sqlite:///{tmp_path / 'hpsearch.db'}")
    assert len(study.trials) == 3 and set(study.best_params) == {"lr", "n", "sigma", "alpha", "mix"}
    assert all(math.isfinite(t.value) for t in study.trials)
    listed = {r.name: r for r in list_studies(f"sqlite:///{tmp_path / 'hpsearch.db'}")}
    assert (listed["m-mgs"].mode, listed["m-mgs"].dataset) == ("mgs", "wine")
    assert listed["m-cross_entropy"].setup == "cross_entropy (macro_f1)"


def test_n_trials_and_epochs_override_the_file_and_a_rerun_tops_up(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[mgs]\nname = "m"\ndataset = "wine"\nepochs = 50\nn_trials = 20\neval_seeds = 1\n'
        'estimators = ["cross_entropy"]\nwidth = 8\n'
    )
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"

    def mgs(*flags: str):
        return run_main("mgs", str(path), "--out", "res", *flags, cwd=tmp_path)

    def trials() -> list[optuna.trial.FrozenTrial]:
        return optuna.load_study(study_name="m-cross_entropy", storage=storage).trials

    out = mgs("--n-trials", "2", "--epochs", "2")
    assert out.returncode == 0, out.stderr
    assert len(trials()) == 2  # not the file's 20
    assert (
        "2 epochs, batch 64; 2 TPE trials per estimator" in (tmp_path / "res" / "m.md").read_text()
    )
    # As with `run`, N is the study's total: 3 adds one trial, 2 adds none.
    assert mgs("--n-trials", "3", "--epochs", "2").returncode == 0 and len(trials()) == 3
    assert mgs("--n-trials", "2", "--epochs", "2").returncode == 0 and len(trials()) == 3
    # Trials of another epoch budget are not mixed in: refused in one line, nothing run.
    other = mgs("--n-trials", "4", "--epochs", "3")
    assert other.returncode == 1 and len(trials()) == 3
    assert "tuned with epochs=2, not epochs=3; continue it with --epochs 2" in other.stderr
    bad = mgs("--n-trials", "0")
    assert bad.returncode == 2 and "must be an integer in [1, 1000000]" in bad.stderr


def test_a_budget_refused_for_any_estimator_trains_none_of_them(tmp_path: Path) -> None:
    # The second estimator's stored study was tuned at 2 epochs: the first must not train.
    path = tmp_path / "m.toml"
    path.write_text(
        '[mgs]\nname = "m"\ndataset = "wine"\nepochs = 2\nn_trials = 1\neval_seeds = 1\n'
        'estimators = ["mgs"]\nwidth = 8\n'
    )
    assert run_main("mgs", str(path), "--out", "res", cwd=tmp_path).returncode == 0
    path.write_text(path.read_text().replace('["mgs"]', '["cross_entropy", "mgs"]'))
    out = run_main("mgs", str(path), "--out", "res", "--epochs", "3", cwd=tmp_path)
    assert out.returncode == 1 and "tuned with epochs=2, not epochs=3" in out.stderr
    storage = f"sqlite:///{tmp_path / 'hpsearch.db'}"
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {"m-mgs"}  # cross_entropy's study was never made


def test_evaluation_seeds_are_disjoint_and_the_cheap_estimator_gets_equal_wall_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hpsearch.labs.mgs_study as mgs_study

    calls: list[tuple[str, int, int, int]] = []  # estimator, split seed, train seed, epochs
    real_train, real_split = mgs_study.train_metric, mgs_study._split

    def split(config, seed):
        data = real_split(config, seed)
        splits[id(data)] = seed
        return data

    def recording(data, model, config, deadline=None):
        calls.append((config.estimator, splits[id(data)], config.seed, config.epochs))
        result = real_train(data, model, config, deadline)
        # Wall times fixed here (MGS 10x cross-entropy per epoch): measured ones of 2-epoch runs
        # on wine are milliseconds, and noise under load could order them either way.
        per_epoch = 0.1 if config.estimator == "mgs" else 0.01
        return dataclasses.replace(
            result, seconds=[per_epoch * (e + 1) for e in range(config.epochs)]
        )

    splits: dict[int, int] = {}
    monkeypatch.setattr(mgs_study, "_split", split)
    monkeypatch.setattr(mgs_study, "train_metric", recording)
    path = tmp_path / "m.toml"
    path.write_text(
        '[mgs]\nname = "m"\ndataset = "wine"\nepochs = 2\nn_trials = 2\neval_seeds = 3\n'
        'seed = 4\nestimators = ["cross_entropy", "mgs"]\nwidth = 8\n'
    )
    config = mgs_study.load_mgs_file(path)
    summaries = mgs_study.run_mgs_study(config, f"sqlite:///{tmp_path / 'h.db'}", tmp_path, None)
    tuning = [c for c in calls if c[1] == 4]
    assert len(tuning) == 4 and all(c[2] == 4 for c in tuning)  # 2 trials x 2 estimators
    evaluation = [c for c in calls if c[1] != 4]
    assert {(c[1], c[2]) for c in evaluation} == {(5, 5), (6, 6), (7, 7)}  # split = seed, never 4
    ce, mgs = summaries
    # MGS costs more per epoch, so cross-entropy gets more epochs at equal wall time, and MGS
    # its own runs.
    assert mgs.seconds_per_epoch > ce.seconds_per_epoch
    assert ce.timed_epochs == round(2 * mgs.seconds_per_epoch / ce.seconds_per_epoch) > 2
    assert [c[3] for c in evaluation if c[0] == "cross_entropy"] == [2] * 3 + [ce.timed_epochs] * 3
    assert mgs.timed_epochs == 2 and mgs.timed_runs == mgs.runs
    diff = mgs_study.paired_differences(summaries)[("cross_entropy", "mgs")]
    by_hand = [a.test - b.test for a, b in zip(ce.timed_runs, mgs.timed_runs, strict=True)]
    assert diff[0] == pytest.approx(sum(by_hand) / 3) and diff[1] <= diff[0] <= diff[2]
    table = mgs_study.mgs_table(config, summaries)
    assert "evaluation seeds 5–7" in table and "| cross_entropy − mgs |" in table
