"""Many trials stored, and later finished, in one storage transaction each.

Population mode asks and tells a whole batch in an in-memory copy of the study. On an SQL
storage its trials are stored RUNNING as soon as they are asked (:func:`start_trials`), so
that the storage and the dashboard show the batch while it trains, and completed when it is
trained (:func:`finish_trials`); elsewhere each group is stored once trained
(:func:`add_finished_trials`). ``Study.add_trials`` writes every record of a trial with its own
lookup on an RDB storage: about 15 ms per trial with 15 user attributes on SQLite, 1 s for a
batch of 64, as long as training the batch takes. These functions write the same rows through
Optuna's own ORM models in one session each; on any other storage (Journal file, in-memory)
:func:`add_finished_trials` uses the public API. What is stored, and what Optuna reads back,
is the same either way (tested).

A database server's transient faults (a restart, a dropped connection) are retried as every
other storage operation is (:func:`hpsearch.study.storage.with_retries`): a batch worker rides
out an outage as a sequential one does. A retry is safe: :func:`finish_trials` leaves a trial
that is no longer RUNNING as it is, and if a dropped connection hid that
:func:`start_trials`'s commit had landed, the retry stores the batch again and the first copy,
never beaten again, goes stale and is failed (it never counts).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import json
import time
from collections.abc import Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from hpsearch._compat import (
    heartbeat_enabled,
    rdb_backend,
    rdb_models,
    rdb_session,
    record_rdb_heartbeats,
    remember_user_attrs,
    set_rdb_trial_user_attrs,
    study_storage,
    trial_id,
    validate_trial,
    with_number_and_id,
)
from hpsearch.study import keys
from hpsearch.study.storage import counts_toward_target, with_retries


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """``trial.set_user_attr(key, value)`` for every item of ``attrs``, in one transaction on an
    SQL storage (retried as a whole on a transient fault, like every storage call of ours).

    A finished trial records about 15 attributes: one commit each cost 40-60 ms per trial on
    SQLite, 4-6% of a one-second trial. Other storages take them one by one.
    """
    backend = rdb_backend(trial.storage)
    if backend is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    with_retries(set_rdb_trial_user_attrs)(backend, trial_id(trial), attrs)
    remember_user_attrs(trial, attrs)


def add_finished_trials(
    study: optuna.Study, trials: Sequence[FrozenTrial], target: int | None = None
) -> list[FrozenTrial]:
    """``study.add_trials(trials)``, within a target: :func:`start_trials` then
    :func:`finish_trials` (one transaction each where possible).

    Each trial gets the next trial number, in order; its state, datetimes, values, params,
    user and system attributes (constraints included) and intermediate values are stored as
    given. Numbers are handed out under the storage's lock, so that processes storing at the
    same time never share one.

    Args:
        study: The study to add to.
        trials: Finished trials (from another study, or made with ``optuna.create_trial``).
        target: The study's target number of trials that count
            (:func:`hpsearch.study.storage.counts_toward_target`), or None for no limit. A
            trial that would count past it (another process reached the target while this
            batch trained) is stored as FAIL with the user attr ``surplus``: it does not count.

    Returns:
        The trials as stored, with their numbers in ``study``.
    """
    for trial in trials:
        validate_trial(trial)
    if not trials:
        return []
    storage, study_id = study_storage(study)
    if rdb_backend(storage) is None:
        return _add_through_api(storage, study_id, trials, target)
    return finish_trials(study, start_trials(study, trials), trials, target)


@with_retries
def start_trials(study: optuna.Study, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Store asked trials (params chosen, not finished) as RUNNING, in one transaction where
    possible, so that the storage and the dashboard show a batch while it trains.

    :func:`finish_trials` completes them; :func:`abandon_trials` fails those that never will.
    Each gets the next trial number, in order; with heartbeats on, its first heartbeat in the
    same transaction, so that a killed process's trials go stale and are failed (Optuna skips
    a RUNNING trial that never sent one). :func:`beat` sends the next ones.

    Returns:
        The trials as stored (RUNNING), with their numbers and ids in ``study``.
    """
    storage, study_id = study_storage(study)
    running = []
    for trial in trials:
        held = copy.deepcopy(trial)
        held.state, held.values, held.datetime_complete = TrialState.RUNNING, None, None
        held.intermediate_values = {}
        running.append(held)
    if not running:
        return []
    with rdb_session(_sql_backend(storage)) as session:
        rows = _insert_numbered(session, study_id, running)
        children: list[Any] = []
        for row, trial in zip(rows, running, strict=True):
            children += _child_rows(int(row.trial_id), trial)
        session.add_all(children)
        session.flush()
        if heartbeat_enabled(storage):
            record_rdb_heartbeats(session, [int(row.trial_id) for row in rows])
        numbers_ids = [(int(row.number), int(row.trial_id)) for row in rows]
    return [
        with_number_and_id(trial, number, tid)
        for (number, tid), trial in zip(numbers_ids, running, strict=True)
    ]


