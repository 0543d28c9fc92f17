"""Optuna storages by URL: SQLite (tuned), any SQLAlchemy URL, or a journal file, opened once
per command with a one-line error when they cannot be, and never a password in a message."""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import optuna
import optuna.storages.journal
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError, error_chain, mask_secrets, storage_fault
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
    url: StorageLike,
    must_exist: bool = False,
    heartbeat: int | None = None,
    read_only: bool = False,
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
        read_only: The command only reads (``list``, ``show``, ``compare``, ``dashboard``): an
            SQLite file on a read-only disk, or that this user cannot write, is opened as
            immutable instead of failing.

    A database server's transient faults (a restart, a dropped connection, a lock timeout)
    are retried with backoff for :func:`retry_seconds` before an operation gives up.

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
        if not url.startswith(prefix):
            continue
        file = _file_of(url, prefix)
        # Refused, not created: a typo in the path would otherwise start a study elsewhere
        # (and SQLite would only say "unable to open database file").
        if not file.parent.is_dir():
            raise HpsearchError(f"storage {shown!r}: no folder {str(file.parent)!r}")
        if must_exist and not file.is_file():
            raise HpsearchError(
                f"storage {shown!r}: no {kind} file at {str(file)!r}; run "
                "`hpsearch run STUDY_FILE` first or pass --storage"
            )
    if url.startswith("journal:"):
        return _open_journal(url, shown, read_only)
    sqlite_file = _file_of(url, "sqlite:///") if url.startswith("sqlite:///") else None
    rdb_url = url
    if read_only and sqlite_file is not None and not writable(sqlite_file):
        # A WAL database needs its -shm file even to be read; on a read-only disk SQLite can
        # open it only as immutable (nothing else can change it there either).
        rdb_url = f"sqlite:///file:{sqlite_file.resolve()}?immutable=1&uri=true"
    elif sqlite_file is not None and sqlite_file.exists() and not writable(sqlite_file):
        raise HpsearchError(
            f"cannot open storage {shown!r}: read-only (the file or its folder cannot be "
            "written); list, show, compare and dashboard can still read it"
        )
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            storage = with_retries(_open_rdb, on_retry=_waiting(shown))(rdb_url, heartbeat)
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
            fault = storage_fault(e)
            cause = f"{fault} ({message})" if fault else message
            raise HpsearchError(f"cannot open storage {shown!r}: {cause}") from None
    if rdb_url.startswith("sqlite:") and rdb_url == url:
        _tune_sqlite(storage.engine)
    _retry_transient_faults(storage)
    return storage


def _open_journal(url: str, shown: str, read_only: bool) -> optuna.storages.BaseStorage:
    """Optuna's JournalStorage on the file of ``url``, its cut last record repaired first
    (unless the command only reads)."""
    if not url.startswith(JOURNAL_PREFIX) or url == JOURNAL_PREFIX:
        raise HpsearchError(f"storage {shown!r}: use journal:///path/to/file.log")
    path = url[len(JOURNAL_PREFIX) :]
    if not read_only:
        _cut_partial_record(path, shown)
    try:
        backend = optuna.storages.journal.JournalFileBackend(path)
        return optuna.storages.journal.JournalStorage(backend)
    except Exception as e:
        raise HpsearchError(f"cannot open storage {shown!r}: {_one_line(e)}") from None


def _cut_partial_record(path: str, shown: str) -> None:
    """Cut a journal file's incomplete last record: what an append left when the disk filled
    mid-write. Optuna cannot read the file past it, and the next append would glue a record
    to it; the record never completed, so its process did not count on it. Done under the
    journal's own lock, so no live append is cut; only a file that reads as a journal (JSON
    records, one per line) is touched."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0 or not writable(file):
        return
    lock = optuna.storages.journal.JournalFileSymlinkLock(path)
    lock.acquire()
    try:
        with file.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            keep = _after_last_newline(f, size)
            f.seek(0)
            if keep == size or f.read(1) != b"{":  # whole, or not a journal: left alone
                return
            f.truncate(keep)
    finally:
        lock.release()
    print(
        f"hpsearch: storage {shown!r}: cut an incomplete last record ({size - keep} bytes, a "
        "write cut short, e.g. by a full disk); the trials before it are kept",
        file=sys.stderr,
    )


def _after_last_newline(f: Any, size: int, chunk: int = 1 << 20) -> int:
    """The offset just after the last newline of the open file ``f`` (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        f.seek(start)
        block = f.read(end - start)
        if b"\n" in block:
            return start + block.rfind(b"\n") + 1
        end = start
    return 0


def _file_of(url: str, prefix: str) -> Path:
    """The file of an SQLite or journal URL, without its query string (``?timeout=30``)."""
    return Path(url[len(prefix) :].partition("?")[0])


def _waiting(shown: str) -> Callable[[BaseException, float], None]:
    def notice(error: BaseException, budget: float) -> None:
        if budget >= 5:  # a wait a person would notice: say what it waits for
            print(
                f"hpsearch: storage {shown!r}: {storage_fault(error) or 'busy'}; "
                f"retrying for up to {budget:g} s ({RETRY_ENV})",
                file=sys.stderr,
            )

    return notice


def writable_folder(folder: Path) -> bool:
    """Whether files can be made and written in ``folder``."""
    # os.access reports a read-only file system (EROFS) even to root.
    return os.access(folder, os.W_OK | os.X_OK)


def writable(file: Path) -> bool:
    """Whether ``file`` can be written where it is: its folder, and the file if it exists."""
    folder = file.resolve().parent
    return writable_folder(folder) and (not file.exists() or os.access(file, os.W_OK))


T = TypeVar("T")
RETRY_ENV = "HPSEARCH_STORAGE_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 60.0


def retry_seconds() -> float:
    """How long a transient storage fault is retried: ``$HPSEARCH_STORAGE_RETRY_SECONDS``,
    default :data:`DEFAULT_RETRY_SECONDS` (0 = no retry)."""
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, DEFAULT_RETRY_SECONDS)))
    except ValueError:
        raise HpsearchError(f"{RETRY_ENV} must be a number of seconds") from None


