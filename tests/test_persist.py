from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hpsearch.study.persist import add_finished_trials
from hpsearch.study.storage import open_storage

FIELDS = (
    "state",
    "values",
    "params",
    "distributions",
    "user_attrs",
    "system_attrs",
    "intermediate_values",
    "datetime_start",
    "datetime_complete",
)


def _storage(kind: str, tmp_path: Path, request=None) -> optuna.storages.BaseStorage:
    if kind == "postgresql":
        return open_storage(request.getfixturevalue("postgres_url"))
    if kind == "sqlite":
        return open_storage(f"sqlite:///{tmp_path / 'p.db'}")
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(tmp_path / "p.log")))
    return optuna.storages.InMemoryStorage()


def _finished_trials() -> list[optuna.trial.FrozenTrial]:
    source = optuna.create_study(directions=["minimize", "minimize"])
    finished = []
    for i in range(5):
        trial = source.ask()
        trial.suggest_float("lr", 1e-4, 1.0, log=True)
        trial.suggest_int("depth", 1, 4)
        trial.suggest_categorical("optimizer", ["sgd", "adam"])
        trial.set_user_attr("val_loss1", 0.1 * i)
        trial.set_user_attr("history", {"lr": [0.1, 0.05], "val_loss1": [1.0, math.pi]})
        trial.set_constraint("l2_budget", i - 2.0)
        if i == 1:
            finished.append(source.tell(trial, state=TrialState.FAIL))
        else:
            values = [0.5 * i, math.inf if i == 3 else 1.0 / (i + 1)]
            finished.append(source.tell(trial, values))
    return finished


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "journal", "memory"])
def test_stores_what_add_trials_stores(kind: str, tmp_path: Path, request) -> None:
    storage = _storage(kind, tmp_path, request)
    plain = optuna.create_study(storage=storage, study_name="plain", directions=["minimize"] * 2)
    bulk = optuna.create_study(storage=storage, study_name="bulk", directions=["minimize"] * 2)
    # A trial already in the bulk study: the new ones continue its numbering, and their
    # trial ids (shared by both studies in one database) differ from their numbers.
    bulk.add_trial(optuna.create_trial(values=[9.0, 9.0]))
    trials = _finished_trials()
    plain.add_trials(trials)
    stored = add_finished_trials(bulk, trials)
    assert [t.number for t in stored] == [1, 2, 3, 4, 5]
    read_back = bulk.get_trials()
    assert [t.number for t in read_back] == [0, 1, 2, 3, 4, 5]
    assert [t._trial_id for t in read_back[1:]] == [t._trial_id for t in stored]
    for expected, got, returned in zip(plain.get_trials(), read_back[1:], stored, strict=True):
        for field in FIELDS:
            assert getattr(got, field) == getattr(expected, field), field
            assert getattr(returned, field) == getattr(expected, field), field
    assert read_back[4].values == [1.5, math.inf]
    assert read_back[2].state == TrialState.FAIL
    # Optuna reads the constraints back: without them trial 5 would be on the front too.
    assert {t.number for t in bulk.best_trials} == {1, 3}


def test_nothing_to_store(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    assert add_finished_trials(study, []) == []
    assert study.trials == []


def test_an_invalid_trial_stores_nothing(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    good = optuna.create_trial(value=1.0)
    bad = optuna.create_trial(value=1.0)
    bad.state = TrialState.RUNNING  # a running trial with a value is not a valid template
    with pytest.raises(ValueError):
        add_finished_trials(study, [good, bad])
    assert study.trials == []
