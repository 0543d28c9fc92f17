"""Optuna studies from study files: storage, sampler, pruner, and the run loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
import sqlalchemy
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from hpsearch._config import StudyConfig, grid_values, load_study_file
from hpsearch._errors import HpsearchError
from hpsearch._objective import FAIL_REASON, make_objective, run_population
from hpsearch._setups import get_setup

DEFAULT_STORAGE = "sqlite:///hpsearch.db"
_ATTR = "hpsearch"  # study user attribute holding what hpsearch knows about the study


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
HEARTBEAT_SECONDS = 10
JOURNAL_PREFIX = "journal:///"


def open_storage(
    url: str, must_exist: bool = False, heartbeat: int | None = None
) -> optuna.storages.BaseStorage:
    """Open an Optuna storage by URL, with a one-line error when it cannot be reached.

    Args:
        url: ``sqlite:///file.db`` (``sqlite:////abs/file.db``), any other SQLAlchemy URL
            Optuna accepts (``postgresql://user:password@host/db``), or
            ``journal:///file.log`` for Optuna's JournalStorage in a file.
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
    if not isinstance(url, str) or "://" not in url:
        raise HpsearchError(
            f"storage {url!r} is not a URL; use e.g. sqlite:///hpsearch.db, "
            "postgresql://user:password@host/db or journal:///hpsearch.log"
        )
    for prefix, kind in (("sqlite:///", "database"), (JOURNAL_PREFIX, "journal")):
        file = Path(url[len(prefix) :])
        if must_exist and url.startswith(prefix) and not file.is_file():
            raise HpsearchError(
                f"storage {url!r}: no {kind} file at {str(file)!r}; run "
                "`hpsearch run STUDY_FILE` first or pass --storage"
            )
    if url.startswith("journal:"):
        if not url.startswith(JOURNAL_PREFIX) or url == JOURNAL_PREFIX:
            raise HpsearchError(f"storage {url!r}: use journal:///path/to/file.log")
        path = url[len(JOURNAL_PREFIX) :]
        if not Path(path).parent.is_dir():
            raise HpsearchError(f"storage {url!r}: no folder {str(Path(path).parent)!r}")
        try:
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.journal.JournalStorage(backend)
        except Exception as e:
            raise HpsearchError(f"cannot open storage {url!r}: {_one_line(e)}") from None
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
            shown = _without_password(url)
            message = _one_line(e).replace(url, shown)
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


def _without_password(url: str) -> str:
    # Error messages end up in terminals and CI logs: never with the database password.
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


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


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    """The study file's sampler with its options, seeded with ``seed``."""
    opts = dict(config.sampler_options)
    name = config.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **opts)
        if name == "nsgaii":
            return optuna.samplers.NSGAIISampler(seed=seed, **opts)
        if name == "nsgaiii":
            return optuna.samplers.NSGAIIISampler(seed=seed, **opts)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **opts)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, **opts)
        if name == "grid":  # visits the grid in a seeded order; a rerun skips visited points
            return _GridSampler(grid_values(config.params), seed=seed)
    raise HpsearchError(f"unknown sampler {name!r}")


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered: hpsearch
    stops at the study's target itself (never more than the grid, see the study file check),
    and that call raises outside ``study.optimize``, as in population mode's ask/tell."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """The study file's pruner; Hyperband and successive halving count epochs as resource."""
    opts = dict(config.pruner_options)
    name = config.pruner
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(**opts)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(**opts)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(max_resource=config.epochs, **opts)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**opts)
    raise HpsearchError(f"unknown pruner {name!r}")


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
    return trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs


def _study_attrs(config: StudyConfig) -> dict[str, Any]:
    setup = get_setup(config.setup)()
    data = config.load_data()
    return {
        "identity": config.identity(),
        "loss_names": list(setup.loss_names),
        "metric_name": setup.metric_label(setup.prepare(data)),
        "study_file": config.path,
        "description": config.description,
    }


def metric_names(config: StudyConfig, attrs: dict[str, Any]) -> list[str]:
    """Names of the study's objective values, as shown by optuna-dashboard."""
    l1, l2 = (f"val_{n}" for n in attrs["loss_names"])
    if config.mode == "pareto":
        return [l1, l2]
    if config.objective == "weighted":
        w1, w2 = config.objective_weights or (1.0, 0.0)
        return [f"{w1:g}*{l1} + {w2:g}*{l2}"]
    return [{"loss1": l1, "loss2": l2, "metric": f"val_{attrs['metric_name']}"}[config.objective]]