def _sql_backend(storage: Any) -> Any:
    """The SQL storage behind ``storage``: RUNNING batches live only there (a journal file's
    appends cannot decide atomically which trials count; see run_population)."""
    backend = rdb_backend(storage)
    if backend is None:
        raise ValueError("batches are stored RUNNING only on an SQL storage")
    return backend


@with_retries
def beat(storage: Any, trials: Sequence[FrozenTrial]) -> None:
    """A heartbeat for each of ``trials`` (RUNNING), where the storage keeps heartbeats: one
    transaction on an SQL storage."""
    if not heartbeat_enabled(storage) or not trials:
        return
    with rdb_session(_sql_backend(storage)) as session:
        record_rdb_heartbeats(session, [trial_id(t) for t in trials])


@with_retries
def finish_trials(
    study: optuna.Study,
    started: Sequence[FrozenTrial],
    finished: Sequence[FrozenTrial],
    target: int | None = None,
) -> list[FrozenTrial]:
    """Complete trials :func:`start_trials` stored: each of ``started`` takes the state,
    values, attributes, intermediate values and completion time of the ``finished`` trial at
    the same place, in one transaction where possible.

    Whether a trial counts toward ``target`` is decided now, under the study's lock: the
    trials that already count (whatever their numbers) are ahead of it, and, where heartbeats
    tell live trials from a dead worker's, so are the RUNNING trials numbered before it (another
    batch, a sequential worker's trial): they hold their slots while they train. A trial that
    is no longer RUNNING (another worker failed it as stale) is left as it is.

    Returns:
        The trials as stored.
    """
    for trial in finished:
        validate_trial(trial)
    if not started:
        return []
    storage, study_id = study_storage(study)
    backend = _sql_backend(storage)
    ids = [trial_id(t) for t in started]
    hold = heartbeat_enabled(storage)
    Trial = rdb_models.TrialModel
    left: list[int] = []  # no longer ours to finish
    with rdb_session(backend) as session:
        _lock_study(session, study_id)
        rows = {int(r.trial_id): r for r in session.query(Trial).filter(Trial.trial_id.in_(ids))}
        counting, running = _ahead(session, study_id, ids, hold)
        stored = list(finished)
        mine = 0
        for i in sorted(range(len(ids)), key=lambda i: ids[i]):
            row = rows[ids[i]]
            if row.state != TrialState.RUNNING:
                left.append(i)
                continue
            counted = counting + bisect.bisect_left(running, ids[i]) + mine
            stored[i], counts = _within_target(finished[i], counted, target)
            mine += counts
            row.state, row.datetime_complete = stored[i].state, stored[i].datetime_complete
        done = [tid for i, tid in enumerate(ids) if i not in left]
        # The attributes are written again whole: the finished trial holds every one.
        for model in (rdb_models.TrialUserAttributeModel, rdb_models.TrialSystemAttributeModel):
            session.query(model).filter(model.trial_id.in_(done)).delete(synchronize_session=False)
        children: list[Any] = []
        for i, (tid, trial) in enumerate(zip(ids, stored, strict=True)):
            if i not in left:
                children += _child_rows(tid, trial, params=False)
        session.add_all(children)
    for i in left:
        stored[i] = storage.get_trial(ids[i])
    return [
        with_number_and_id(copy.copy(trial), s.number, trial_id(s))
        for s, trial in zip(started, stored, strict=True)
    ]


@with_retries
def adopt_silent_trials(study: optuna.Study) -> int:
    """Give a heartbeat to the RUNNING trials that have none: their process stored the trial
    but never its first beat (a disk that filled between the two, then the process ended), so
    Optuna's stale check, which reads only trials with a beat, would never fail them, and a run
    waiting for the slots they hold would wait for ever. With a beat now they go stale after
    the grace period, as a killed worker's do, and are failed and retried; a live trial beats
    on the same row from its own process, so adopting one changes nothing. Returns how many
    were adopted (0 on a storage without heartbeats)."""
    storage, study_id = study_storage(study)
    backend = rdb_backend(storage)
    if backend is None or not heartbeat_enabled(storage):
        return 0
    trial, beat_row = rdb_models.TrialModel, rdb_models.TrialHeartbeatModel
    with rdb_session(backend) as session:
        silent = [
            int(tid)
            for (tid,) in session.query(trial.trial_id)
            .outerjoin(beat_row, beat_row.trial_id == trial.trial_id)
            .filter(
                trial.study_id == study_id,
                trial.state == TrialState.RUNNING,
                beat_row.trial_id.is_(None),
            )
        ]
        if silent:
            record_rdb_heartbeats(session, silent)
    return len(silent)


