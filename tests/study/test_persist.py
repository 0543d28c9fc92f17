from __future__ import annotations

import math
import threading
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hpsearch import _compat
from hpsearch.study import persist
from hpsearch.study.persist import (
    abandon_trials,
    add_finished_trials,
    beat,
    finish_trials,
    set_user_attrs,
    start_trials,
)
from hpsearch.study.storage import counts_toward_target, open_storage

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


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "journal", "memory"])
def test_set_user_attrs_stores_what_set_user_attr_stores(kind, tmp_path: Path, request) -> None:
    storage = _storage(kind, tmp_path, request)
    study = optuna.create_study(storage=storage, study_name="attrs")
    attrs = {"val_loss1": 0.25, "history": {"lr": [0.1, 0.05]}, "feasible": True, "n": 3}
    by_key, batched = study.ask(), study.ask()
    by_key.set_user_attr("val_loss1", -1.0)  # overwritten, not duplicated
    batched.set_user_attr("val_loss1", -1.0)
    for key, value in attrs.items():
        by_key.set_user_attr(key, value)
    set_user_attrs(batched, attrs)
    assert batched.user_attrs == by_key.user_attrs == attrs  # the trial's own cached view
    stored = {t.number: t.user_attrs for t in study.get_trials(deepcopy=False)}
    assert stored[batched.number] == stored[by_key.number] == attrs


def test_set_user_attrs_is_one_commit_on_sqlite(tmp_path: Path) -> None:
    import sqlalchemy

    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}")
    study = optuna.create_study(storage=storage, study_name="commits")
    trial = study.ask()
    commits = []
    engine = _compat.rdb_backend(storage).engine
    sqlalchemy.event.listen(engine, "commit", lambda conn: commits.append(1))
    set_user_attrs(trial, {f"k{i}": i for i in range(15)})
    assert len(commits) == 1


