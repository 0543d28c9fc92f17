"""Contract tests of :mod:`hpsearch._compat`: each private Optuna, optuna-dashboard or torch
API we rely on still does what we use it for, in the installed releases."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import torch

from hpsearch import _compat, _torch_compat
from tests.conftest import fresh_python

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sqlite_study(tmp_path: Path, **kwargs) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'c.db'}", **kwargs)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # the list format, which we write
def test_constraints_key_is_where_optuna_reads_constraints(tmp_path: Path) -> None:
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(constraints_func=lambda t: (1.0,))
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert study.trials[0].system_attrs[_compat.CONSTRAINTS_KEY] == (1.0,)
    # And what we write there is what best_trials reads: an infeasible trial is never best.
    study = optuna.create_study()
    trial = study.ask()
    trial.storage.set_trial_system_attr(_compat.trial_id(trial), _compat.CONSTRAINTS_KEY, [1.0])
    study.tell(trial, 0.0)
    assert study.best_trials == []


def test_study_storage_is_the_study_s_own(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path, study_name="s")
    storage, study_id = _compat.study_storage(study)
    assert storage.get_study_id_from_name("s") == study_id
    assert storage.get_study_name_from_id(study_id) == "s"


def test_trial_id_and_renumbering(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    trial = study.ask()
    storage, _ = _compat.study_storage(study)
    assert storage.get_trial(_compat.trial_id(trial)).number == trial.number
    frozen = storage.get_trial(_compat.trial_id(trial))
    moved = _compat.with_number_and_id(frozen, 7, 99)
    assert (moved.number, _compat.trial_id(moved)) == (7, 99)


def test_validate_trial_refuses_a_complete_trial_without_values() -> None:
    good = optuna.trial.create_trial(value=1.0)
    _compat.validate_trial(good)
    bad = optuna.trial.create_trial(value=1.0)
    bad.values = None
    with pytest.raises(ValueError):
        _compat.validate_trial(bad)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_heartbeat_enabled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    assert not _compat.heartbeat_enabled(optuna.storages.RDBStorage(url))
    assert _compat.heartbeat_enabled(optuna.storages.RDBStorage(url, heartbeat_interval=5))


def test_rdb_backend_unwraps_the_cache_and_session_commits(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path, study_name="r")
    storage, study_id = _compat.study_storage(study)
    backend = _compat.rdb_backend(storage)
    assert isinstance(backend, optuna.storages.RDBStorage)
    assert _compat.rdb_backend(optuna.storages.InMemoryStorage()) is None
    with _compat.rdb_session(backend) as session:
        row = _compat.rdb_models.StudyModel.find_or_raise_by_id(study_id, session)
        assert row.study_name == "r"


def test_parent_cache_prefix_only_for_genetic_samplers() -> None:
    assert _compat.parent_cache_prefix(optuna.samplers.TPESampler()) is None
    prefix = _compat.parent_cache_prefix(optuna.samplers.NSGAIISampler())
    assert isinstance(prefix, str) and prefix
    # It is the prefix the sampler really caches its parents under.
    study = optuna.create_study(
        directions=["minimize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(population_size=4, seed=0),
    )
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 12)
    storage, study_id = _compat.study_storage(study)
    assert any(k.startswith(prefix) for k in storage.get_study_system_attrs(study_id))


def test_serialize_frozen_trial_is_what_the_dashboard_serves() -> None:
    x = optuna.distributions.FloatDistribution(0, 2)
    trial = optuna.trial.create_trial(value=0.5, params={"x": 1.0}, distributions={"x": x})
    data = _compat.serialize_frozen_trial(3, trial, {})
    assert data["study_id"] == 3 and data["values"] == [0.5]
    assert [p["name"] for p in data["params"]] == ["x"]


def test_fused_adam_update_is_one_adam_step() -> None:
    torch.manual_seed(0)
    p = torch.randn(5)
    grads = [torch.randn(5) for _ in range(3)]
    ref = p.clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=1.0)
    m, v, update = torch.zeros(5), torch.zeros(5), torch.zeros(5)
    mine = p.clone()
    for step, g in enumerate(grads, start=1):
        ref.grad = g.clone()
        adam.step()
        update.zero_()
        _torch_compat.fused_adam_update([update], [g], [m], [v], [step])
        mine += update
    assert torch.allclose(mine, ref.detach(), atol=1e-6)
    assert not math.isnan(float(mine.sum()))


def test_fused_adam_update_takes_a_step_count_per_tensor() -> None:
    # Two tensors at different steps in one call: each as its own Adam at its own step.
    torch.manual_seed(0)
    first, second = torch.randn(4), torch.randn(3)
    ref_first, ref_second = first.clone().requires_grad_(), second.clone().requires_grad_()
    opt_first, opt_second = torch.optim.Adam([ref_first]), torch.optim.Adam([ref_second])
    ref_first.grad = torch.randn(4)
    opt_first.step()  # the first tensor is one step ahead
    state = {"m": [opt_first.state[ref_first]["exp_avg"].clone(), torch.zeros(3)],
             "v": [opt_first.state[ref_first]["exp_avg_sq"].clone(), torch.zeros(3)]}  # fmt: skip
    mine = [ref_first.detach().clone(), second.clone()]
    g = [torch.randn(4), torch.randn(3)]
    ref_first.grad, ref_second.grad = g[0].clone(), g[1].clone()
    opt_first.step()
    opt_second.step()
    updates = [torch.zeros(4), torch.zeros(3)]
    _torch_compat.fused_adam_update(updates, g, state["m"], state["v"], [2, 1])
    for p, u, ref in zip(mine, updates, (ref_first, ref_second), strict=True):
        assert torch.allclose(p + 1e-3 * u, ref.detach(), atol=1e-7)


def test_reparametrized_computes_with_the_given_parameters() -> None:
    module = torch.nn.Linear(2, 1)
    weight, bias = torch.ones(1, 2), torch.zeros(1)
    with _torch_compat.reparametrized(module, {"weight": weight, "bias": bias}):
        assert float(module(torch.tensor([[1.0, 2.0]]))) == 3.0
    assert not torch.equal(module.weight, weight)  # its own again


def test_the_training_core_imports_no_optuna() -> None:
    # The core knows nothing of Optuna (a GPU host may not even have it installed).
    code = (
        "import sys\n"
        "import hpsearch.core.population, hpsearch.core.train, hpsearch.core.device\n"
        "print('optuna' in sys.modules)\n"
    )
    assert fresh_python(code) == "False"