def abandon_trials(study: optuna.Study, started: Sequence[FrozenTrial]) -> None:
    """Fail trials :func:`start_trials` stored that will not be trained (Ctrl-C, an error):
    FAIL without a reason, so they do not count and a rerun replaces them."""
    storage, _ = study_storage(study)
    for trial in started:
        if storage.get_trial(trial_id(trial)).state == TrialState.RUNNING:
            storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)


def _lock_study(session: Any, study_id: int) -> None:
    """Hold the study's write lock from now to the end of ``session``'s transaction, so that
    what it reads next and what it writes are one consistent step across processes.

    PostgreSQL and MySQL lock the study row (``SELECT ... FOR UPDATE``), as Optuna's own trial
    creation does. SQLite has no row locks, and Python's sqlite3 opens a transaction only at the
    first write: each read before it sees the database as of that read, so another process can
    commit between two reads (a batch counted as neither running nor finished, and both
    batches kept: 12 trials for a target of 10). ``BEGIN IMMEDIATE`` takes SQLite's write lock
    before the first read (waiting for another writer as any write does).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    rdb_models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)


def _insert_numbered(session: Any, study_id: int, trials: Sequence[FrozenTrial]) -> list[Any]:
    """Insert one trial row per trial, numbered in order after the study's trials."""
    # The numbers and the count below must see every trial another process stored before us.
    _lock_study(session, study_id)
    rows = []
    for trial in trials:
        row = rdb_models.TrialModel(study_id=study_id, number=None, state=trial.state)
        row.datetime_start = trial.datetime_start
        row.datetime_complete = trial.datetime_complete
        rows.append(row)
    session.add_all(rows)
    session.flush()  # assigns the trial ids the child rows point to
    first_id = min(int(row.trial_id) for row in rows)
    Trial = rdb_models.TrialModel
    before = session.query(Trial).filter(Trial.study_id == study_id, Trial.trial_id < first_id)
    before = before.count()
    for rank, i in enumerate(sorted(range(len(rows)), key=lambda i: int(rows[i].trial_id))):
        rows[i].number = before + rank
    return rows


def _ahead(session: Any, study_id: int, ours: list[int], hold: bool) -> tuple[int, list[int]]:
    """Of the study's trials other than ``ours``: how many count toward the target, and (with
    ``hold``) the ids of the RUNNING ones, sorted."""
    Trial = rdb_models.TrialModel
    others = session.query(Trial).filter(Trial.study_id == study_id, ~Trial.trial_id.in_(ours))
    counting = _counting(session, others).count()
    if not hold:
        return counting, []
    running = others.filter(Trial.state == TrialState.RUNNING).with_entities(Trial.trial_id)
    return counting, sorted(int(tid) for (tid,) in running)


def _counting(session: Any, trials: Any) -> Any:
    """The trials of a query that count toward a target, in SQL: what
    :func:`hpsearch.study.storage.counts_toward_target` says of one trial."""
    Trial, Attr = rdb_models.TrialModel, rdb_models.TrialUserAttributeModel
    diverged = sqlalchemy.exists().where(
        Attr.trial_id == Trial.trial_id, Attr.key == keys.FAIL_REASON
    )
    return trials.filter(
        sqlalchemy.or_(
            Trial.state.in_([TrialState.COMPLETE, TrialState.PRUNED]),
            sqlalchemy.and_(Trial.state == TrialState.FAIL, diverged),
        )
    )


def _within_target(trial: FrozenTrial, counted: int, target: int | None) -> tuple[FrozenTrial, int]:
    """The trial as it is stored when ``counted`` trials already count, and whether it counts."""
    counts = counts_toward_target(trial)
    if not counts or target is None or counted < target:
        return copy.copy(trial), int(counts)
    surplus = copy.deepcopy(trial)
    surplus.state, surplus.values = TrialState.FAIL, None
    surplus.user_attrs[keys.SURPLUS] = True
    surplus.user_attrs.pop(keys.FAIL_REASON, None)
    return surplus, 0