def _describe_difference(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            return _describe_difference(a, b, f"{prefix}{key}.")
        return f"{prefix}{key} (stored {json.dumps(a)}, file {json.dumps(b)})"
    return ""


def create_or_load_study(config: StudyConfig, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study of ``config`` in ``storage``, or load it to continue.

    Raises:
        HpsearchError: A study of that name exists but was made from a different study
            definition (dataset, setup, mode, objective, budget or parameters differ), or by
            something other than hpsearch.
    """
    # Workers started together may all find no study: one creates it, the others load it, and
    # a loader may briefly see it before its creator has stored the definition.
    for attempt in range(_CREATE_ATTEMPTS):
        if config.name not in optuna.get_all_study_names(storage):
            attrs = _study_attrs(config)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study = optuna.create_study(
                        study_name=config.name, storage=storage, directions=config.directions
                    )
                    study.set_user_attr(_ATTR, attrs)
                    study.set_metric_names(metric_names(config, attrs))
            except optuna.exceptions.DuplicatedStudyError:
                continue  # another worker was first
            return study
        study = optuna.load_study(study_name=config.name, storage=storage)
        stored = study.user_attrs.get(_ATTR)
        if stored is None:
            if study.trials or attempt == _CREATE_ATTEMPTS - 1:
                raise HpsearchError(
                    f"study {config.name!r} already exists in the storage and was not made by "
                    "hpsearch; choose another [study] name"
                )
            time.sleep(0.2)
            continue
        diff = _describe_difference(stored["identity"], config.identity())
        if diff:
            raise HpsearchError(
                f"study {config.name!r} in the storage was made from a different definition: "
                f"{diff}; give the changed study a new [study] name"
            )
        return study
    raise HpsearchError(f"study {config.name!r}: could not create or load it")


_CREATE_ATTEMPTS = 25


@dataclass(frozen=True)
class RunSummary:
    """What a call of :func:`run_study` did.

    Attributes:
        study_name: The study.
        target: The target number of trials.
        counted_before: Trials that counted toward the target before the call.
        counted_after: Trials that count after it.
        failed: Diverged trials run by this call.
    """

    study_name: str
    target: int
    counted_before: int
    counted_after: int
    failed: int


class _Progress:
    """A tqdm bar over the study's target count, with the best value or the Pareto size."""

    def __init__(
        self,
        study: optuna.Study,
        target: int,
        done: int,
        enabled: bool,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.refresh = refresh
        self.refreshed = time.monotonic()
        self.bar = tqdm(
            total=target,
            initial=done,
            desc=study.study_name,
            unit="trial",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
        )
        self.failed = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna's callback signature: one trial finished."""
        self.finished(study, [trial])

    def finished(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        """Count ``trials`` (one, or a population's batch) and refresh the best value once."""
        counted = 0
        for trial in trials:
            if trial.state == TrialState.FAIL and FAIL_REASON in trial.user_attrs:
                self.failed += 1
                self.bar.write(f"trial {trial.number} failed: {trial.user_attrs[FAIL_REASON]}")
            counted += counts_toward_target(trial)
        if self.refresh is not None and time.monotonic() - self.refreshed > REFRESH_SECONDS:
            self.refresh()
            self.refreshed = time.monotonic()
        if not counted:
            return
        self.bar.update(counted)
        complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if not complete:
            return
        if len(study.directions) > 1:
            self.bar.set_postfix_str(f"pareto={len(study.best_trials)}")
        else:
            best = best_value(study)
            self.bar.set_postfix_str(
                "no feasible trial yet" if best is None else f"best={best:.5g}"
            )


SURPLUS = "surplus"
# How often a running study's dashboard note and figures are refreshed.
REFRESH_SECONDS = 30.0
POLL_SECONDS = 0.5


class _Surplus(Exception):
    """A trial started past the target by a race between workers."""


class _DeferredInterrupt:
    """Ctrl-C raises at once inside the objective (Optuna then stores the trial as FAIL) and
    is held until the next safe point elsewhere: a SIGINT between Optuna creating a trial and
    calling the objective, or while it stores the result, would leave the trial RUNNING."""

    def __init__(self) -> None:
        self.in_objective = False
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.in_objective:
            raise KeyboardInterrupt
        self.pending = True

    def check(self) -> None:
        """Raise the held Ctrl-C, at a safe point."""
        if self.pending:
            raise KeyboardInterrupt


def _run_sequential(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    target: int,
    timeout: float | None,
    progress_bar: _Progress,
) -> None:
    # Running trials hold a slot only where a heartbeat tells live ones from a dead worker's;
    # elsewhere (a journal file, heartbeat off) a dead worker's RUNNING trial would hold its
    # slot for ever, so running trials are not counted and concurrent workers may overshoot.
    reserve = is_heartbeat_enabled(study._storage)

    def holds_slot(t: FrozenTrial) -> bool:
        return counts_toward_target(t) or (reserve and t.state == TrialState.RUNNING)

    def within_target(trial: optuna.Trial) -> Any:
        interrupt.in_objective = True
        try:
            interrupt.check()
            ahead = sum(
                t.number < trial.number and holds_slot(t) for t in study.get_trials(deepcopy=False)
            )
            if ahead >= target:
                trial.set_user_attr(SURPLUS, True)
                raise _Surplus
            return objective(trial)
        finally:
            interrupt.in_objective = False

    started = time.monotonic()
    with _DeferredInterrupt() as interrupt:
        while timeout is None or time.monotonic() - started < timeout:
            interrupt.check()
            trials = study.get_trials(deepcopy=False)
            if sum(counts_toward_target(t) for t in trials) >= target:
                return
            if sum(holds_slot(t) for t in trials) >= target:
                # Other workers hold the last slots. Wait; if one of them died, its trial goes
                # stale, is stored as FAIL and retried here.
                optuna.storages.fail_stale_trials(study)
                time.sleep(POLL_SECONDS)
                continue
            study.optimize(within_target, n_trials=1, callbacks=[progress_bar], catch=(_Surplus,))
        interrupt.check()


def run_study(
    config: StudyConfig,
    storage: str = DEFAULT_STORAGE,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    progress: bool = True,
    batch: int | None = None,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    sampler_seed_offset: int = 0,
    publish: Callable[[str, str, bool], None] | None = None,
) -> RunSummary:
    """Run (or continue) the study of ``config`` until it has its target number of trials.

    Args:
        config: The validated study file.
        storage: Optuna storage URL (default: ``sqlite:///hpsearch.db``).
        n_trials: Target number of trials of the study (default: the file's ``n_trials``).
            Trials already stored count: a rerun continues, it neither restarts nor overshoots.
        timeout: Stop starting new trials after this many seconds (default: the file's).
        seed: Overrides the file's seed (sampler and training initialisation).
        progress: Show a progress bar on stderr.
        batch: Population size K (default: the file's ``batch``, 1 = one trial at a time):
            ask Optuna for K trials at once and train them as one batched model
            (:func:`hpsearch._population.train_population`). No pruning in this mode.
        heartbeat: Heartbeat interval of running trials in seconds, or None (see
            :func:`open_storage`); a killed worker's trial is then retried by the others.
        sampler_seed_offset: Added to the sampler's seed, so that workers joining one study
            at the same time do not draw the same parameters.
        publish: Called with ``(storage, study name, final)`` when the run starts, every
            :data:`REFRESH_SECONDS` while it goes on, and with ``final=True`` when it ends (the
            CLI passes :func:`hpsearch.publish_study`: the study's note and figures in
            optuna-dashboard).
            An error there is reported on stderr in one line; the run goes on.

    Several processes may run the same study at once (workers, on one machine or many): each
    starts a trial only while the trials that count plus those running are below the target,
    waits while the running ones may still reach it, and stops when it is reached. A trial
    that two workers started in the same instant for the last slot is stored as FAIL with the
    user attr ``surplus`` and does not count; so the study ends with exactly ``n_trials``
    trials that count (COMPLETE, PRUNED, or FAIL for a diverged run).

    Returns:
        A :class:`RunSummary`.

    Raises:
        HpsearchError: The storage cannot be reached or holds an incompatible study.
    """
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    target = config.n_trials if n_trials is None else n_trials
    if target < 1:
        raise HpsearchError(f"n_trials must be >= 1, got {target}")
    timeout = config.timeout if timeout is None else timeout
    batch = config.batch if batch is None else batch
    if batch < 1:
        raise HpsearchError(f"batch must be >= 1, got {batch}")
    data = config.load_data()
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    # The bar replaces Optuna's per-trial log lines; failures are reported by the bar in one line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    progress_bar = None

    def refresh(final: bool = False) -> None:
        _publish_safely(publish, storage, config.name, final)

    try:
        study = create_or_load_study(config, open_storage(storage, heartbeat=heartbeat))
        refresh()
        trials = study.get_trials(deepcopy=False)
        done = sum(counts_toward_target(t) for t in trials)
        if done >= target:
            return RunSummary(config.name, target, done, done, 0)
        # Offset the seed by the trials already stored, so that a continued run does not
        # replay the first run's random draws, and a run from scratch is reproducible.
        study.sampler = make_sampler(config, config.seed + len(trials) + sampler_seed_offset)
        study.pruner = make_pruner(config)
        progress_bar = _Progress(study, target, done, progress, refresh)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if batch > 1:
                started = time.monotonic()
                remaining = target - done
                while remaining > 0 and (timeout is None or time.monotonic() - started < timeout):
                    stored = run_population(study, config, data, min(batch, remaining))
                    progress_bar.finished(study, stored)
                    remaining -= sum(counts_toward_target(t) for t in stored)
            else:
                _run_sequential(study, make_objective(config, data), target, timeout, progress_bar)
    finally:
        if progress_bar is not None:
            progress_bar.bar.close()
            refresh(final=True)
        optuna_logger.setLevel(level)
    after = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return RunSummary(config.name, target, done, after, progress_bar.failed)


def run_workers(
    study_file: str | Path,
    workers: int,
    storage: str = DEFAULT_STORAGE,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    batch: int | None = None,
    heartbeat: int | None = HEARTBEAT_SECONDS,
    progress: bool = True,
    publish: Callable[[str, str, bool], None] | None = None,
) -> RunSummary:
    """Run the study of ``study_file`` in ``workers`` processes (``hpsearch worker``) sharing
    ``storage``, until it has its target number of trials; see :func:`run_study`.

    The study is created here first, so the workers only join it; a progress bar follows the
    stored trials. Ctrl-C interrupts every worker (each stores its running trial as FAIL).

    Raises:
        HpsearchError: The storage cannot be reached, holds an incompatible study, or a worker
            exited with an error.
    """
    config = load_study_file(study_file)
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    target = config.n_trials if n_trials is None else n_trials
    study = create_or_load_study(config, open_storage(storage))
    done = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    failed_before = _diverged(study)
    command = [sys.executable, "-m", "hpsearch._cli", "worker", str(study_file)]
    # The workers leave the dashboard's note and figures to this process: one writer, and one
    # PNG artifact for the whole run.
    command += ["--storage", storage, "--n-trials", str(target), "--no-progress", "--no-dashboard"]
    for flag, value in (("--timeout", timeout), ("--batch", batch), ("--seed", seed)):
        if value is not None:
            command += [flag, str(value)]
    if heartbeat is not None:
        command += ["--heartbeat", str(heartbeat)]
    env = dict(os.environ)
    # N workers × torch's default of one thread per core oversubscribes the cores, and idle
    # OpenMP threads spin: split the cores between the workers instead (2 workers on 2 cores
    # took 40 s for 12 demo trials with 2 threads each).
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

    def refresh(artifact: bool = False) -> None:
        _publish_safely(publish, storage, config.name, artifact)

    refresh()
    procs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env) for _ in range(workers)]
    bar = _Progress(study, target, done, progress).bar
    refreshed = time.monotonic()
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(POLL_SECONDS)
            counted = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
            bar.update(counted - bar.n)
            if time.monotonic() - refreshed > REFRESH_SECONDS:
                refresh()
                refreshed = time.monotonic()
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    finally:
        bar.close()
    bad = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    if bad:
        shown = ", ".join(f"worker {i} exited with {code}" for i, code in bad)
        raise HpsearchError(f"{shown} (its error is printed above)")
    refresh(artifact=True)
    after = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return RunSummary(config.name, target, done, after, _diverged(study) - failed_before)


def _publish_safely(
    publish: Callable[[str, str, bool], None] | None, storage: str, name: str, final: bool
) -> None:
    """Publish the dashboard's note and figures; a failure is a warning, never a failed run."""
    if publish is None:
        return
    try:
        publish(storage, name, final)
    except Exception as e:
        print(f"hpsearch: warning: dashboard note/figures not updated: {e}", file=sys.stderr)


def _diverged(study: optuna.Study) -> int:
    return sum(
        t.state == TrialState.FAIL and FAIL_REASON in t.user_attrs
        for t in study.get_trials(deepcopy=False)
    )
