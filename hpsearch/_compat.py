"""Every use of a private Optuna or optuna-dashboard API, in one place (torch's:
:mod:`hpsearch._torch_compat`, which the training core imports without Optuna).

Each name here is a thin wrapper with a contract test (``tests/test_compat.py``) that checks
it against the installed release, so that a release that moves one breaks one test and one
edit, not five modules. optuna-dashboard is imported only inside the function that needs it:
importing this module does not cost it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.storages._rdb import models as rdb_models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    import sqlalchemy.orm

__all__ = [
    "CONSTRAINTS_KEY",
    "heartbeat_enabled",
    "heartbeat_interval",
    "parent_cache_prefix",
    "rdb_backend",
    "rdb_models",
    "rdb_session",
    "record_rdb_heartbeats",
    "remember_user_attrs",
    "serialize_frozen_trial",
    "set_rdb_trial_user_attrs",
    "study_storage",
    "trial_id",
    "validate_trial",
    "with_number_and_id",
]

# The trial system attribute Optuna reads constraints from (feasible when every value <= 0).
CONSTRAINTS_KEY: str = _CONSTRAINTS_KEY


def study_storage(study: optuna.Study) -> tuple[BaseStorage, int]:
    """The storage object a study was opened on, and the study's id in it."""
    return study._storage, study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (unique across studies, unlike its number)."""
    return trial._trial_id


def with_number_and_id(trial: FrozenTrial, number: int, trial_id: int) -> FrozenTrial:
    """``trial`` (changed in place) as stored under ``number`` and ``trial_id``."""
    trial.number, trial._trial_id = number, trial_id
    return trial


def validate_trial(trial: FrozenTrial) -> None:
    """Optuna's own check of a finished trial before it is stored (raises ``ValueError``)."""
    trial._validate()


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether RUNNING trials of this storage send heartbeats (and stale ones get failed)."""
    return is_heartbeat_enabled(storage)


def heartbeat_interval(storage: BaseStorage) -> float | None:
    """Seconds between the heartbeats of a storage's RUNNING trials, or None without them."""
    if not is_heartbeat_enabled(storage):
        return None
    return float(storage.get_heartbeat_interval())  # type: ignore[attr-defined]


def rdb_backend(storage: BaseStorage) -> RDBStorage | None:
    """The SQL storage behind ``storage`` (unwrapping Optuna's cache), or None if not SQL."""
    if isinstance(storage, _CachedStorage):
        storage = storage._backend
    return storage if isinstance(storage, RDBStorage) else None


def rdb_session(backend: RDBStorage) -> AbstractContextManager[sqlalchemy.orm.Session]:
    """A transaction on an SQL storage, committed on exit, as Optuna's own writes use."""
    return _create_scoped_session(backend.scoped_session, True)


def set_rdb_trial_user_attrs(backend: RDBStorage, trial_id: int, attrs: dict[str, Any]) -> None:
    """Every ``{key: value}`` of ``attrs`` on a running trial of an SQL storage, in one
    transaction: what ``set_trial_user_attr`` does per key, with one commit instead of one per
    key (each commit is a disk sync on SQLite, a round trip on a server), and the trial's
    state checked once and the rows replaced in two statements instead of two per key."""
    model = rdb_models.TrialUserAttributeModel
    with rdb_session(backend) as session:
        trial = rdb_models.TrialModel.find_or_raise_by_id(trial_id, session)
        backend.check_trial_is_updatable(trial_id, trial.state)
        session.query(model).filter(model.trial_id == trial_id, model.key.in_(list(attrs))).delete(
            synchronize_session=False
        )
        session.add_all(
            model(trial_id=trial_id, key=key, value_json=json.dumps(value))
            for key, value in attrs.items()
        )


def record_rdb_heartbeats(session: sqlalchemy.orm.Session, trial_ids: list[int]) -> None:
    """A heartbeat now for each of ``trial_ids`` in an open session of an SQL storage: what
    ``RDBStorage.record_heartbeat`` does per trial (the rows Optuna's stale-trial check reads),
    in one statement per kind instead of a transaction per trial."""
    import sqlalchemy

    model = rdb_models.TrialHeartbeatModel
    now = session.execute(sqlalchemy.func.now()).scalar_one()
    beating = {
        int(tid) for (tid,) in session.query(model.trial_id).filter(model.trial_id.in_(trial_ids))
    }
    if beating:
        session.query(model).filter(model.trial_id.in_(beating)).update(
            {model.heartbeat: now}, synchronize_session=False
        )
    session.add_all(model(trial_id=tid, heartbeat=now) for tid in trial_ids if tid not in beating)


def remember_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """Make ``trial.user_attrs`` show ``attrs`` written behind its back (as
    :func:`set_rdb_trial_user_attrs` does): Optuna's ``Trial`` answers from a cached copy."""
    trial._cached_frozen_trial.user_attrs.update(attrs)


def parent_cache_prefix(sampler: optuna.samplers.BaseSampler) -> str | None:
    """The prefix of the study system attributes in which a genetic sampler (NSGA-II/III)
    caches its parent population as trial ids, or None for other samplers."""
    prefix: Callable[[], str] | None = getattr(sampler, "_get_parent_cache_key_prefix", None)
    return None if prefix is None else prefix()


def serialize_frozen_trial(study_id: int, trial: FrozenTrial, system_attrs: dict) -> Any:
    """A trial as optuna-dashboard's API serves it (JSON-ready dict)."""
    from optuna_dashboard._serializer import serialize_frozen_trial as serialize

    return serialize(study_id, trial, system_attrs)