# Faults that pass: the server restarts, a connection drops, a lock is held a while.
_TRANSIENT = (
    "could not connect",
    "connection refused",
    "temporary failure in name resolution",  # a container's name, gone while it restarts
    "server closed the connection",
    "terminating connection",
    "connection to server",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "ssl connection has been closed",
    "connection already closed",
    "consuming input failed",
    "could not receive data",
    "lock timeout",
    "deadlock detected",
    "database is locked",
)


# Refusals that no retry gets past, though their messages also say "connection to server …
# failed": a wrong password, a database or user that does not exist. (A host name that does
# not resolve stays transient: a container's name is gone while it restarts.)
_PERMANENT = (
    "password authentication failed",
    "no pg_hba.conf entry",
    'fatal:  database "',  # … "nope" does not exist
    'fatal:  role "',  # … "nobody" does not exist
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a storage fault that retrying may get past."""
    chain = error_chain(error)
    if any(
        isinstance(e, sqlalchemy.exc.DBAPIError) and text in str(e).lower()
        for e in chain
        for text in _PERMANENT
    ):
        return False
    return any(
        isinstance(e, sqlalchemy.exc.DBAPIError | optuna.exceptions.StorageInternalError)
        and any(text in str(e).lower() for text in _TRANSIENT)
        for e in chain
    )


def with_retries(
    operation: Callable[..., T],
    budget: float | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> Callable[..., T]:
    """``operation``, retried with exponential backoff while it fails with a transient fault,
    for at most ``budget`` seconds (default :func:`retry_seconds`); then its error is raised.
    ``on_retry(error, budget)`` is called before the first retry."""

    @functools.wraps(operation)
    def retried(*args: Any, **kwargs: Any) -> T:
        limit = retry_seconds() if budget is None else budget
        started, delay = time.monotonic(), 0.2
        while True:
            try:
                return operation(*args, **kwargs)
            except Exception as e:
                if not is_transient(e) or time.monotonic() - started + delay > limit:
                    raise
                if on_retry is not None and delay == 0.2:
                    on_retry(e, limit)
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    return retried


def _retry_transient_faults(storage: optuna.storages.BaseStorage) -> None:
    """Make every storage operation of an SQL storage retry transient faults.

    The methods are wrapped on the instance, so Optuna's cache, its heartbeat thread and our
    own calls all go through the retries; a write is retried only when it failed as a whole
    (each is one transaction). Pooled connections are checked before use, so the first
    operation after a server restart gets a fresh one instead of a dead one.
    """
    if not isinstance(storage, optuna.storages.RDBStorage):
        return
    finish, read = storage.set_trial_state_values, storage.get_trial
    for name in dir(optuna.storages.BaseStorage):
        if name.startswith("__") or not callable(getattr(storage, name, None)):
            continue
        setattr(storage, name, with_retries(getattr(storage, name)))
    storage.set_trial_state_values = _finished_once(finish, read)  # type: ignore[method-assign]
    for name in ("_get_trials", "record_heartbeat", "_get_stale_trial_ids"):
        if callable(getattr(storage, name, None)):
            setattr(storage, name, with_retries(getattr(storage, name)))


def _finished_once(
    finish: Callable[..., bool], read: Callable[[int], FrozenTrial]
) -> Callable[..., bool]:
    """``set_trial_state_values``, retried: a retry first reads the trial, and if it already
    holds what the failed attempt wrote (its commit landed; only the answer was lost with the
    connection), that attempt succeeded. Without this the retry would fail as "trial already
    finished" and take a worker down after an outage it survived."""

    def finished(trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        tried = False

        def attempt() -> bool:
            nonlocal tried
            if tried and _holds(read(trial_id), state, values):
                return True
            tried = True
            return finish(trial_id, state, values)

        return with_retries(attempt)()

    return finished


def _holds(trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> bool:
    # Only a trial finished with these very values: a RUNNING claim or a FAIL may be another
    # process's (a worker claiming a queued retry, a stale trial failed by another worker),
    # and that process's write must stay its own ("already finished" for this one).
    if state not in (TrialState.COMPLETE, TrialState.PRUNED) or values is None:
        return False
    return trial.state == state and list(trial.values or []) == list(values)


_OPEN_ATTEMPTS = 5
_RACE_MESSAGES = ("UNIQUE constraint failed", "duplicate key value", "already exists")


def _open_rdb(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    beats: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        beats["engine_kwargs"] = {"pool_pre_ping": True}  # a restarted server: reconnect
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
    if isinstance(storage, optuna.storages.RDBStorage):  # opened: its URL, as it was given
        url = storage.engine.url
        database = url.database or ""
        if url.drivername == "sqlite" and database.startswith("file:"):
            return f"sqlite:///{database[len('file:') :]}"  # opened read-only (immutable)
        return _without_password(url.render_as_string(hide_password=False))
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


def complete_trials(study: optuna.Study) -> int:
    """The number of COMPLETE trials of ``study``: what its figures draw."""
    return sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def is_published(study: optuna.Study) -> bool:
    """Whether the study's last PNG artifact drew every complete trial it has now."""
    return study.user_attrs.get(keys.PUBLISHED_TRIALS) == complete_trials(study)