def _add_through_api(
    storage: Any, study_id: int, trials: Sequence[FrozenTrial], target: int | None
) -> list[FrozenTrial]:
    """Journal and in-memory storages: create the trials RUNNING, then finish each.

    The journal hands out numbers in the order of its (locked) appends; whether a trial counts
    is decided once it has its number, from the trials numbered before it, counting another
    batch's trials still RUNNING there as holding their slots (they are being finished). With
    a target, ``datetime_complete`` is the time the trial was stored.
    """
    if target is None:  # nothing to decide: store them as they are
        ids = [storage.create_new_trial(study_id, template_trial=t) for t in trials]
        return [storage.get_trial(i) for i in ids]
    ids = []
    now = time.time()
    for trial in trials:
        running = copy.deepcopy(trial)
        running.state, running.values, running.datetime_complete = TrialState.RUNNING, None, None
        running.system_attrs[keys.FINISHING_SINCE] = now
        ids.append(storage.create_new_trial(study_id, template_trial=running))
    every = storage.get_all_trials(study_id, deepcopy=False)
    numbers = {trial_id(t): t.number for t in every}
    # Another batch's trials RUNNING before ours are being finished like ours: they hold a
    # slot, unless their worker died finishing them (a journal has no heartbeat): those are
    # failed, so that they neither hold a slot for ever nor stay RUNNING.
    gone = _fail_dead_finishers(storage, [t for t in every if trial_id(t) not in ids], now)
    ahead = [
        t.number
        for t in every
        if trial_id(t) not in ids
        and trial_id(t) not in gone
        and (counts_toward_target(t) or _being_finished(t))
    ]
    counted_mine: list[int] = []  # numbers of our trials that count
    stored: dict[int, FrozenTrial] = {}
    for i in sorted(range(len(ids)), key=lambda i: numbers[ids[i]]):
        number = numbers[ids[i]]
        counted = sum(n < number for n in ahead) + len(counted_mine)
        final, counts = _within_target(trials[i], counted, target)
        if counts:
            counted_mine.append(number)
        for key, value in final.user_attrs.items():
            if key not in trials[i].user_attrs:
                storage.set_trial_user_attr(ids[i], key, value)
        # Failed under a finisher slower than the grace: the trial is lost, not the worker.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_state_values(ids[i], final.state, final.values)
        stored[i] = storage.get_trial(ids[i])
    return [stored[i] for i in range(len(ids))]


# Finishing a batch on a journal takes milliseconds; a trial still RUNNING this long after its
# worker began to finish it belongs to a worker that died in between.
FINISH_GRACE_SECONDS = 30.0


def _being_finished(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.RUNNING and keys.POPULATION_SIZE in trial.user_attrs


def _fail_dead_finishers(storage: Any, trials: Sequence[FrozenTrial], now: float) -> set[int]:
    """Fail the trials among ``trials`` whose worker died finishing them; their ids."""
    dead = {trial_id(t) for t in trials if _died_finishing(t, now)}
    for tid in dead:
        # Another worker may fail it in the same instant. (The grace compares wall clocks:
        # machines sharing a journal must agree within it.)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_state_values(tid, TrialState.FAIL)
    return dead


def journal_slots_held(study: optuna.Study, trials: Sequence[FrozenTrial]) -> int:
    """On a storage without heartbeats (a journal file): how many slots batch trials that
    another worker is finishing hold among ``trials`` (the study's, just read), once those
    whose worker died finishing them are failed. A batch worker asks only for what they
    leave (0 on an SQL storage: there RUNNING trials hold slots through their heartbeats)."""
    storage, _ = study_storage(study)
    if rdb_backend(storage) is not None:
        return 0
    gone = _fail_dead_finishers(storage, trials, time.time())
    return sum(_being_finished(t) and trial_id(t) not in gone for t in trials)


def _died_finishing(trial: FrozenTrial, now: float) -> bool:
    # A trial stored before the stamp existed: its start is the oldest it can have begun.
    since = trial.system_attrs.get(keys.FINISHING_SINCE)
    if since is None and trial.datetime_start is not None:
        since = trial.datetime_start.timestamp()
    return _being_finished(trial) and since is not None and now - since > FINISH_GRACE_SECONDS


def _child_rows(trial_id: int, trial: FrozenTrial, params: bool = True) -> list[Any]:
    """The rows of a trial's values, params (unless ``params`` is False: already stored),
    attributes and intermediate values."""
    children: list[Any] = []
    for objective, value in enumerate(trial.values or ()):
        stored, kind = rdb_models.TrialValueModel.value_to_stored_repr(value)
        children.append(
            rdb_models.TrialValueModel(
                trial_id=trial_id, objective=objective, value=stored, value_type=kind
            )
        )
    for name, value in trial.params.items() if params else ():
        dist = trial.distributions[name]
        children.append(
            rdb_models.TrialParamModel(
                trial_id=trial_id,
                param_name=name,
                param_value=dist.to_internal_repr(value),
                distribution_json=distribution_to_json(dist),
            )
        )
    for model_cls, attrs in (
        (rdb_models.TrialUserAttributeModel, trial.user_attrs),
        (rdb_models.TrialSystemAttributeModel, trial.system_attrs),
    ):
        children += [
            model_cls(trial_id=trial_id, key=key, value_json=json.dumps(value))
            for key, value in attrs.items()
        ]
    for step, value in trial.intermediate_values.items():
        stored_value, value_kind = (
            rdb_models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        )
        children.append(
            rdb_models.TrialIntermediateValueModel(
                trial_id=trial_id,
                step=step,
                intermediate_value=stored_value,
                intermediate_value_type=value_kind,
            )
        )
    return children