def _asked(n: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` trials as population mode has them once asked: params chosen, RUNNING."""
    source = optuna.create_study()
    asked = []
    for _ in range(n):
        trial = source.ask()
        trial.suggest_float("lr", 1e-4, 1.0, log=True)
        trial.set_user_attr("population_size", n)
        asked.append(source._storage.get_trial(trial._trial_id))
    return asked


def _done(trial: optuna.trial.FrozenTrial, value: float) -> optuna.trial.FrozenTrial:
    return optuna.create_trial(
        value=value, params=trial.params, distributions=trial.distributions,
        user_attrs={**trial.user_attrs, "val_loss1": value},
    )  # fmt: skip


def _beating(kind: str, tmp_path: Path, request) -> optuna.storages.BaseStorage:
    """An SQL storage with heartbeats (running trials hold their slots), or, for
    ``sqlite-plain``, without."""
    if kind == "sqlite":
        return open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat=10)
    if kind == "postgresql":
        return open_storage(request.getfixturevalue("postgres_url"), heartbeat=10)
    return _storage("sqlite", tmp_path, request)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "sqlite-plain"])
def test_started_trials_are_running_then_finished_in_place(kind, tmp_path, request) -> None:
    storage = _beating(kind, tmp_path, request)
    hold = kind in ("sqlite", "postgresql")  # heartbeats tell live running trials from dead
    study = optuna.create_study(storage=storage, study_name="batch")
    first, second = _asked(2), _asked(2)
    started_a = start_trials(study, first)
    started_b = start_trials(study, second)
    assert [t.number for t in started_a + started_b] == [0, 1, 2, 3]
    read = study.get_trials()
    assert [t.state for t in read] == [TrialState.RUNNING] * 4
    assert [t.params for t in read] == [t.params for t in first + second]
    # The second batch finishes first, with a target of 3. With heartbeats the first batch's
    # RUNNING trials hold their slots: one of the second counts, the other is surplus.
    done_b = finish_trials(study, started_b, [_done(t, 1.0) for t in second], target=3)
    expected = [TrialState.COMPLETE, TrialState.FAIL if hold else TrialState.COMPLETE]
    assert [t.state for t in done_b] == expected
    assert done_b[1].user_attrs.get("surplus", False) is hold
    # The first batch counts what is complete, whatever its number.
    done_a = finish_trials(study, started_a[:1], [_done(first[0], 2.0)], target=3)
    assert done_a[0].state == TrialState.COMPLETE
    abandon_trials(study, started_a)  # the one never trained; the finished one stays
    read = study.get_trials()
    assert [t.state for t in read] == [TrialState.COMPLETE, TrialState.FAIL, *expected]
    assert "fail_reason" not in read[1].user_attrs and "surplus" not in read[1].user_attrs
    assert read[0].values == [2.0] and read[0].user_attrs["val_loss1"] == 2.0
    assert read[2].values == [1.0] and read[2].params == second[0].params
    assert len(read) == 4  # completed in place: no second copy of any trial


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-plain"])
def test_groups_of_one_batch_finish_within_the_target_whatever_their_order(
    kind, tmp_path, request
) -> None:
    # Groups interleave: {0, 2} then {1, 3}, target 2. With heartbeats, running trial 1 holds
    # its slot while {0, 2} is stored: the slots go to 0 and 1. Without, to the first stored.
    study = optuna.create_study(storage=_beating(kind, tmp_path, request), study_name="g")
    asked = _asked(4)
    started = start_trials(study, asked)
    for group in ([0, 2], [1, 3]):
        finish_trials(
            study, [started[i] for i in group], [_done(asked[i], 1.0) for i in group], target=2
        )
    read = study.get_trials()
    complete = [t.number for t in read if t.state == TrialState.COMPLETE]
    assert complete == ([0, 1] if kind == "sqlite" else [0, 2])
    assert all(t.user_attrs.get("surplus") for t in read if t.number not in complete)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_batch_finished_by_another_process_meanwhile_is_counted_once(
    kind, tmp_path, request, monkeypatch
) -> None:
    # Batch A (trials 0, 1) and batch B (2, 3), target 2. B is finished first; after it has
    # counted the finished trials (none), A is finished from another connection. If A can
    # commit before B reads the running trials, B sees A neither running nor counting and
    # keeps both of its own: 4 trials count. Holding the study's lock from B's first read,
    # A waits until B is stored (surplus: A's running trials hold the slots) and A counts.
    url = f"sqlite:///{tmp_path / 'race.db'}" if kind == "sqlite" else None
    url = url or request.getfixturevalue("postgres_url")
    study_b = optuna.create_study(storage=open_storage(url, heartbeat=10), study_name="race")
    study_a = optuna.load_study(storage=open_storage(url, heartbeat=10), study_name="race")
    asked_a, asked_b = _asked(2), _asked(2)
    started_a, started_b = start_trials(study_a, asked_a), start_trials(study_b, asked_b)
    finish_a = threading.Thread(
        target=finish_trials,
        args=(study_a, started_a, [_done(t, 1.0) for t in asked_a], 2),
    )
    real_counting = persist._counting

    class CountThenLetAFinish:
        def __init__(self, query) -> None:
            self.query = query

        def count(self) -> int:
            counted = self.query.count()
            if threading.current_thread() is not finish_a and not finish_a.is_alive():
                finish_a.start()
                finish_a.join(timeout=1.5)  # with the lock held, A waits for B instead
            return counted

    monkeypatch.setattr(
        persist,
        "_counting",
        lambda session, trials: CountThenLetAFinish(real_counting(session, trials)),
    )
    finish_trials(study_b, started_b, [_done(t, 2.0) for t in asked_b], target=2)
    finish_a.join(timeout=30)
    assert not finish_a.is_alive()
    read = study_b.get_trials()
    assert [t.state for t in read] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] * 2
    assert all(t.user_attrs.get("surplus") for t in read[2:])


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-plain"])
def test_a_trial_failed_meanwhile_is_not_finished_over(kind, tmp_path, request) -> None:
    # Another worker failed it as stale while it trained: it stays FAIL, counted nowhere twice.
    study = optuna.create_study(storage=_beating(kind, tmp_path, request), study_name="f")
    asked = _asked(2)
    started = start_trials(study, asked)
    study._storage.set_trial_state_values(started[0]._trial_id, TrialState.FAIL)
    done = finish_trials(study, started, [_done(t, 1.0) for t in asked], target=5)
    assert [t.state for t in done] == [TrialState.FAIL, TrialState.COMPLETE]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]


def test_only_an_sql_storage_stores_running_batches(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("journal", tmp_path))
    with pytest.raises(ValueError, match="SQL storage"):
        start_trials(study, _asked(1))


def test_started_trials_send_heartbeats(tmp_path: Path) -> None:
    # Optuna fails a RUNNING trial as stale only if it has sent a heartbeat.
    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeat=10)
    study = optuna.create_study(storage=storage, study_name="b")
    started = start_trials(study, _asked(3))
    backend = _compat.rdb_backend(storage)
    model = _compat.rdb_models.TrialHeartbeatModel
    with _compat.rdb_session(backend) as session:
        first = {r.trial_id: r.heartbeat for r in session.query(model)}
    assert set(first) == {t._trial_id for t in started}
    beat(storage, started[:2])  # updates the rows, adds none
    with _compat.rdb_session(backend) as session:
        assert session.query(model).count() == 3


def test_a_running_trial_that_never_beat_is_adopted_and_goes_stale(tmp_path) -> None:
    """A RUNNING trial with no heartbeat row (its process filled the disk before the first
    beat) is never failed by Optuna's stale check; adopted, it is, after the grace period."""
    import time

    from hpsearch.study.persist import adopt_silent_trials

    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=1, grace_period=1
    )
    study = optuna.create_study(storage=storage)
    silent = study.ask()  # RUNNING, and ask() records no heartbeat
    time.sleep(1.5)
    optuna.storages.fail_stale_trials(study)
    assert study.trials[silent.number].state == TrialState.RUNNING  # Optuna alone: never
    assert adopt_silent_trials(study) == 1
    assert adopt_silent_trials(study) == 0  # it has a beat now
    # SQLite's clock has whole seconds: stale once more than the 1 s grace has surely passed.
    deadline = time.monotonic() + 10
    while study.trials[silent.number].state == TrialState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.5)
        optuna.storages.fail_stale_trials(study)
    assert study.trials[silent.number].state == TrialState.FAIL


def test_a_batch_asks_only_for_the_slots_live_workers_do_not_hold(tmp_path, study_file) -> None:
    """Another worker's batch of 4 is RUNNING (with its beat) for a target of 5: a new batch
    worker asks for 1 trial, not 4, and waits; so when the other batch completes nothing was
    trained for nothing (asking 4 left 4 surplus trials)."""
    import hpsearch
    from hpsearch.study.runner import create_or_load_study

    url = f"sqlite:///{tmp_path / 'slots.db'}"
    path = study_file(mode="scalarized", n_trials=5, epochs=1, sampler='"random"')
    config = hpsearch.load_study_file(path)
    study = create_or_load_study(config, open_storage(url, heartbeat=60))
    other = _asked(4)
    held = start_trials(study, other)
    done = [_done(t, 1.0) for t in other]
    finisher = threading.Timer(3.0, lambda: finish_trials(study, held, done, target=5))
    finisher.start()
    try:
        hpsearch.run_study(config, url, hpsearch.RunOptions(batch=4, progress=False))
    finally:
        finisher.join()
    trials = study.get_trials()
    assert sum(counts_toward_target(t) for t in trials) == 5
    assert [t.number for t in trials if t.user_attrs.get("surplus")] == []
    assert len(trials) == 5 and TrialState.RUNNING not in [t.state for t in trials]


def test_a_journal_batch_whose_worker_died_finishing_it_holds_no_slot(tmp_path) -> None:
    """A journal has no heartbeat: a worker killed between storing its batch RUNNING and
    finishing it left RUNNING trials that held their slots for ever (the next batches were
    all stored as surplus, below the target)."""
    import time

    from hpsearch.study import keys

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "j.log")))
    study = optuna.create_study(storage=storage, study_name="journal")
    (dead,) = _asked(1)
    dead.state, dead.values = TrialState.RUNNING, None
    dead.system_attrs[keys.FINISHING_SINCE] = time.time() - 2 * persist.FINISH_GRACE_SECONDS
    storage.create_new_trial(study._study_id, template_trial=dead)
    fresh = _asked(1)[0]
    fresh.state, fresh.values = TrialState.RUNNING, None
    fresh.system_attrs[keys.FINISHING_SINCE] = time.time()  # another worker, finishing now
    storage.create_new_trial(study._study_id, template_trial=fresh)
    held = persist.journal_slots_held(study, study.get_trials(deepcopy=False))
    assert held == 1  # the live one; the dead one failed
    assert study.get_trials()[0].state == TrialState.FAIL
    mine = _asked(2)
    stored = add_finished_trials(study, [_done(t, 1.0) for t in mine], target=2)
    assert [t.state for t in stored] == [TrialState.COMPLETE, TrialState.FAIL]
    assert stored[1].user_attrs.get("surplus") is True  # the live one held its slot
    states = [t.state for t in study.get_trials()]
    assert states[0] == TrialState.FAIL and states[1] == TrialState.RUNNING  # dead one failed
