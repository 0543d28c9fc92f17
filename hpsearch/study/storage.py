"""Optuna storages by URL: SQLite (tuned), any SQLAlchemy URL, or a journal file, opened once
per command with a one-line error when they cannot be, and never a password in a message."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError, mask_secrets
from hpsearch.study import keys

DEFAULT_STORAGE = "sqlite:///hpsearch.db"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    # SQLAlchemy prefixes "(sqlite3.OperationalError) "; keep the reason, drop the noise.
    if text.startswith("(") and ") " in text:
        text = text.split(") ", 1)[1]
    return text[:200]


# A worker's RUNNING trial is stale once its heartbeat is this many intervals old (a killed
# worker); another worker then stores it as FAIL and retries its parameters, at most
# MAX_RETRY times.
GRACE_INTERVALS = 3
MAX_RETRY = 2
# The environment variable a storage URL can come from, so that a password never has to be
# on a command line (``ps`` shows those to every user); worker processes get it this way.
STORAGE_ENV = "HPSEARCH_STORAGE"


def storage_from_environment() -> str:
    """The storage URL of ``$HPSEARCH_STORAGE``, or :data:`DEFAULT_STORAGE` when it is unset."""
    return os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


HEARTBEAT_SECONDS = 10
JOURNAL_PREFIX = "journal:///"


StorageLike = str | optuna.storages.BaseStorage
"""A storage URL, or a storage already opened (a command opens it once and passes it down)."""


def open_storage(
    url: StorageLike, must_exist: bool = False, heartbeat: int | None = None
) -> optuna.storages.BaseStorage:
    """Open an Optuna storage by URL, with a one-line error when it cannot be reached.

    Args:
        url: ``sqlite:///file.db`` (``sqlite:////abs/file.db``), any other SQLAlchemy URL
            Optuna accepts (``postgresql://user:password@host/db``), or
            ``journal:///file.log`` for Optuna's JournalStorage in a file. A storage object
            is returned as it is (``must_exist`` and ``heartbeat`` apply when it was opened).
        must_exist: Refuse to create a new, empty SQLite or journal file (for read-only
            commands such as ``list`` and ``show``).
        heartbeat: Seconds between the heartbeats of running trials (RDB storages; None for
            none). A trial whose worker stops beating for :data:`GRACE_INTERVALS` intervals is
            stored as FAIL and retried (at most :data:`MAX_RETRY` times) by the next worker.

    Returns:
        The storage.

    Raises:
        HpsearchError: The URL is malformed, its driver is missing or it cannot be reached.
    """
    if isinstance(url, optuna.storages.BaseStorage):
        return url
    shown = describe_storage(url) if isinstance(url, str) else repr(url)
    if not isinstance(url, str) or "://" not in url:
        raise HpsearchError(
            f"storage {shown!r} is not a URL; use e.g. sqlite:///hpsearch.db, "
            "postgresql://user:password@host/db or journal:///hpsearch.log"
        )
    for prefix, kind in (("sqlite:///", "database"), (JOURNAL_PREFIX, "journal")):
        file = Path(url[len(prefix) :])
        if must_exist and url.startswith(prefix) and not file.is_file():
            raise HpsearchError(
                f"storage {shown!r}: no {kind} file at {str(file)!r}; run "
                "`hpsearch run STUDY_FILE` first or pass --storage"
            )
    if url.startswith("journal:"):
        if not url.startswith(JOURNAL_PREFIX) or url == JOURNAL_PREFIX:
            raise HpsearchError(f"storage {shown!r}: use journal:///path/to/file.log")
        path = url[len(JOURNAL_PREFIX) :]
        if not Path(path).parent.is_dir():
            raise HpsearchError(f"storage {shown!r}: no folder {str(Path(path).parent)!r}")
        try:
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.journal.JournalStorage(backend)
        except Exception as e:
            raise HpsearchError(f"cannot open storage {shown!r}: {_one_line(e)}") from None
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            storage = _open_rdb(url, heartbeat)
            break
        except Exception as e:  # SQLAlchemy/driver errors of every kind: report one line
            # Processes opening a new database at once race to create its tables; the loser
            # sees a unique-constraint error or "table … already exists" (both checked for
            # the table before either created it), and finds the tables there when it tries
            # again.
            racing = isinstance(e, sqlalchemy.exc.IntegrityError) or any(
                text in str(e) for text in _RACE_MESSAGES
            )
            if racing and attempt < _OPEN_ATTEMPTS - 1:
                time.sleep(0.2 * (attempt + 1))
                continue
            message = mask_secrets(_one_line(e).replace(url, shown))
            raise HpsearchError(f"cannot open storage {shown!r}: {message}") from None
    if url.startswith("sqlite:"):
        _tune_sqlite(storage.engine)
    return storage


_OPEN_ATTEMPTS = 5
_RACE_MESSAGES = ("UNIQUE constraint failed", "duplicate key value", "already exists")


def _open_rdb(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    beats: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the retry callback is "experimental"
        if heartbeat is not None:
            beats = {
                "heartbeat_interval": heartbeat,
                "grace_period": GRACE_INTERVALS * heartbeat,
                "heartbeat_stale_trial_callback": (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
                ),
            }
        return optuna.storages.RDBStorage(url, **beats)


def describe_storage(storage: StorageLike) -> str:
    """The storage as messages show it: its URL without the password, or its kind."""
    if isinstance(storage, str):
        return _without_password(storage)
    return f"the {type(storage).__name__}"


def _without_password(url: str) -> str:
    # Error messages end up in terminals and CI logs: never with the database password.
    try:
        return mask_secrets(sqlalchemy.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:  # not a URL SQLAlchemy can parse: still never its password
        return mask_secrets(url)


def _tune_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """WAL journal and synchronous=NORMAL on every connection of an SQLite storage.

    Each trial writes a dozen user attributes, one transaction each; with the default rollback
    journal every commit syncs to disk (about 45 ms per trial here, 19 ms with WAL). WAL also
    lets optuna-dashboard read while a study writes. A crash of the process loses nothing
    committed; only a power loss can drop the last transactions.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # connections opened before the listener reconnect with it


def best_value(study: optuna.Study) -> float | None:
    """The best value of a single-objective study among feasible trials, or None if none."""
    try:
        return study.best_value
    except ValueError:  # no complete trial, or none that met its constraint
        return None


def counts_toward_target(trial: FrozenTrial) -> bool:
    """Whether a trial counts toward the study's target number of trials.

    COMPLETE and PRUNED trials count, and so do FAIL trials that diverged (their
    hyperparameters are the cause: retrying them would fail again). A FAIL trial without a
    reason (interrupted, or a crash) and a RUNNING one do not count: a rerun replaces them.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and keys.FAIL_REASON in trial.user_attrs
