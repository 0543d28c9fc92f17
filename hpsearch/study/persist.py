"""Many finished trials stored in one storage transaction.

Population mode asks and tells a whole batch in an in-memory copy of the study and then stores
the finished trials. ``Study.add_trials`` writes every record of a trial with its own lookup
on an RDB storage: about 15 ms per trial with 15 user attributes on SQLite, 1 s for a batch of
64, as long as training the batch takes. :func:`add_finished_trials` writes the same rows
through Optuna's own ORM models in one session (77 ms for the same 64); on any other storage
(Journal file, in-memory) it uses the public API. What is stored, and what Optuna reads back,
is the same either way (tested).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import distribution_to_json
from optuna.trial import FrozenTrial, TrialState

from hpsearch._compat import (
    rdb_backend,
    rdb_models,
    rdb_session,
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
    """``study.add_trials(trials)``, in one transaction where possible, within a target.

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
    storage, study_id = study_storage(study)
    for trial in trials:
        validate_trial(trial)
    if not trials:
        return []
    backend = rdb_backend(storage)
    if backend is None:
        return _add_through_api(storage, study_id, trials, target)
    with rdb_session(backend) as session:
        # Lock the study row as Optuna's own trial creation does (PostgreSQL, MySQL), and
        # insert before counting: SQLite takes its write lock at the first INSERT, so the
        # numbers and the count below see every trial another process stored before us.
        rdb_models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
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
        earlier = session.query(Trial).filter(Trial.study_id == study_id, Trial.trial_id < first_id)
        before = earlier.count()
        counted = _counting(session, earlier).count() if target is not None else 0
        order = sorted(range(len(rows)), key=lambda i: int(rows[i].trial_id))
        stored = list(trials)
        for rank, i in enumerate(order):
            rows[i].number = before + rank
            stored[i], counts = _within_target(trials[i], counted, target)
            counted += counts
            rows[i].state = stored[i].state
        children: list[Any] = []
        for row, trial in zip(rows, stored, strict=True):
            children += _child_rows(int(row.trial_id), trial)
        session.add_all(children)
        numbers_ids = [(int(row.number), int(row.trial_id)) for row in rows]
    return [
        with_number_and_id(trial, number, tid)
        for (number, tid), trial in zip(numbers_ids, stored, strict=True)
    ]


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
    for trial in trials:
        running = copy.deepcopy(trial)
        running.state, running.values, running.datetime_complete = TrialState.RUNNING, None, None
        ids.append(storage.create_new_trial(study_id, template_trial=running))
    every = storage.get_all_trials(study_id, deepcopy=False)
    numbers = {trial_id(t): t.number for t in every}
    # Another batch's trials RUNNING before ours are being finished like ours: they hold a slot.
    ahead = [
        t.number
        for t in every
        if trial_id(t) not in ids
        and (
            counts_toward_target(t)
            or (t.state == TrialState.RUNNING and keys.POPULATION_SIZE in t.user_attrs)
        )
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
        storage.set_trial_state_values(ids[i], final.state, final.values)
        stored[i] = storage.get_trial(ids[i])
    return [stored[i] for i in range(len(ids))]


def _child_rows(trial_id: int, trial: FrozenTrial) -> list[Any]:
    """The rows of a trial's values, params, attributes and intermediate values."""
    children: list[Any] = []
    for objective, value in enumerate(trial.values or ()):
        stored, kind = rdb_models.TrialValueModel.value_to_stored_repr(value)
        children.append(
            rdb_models.TrialValueModel(
                trial_id=trial_id, objective=objective, value=stored, value_type=kind
            )
        )
    for name, value in trial.params.items():
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
