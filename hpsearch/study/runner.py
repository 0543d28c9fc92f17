"""Optuna studies from study files: storage, sampler, pruner, and the run loop."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import optuna.storages.journal
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from hpsearch._compat import heartbeat_enabled, study_storage
from hpsearch.core.data import Dataset
from hpsearch.core.device import resolve_device
from hpsearch.core.setups import get_setup
from hpsearch.core.threads import (
    LoadWatch,
    apply_threads,
    follows_load,
    plan_threads,
    thread_environment,
)
from hpsearch.errors import HpsearchError
from hpsearch.signals import DeferredInterrupt, Terminated
from hpsearch.study import keys
from hpsearch.study.batch import run_population
from hpsearch.study.config import (
    StudyConfig,
    check_batch_method,
    grid_values,
    load_study_file,
)
from hpsearch.study.objective import make_objective
from hpsearch.study.persist import adopt_silent_trials, journal_slots_held
from hpsearch.study.samplers import BATCH_PRUNER, make_pruner, make_sampler
from hpsearch.study.storage import (
    DEFAULT_STORAGE,
    HEARTBEAT_SECONDS,
    STORAGE_ENV,
    StorageLike,
    best_value,
    counts_toward_target,
    is_published,
    open_storage,
)


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
    names = {"loss1": l1, "loss2": l2, "metric": f"val_{attrs['metric_name']}"}
    return [names[str(config.objective)]]


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
                    study.set_user_attr(keys.STUDY, attrs)
                    study.set_metric_names(metric_names(config, attrs))
            except optuna.exceptions.DuplicatedStudyError:
                continue  # another worker was first
            return study
        study = optuna.load_study(study_name=config.name, storage=storage)
        stored = study.user_attrs.get(keys.STUDY)
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
        self.postfixed = -math.inf

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna's callback signature: one trial finished."""
        self.finished(study, [trial])

    def finished(self, study: optuna.Study, trials: list[FrozenTrial]) -> None:
        """Count ``trials`` (one, or a population's batch) and refresh the best value once."""
        counted = 0
        for trial in trials:
            if trial.state == TrialState.FAIL and keys.FAIL_REASON in trial.user_attrs:
                self.failed += 1
                self.bar.write(f"trial {trial.number} failed: {trial.user_attrs[keys.FAIL_REASON]}")
            counted += counts_toward_target(trial)
        if self.refresh is not None and time.monotonic() - self.refreshed > REFRESH_SECONDS:
            self.refresh()
            self.refreshed = time.monotonic()
        if not counted:
            return
        self.bar.update(counted)
        # The best value or the Pareto front is read from the whole study (best_trials is
        # quadratic in its size): nothing to show it on when the bar is off, and at most once
        # a second otherwise (2.7 s of a 28 s population run with pruning, per-epoch stores).
        now = time.monotonic()
        if self.bar.disable or (now - self.postfixed < 1.0 and self.bar.n < self.bar.total):
            return
        self.postfixed = now
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


Publisher = Callable[[optuna.Study, bool], None]
"""Writes a running study's dashboard note and figures: ``publish(study, final)``; ``final``
also uploads the PNG artifact (:func:`hpsearch.publish_study` does all of it)."""
# How often a running study's dashboard note and figures are refreshed.
REFRESH_SECONDS = 30.0
POLL_SECONDS = 0.5


class _Surplus(Exception):
    """A trial started past the target by a race between workers."""


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
    reserve = heartbeat_enabled(study_storage(study)[0])

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
                trial.set_user_attr(keys.SURPLUS, True)
                raise _Surplus
            return objective(trial)
        finally:
            interrupt.in_objective = False

    started = time.monotonic()
    with DeferredInterrupt() as interrupt:
        while timeout is None or time.monotonic() - started < timeout:
            interrupt.check()
            trials = study.get_trials(deepcopy=False)
            if sum(counts_toward_target(t) for t in trials) >= target:
                return
            if sum(holds_slot(t) for t in trials) >= target:
                # Other workers hold the last slots. Wait; if one of them died, its trial goes
                # stale, is stored as FAIL and retried here (one that never beat, too).
                adopt_silent_trials(study)
                optuna.storages.fail_stale_trials(study)
                time.sleep(POLL_SECONDS)
                continue
            study.optimize(within_target, n_trials=1, callbacks=[progress_bar], catch=(_Surplus,))
        interrupt.check()


@contextlib.contextmanager
def _heartbeat_faults_left_to_the_trial() -> Iterator[None]:
    """Keep a storage fault in Optuna's heartbeat thread from printing a traceback.

    Optuna beats for a running trial from a thread of its own; a full disk or a lost server
    can fail that write first, and Python prints the thread's traceback. The main thread meets
    the same fault at its next write and names it in one line; until then the trial only
    misses beats (another worker may fail it as stale and retry it).
    """
    before = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else ""
        if not name.endswith("(_record_heartbeat)"):
            before(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = before


def check_pruner(config: StudyConfig, batch: int) -> None:
    """Refuse a pruner the run's mode cannot apply: population mode (``batch`` > 1) prunes
    across the batch with successive halving only; one trial at a time, Optuna's pruners
    need one objective."""
    if batch > 1 and config.pruner not in ("none", BATCH_PRUNER):
        raise HpsearchError(
            f"pruner {config.pruner!r} prunes one trial at a time; population mode (batch "
            f"{batch}) prunes across the batch: allowed with batch > 1: none, {BATCH_PRUNER}"
        )
    if batch == 1 and config.pruner_options.get("margin"):
        raise HpsearchError(
            f"pruner option margin applies to pruning across a population batch only; set "
            f"batch > 1 (study file or --batch), or drop margin (got {config.pruner_options})"
        )
    if batch == 1 and config.mode == "pareto" and config.pruner != "none":
        raise HpsearchError(
            f"pruner {config.pruner!r} in pareto mode runs across a population batch: set "
            "batch > 1 (study file or --batch), or pruner 'none'"
        )


def _run_batches(
    study: optuna.Study,
    config: StudyConfig,
    data: Dataset,
    target: int,
    batch: int,
    timeout: float | None,
    progress_bar: _Progress,
) -> None:
    # The remaining count is read again from the storage before every batch: other processes
    # fill the same study. A batch they complete while this one trains is caught when this
    # one is stored (add_finished_trials stores trials past the target as surplus).
    started = time.monotonic()
    # Population results do not depend on the thread count: each batch takes the cores that
    # other work leaves free, up to the planned number (see hpsearch.core.threads).
    planned = torch.get_num_threads()
    watch = LoadWatch() if follows_load() else None
    stale = heartbeat_enabled(study_storage(study)[0])
    try:
        with DeferredInterrupt() as interrupt:
            while timeout is None or time.monotonic() - started < timeout:
                interrupt.check()
                if stale:  # a dead worker's batch must not hold its slots (persist.finish_trials)
                    adopt_silent_trials(study)
                    optuna.storages.fail_stale_trials(study)
                trials = study.get_trials(deepcopy=False)
                counted = sum(counts_toward_target(t) for t in trials)
                if counted >= target:
                    return
                # Ask only for the slots nobody holds: where heartbeats tell live trials from
                # a dead worker's, other workers' RUNNING trials hold theirs while they train
                # (surplus is then at most what workers ask in the same instant); on a journal,
                # only batches another worker is storing right now.
                if stale:
                    running = sum(t.state == TrialState.RUNNING for t in trials)
                else:  # a journal: only batches being finished, and not by a dead worker
                    running = journal_slots_held(study, trials)
                remaining = target - counted - running
                if remaining <= 0:  # wait: a slot frees if a running trial fails or goes stale
                    time.sleep(POLL_SECONDS)
                    continue
                if watch is not None:
                    torch.set_num_threads(watch.free_threads(planned))
                # Ctrl-C stops training; the finished groups are kept.
                interrupt.in_objective = True
                try:
                    # With batch pruning the slots pruned runs free are refilled: one batch
                    # may go on until the target, or the timeout.
                    run_population(
                        study, config, data, min(batch, remaining), target,
                        total=remaining,
                        deadline=None if timeout is None else started + timeout,
                        on_stored=lambda trials: progress_bar.finished(study, trials),
                    )  # fmt: skip
                finally:
                    interrupt.in_objective = False
            interrupt.check()
    finally:
        torch.set_num_threads(planned)


@dataclass(frozen=True)
class RunOptions:
    """How a study is run, as opposed to what it is (the study file): every field left at None
    takes the study file's value.

    Attributes:
        n_trials: Target number of trials of the study (default: the file's ``n_trials``).
            Trials already stored count: a rerun continues, it neither restarts nor overshoots.
        timeout: Stop starting new trials after this many seconds (default: the file's).
        seed: Overrides the file's seed (sampler and training initialisation).
        batch: Population size K (default: the file's ``batch``, 1 = one trial at a time):
            ask Optuna for K trials at once and train them as one batched model
            (:func:`hpsearch.core.population.train_population`). Pruning there is
            successive halving across the batch (``pruner = "successive_halving"``, both
            modes), with the slots of pruned runs refilled by new asks.
        heartbeat: Heartbeat interval of running trials in seconds, or None (see
            :func:`open_storage`); a killed worker's trial is then retried by the others.
        threads: Torch threads of each training process (default: the file's ``threads``;
            else :func:`run_study` leaves torch's setting alone and :func:`run_workers`
            splits the usable cores between the workers).
        device: Where to train: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (default: the
            file's ``device``, ``cpu``); the data is moved there once.
        workers: Processes sharing the study (:func:`run_workers`; :func:`run_study` runs
            one, in the calling process).
        progress: Show a progress bar on stderr.
        sampler_seed_offset: Added to the sampler's seed, so that workers joining one study
            at the same time do not draw the same parameters.
    """

    n_trials: int | None = None
    timeout: float | None = None
    seed: int | None = None
    batch: int | None = None
    heartbeat: int | None = HEARTBEAT_SECONDS
    threads: int | None = None
    device: str | None = None
    workers: int = 1
    progress: bool = True
    sampler_seed_offset: int = 0


def run_study(
    config: StudyConfig,
    storage: StorageLike = DEFAULT_STORAGE,
    options: RunOptions = RunOptions(),
    publish: Publisher | None = None,
    on_start: Callable[[], None] | None = None,
) -> RunSummary:
    """Run (or continue) the study of ``config`` until it has its target number of trials.

    Args:
        config: The validated study file.
        storage: Optuna storage URL (default: ``sqlite:///hpsearch.db``), or a storage the
            caller opened (:func:`open_storage`; the heartbeat then applies as it was opened).
        options: How to run it (:class:`RunOptions`: target, batch, threads, heartbeat, …).
        publish: Called with ``(study, final)`` when the run starts, every
            :data:`REFRESH_SECONDS` while it goes on, and with ``final=True`` when it ends (the
            CLI passes :func:`hpsearch.publish_study`: the study's note and figures in
            optuna-dashboard).
            An error there is reported on stderr in one line; the run goes on.
        on_start: Called once the study is loaded and checked, before the first trial (the
            CLI says there which threads it uses: a refusal prints its one line alone).

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
    if options.workers != 1:
        raise HpsearchError(
            f"run_study runs one process, got workers={options.workers}; use run_workers"
        )
    config, target, timeout, batch = _resolve_options(config, options)
    _apply_threads(options.threads if options.threads is not None else config.threads)
    device = resolve_device(config.device)  # not there: one line, before any work
    data = config.load_data().to(device)
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    # The bar replaces Optuna's per-trial log lines; failures are reported by the bar in one line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    progress_bar = None

    try:
        study = create_or_load_study(config, open_storage(storage, heartbeat=options.heartbeat))

        def refresh(final: bool = False) -> None:
            _publish_safely(publish, study, final)

        trials = study.get_trials(deepcopy=False)
        done = sum(counts_toward_target(t) for t in trials)
        if done >= target:
            # Nothing to run; but a run stopped while publishing left its figures behind.
            refresh(final=not is_published(study))
            return RunSummary(config.name, target, done, done, 0)
        if on_start is not None:
            on_start()
        refresh()
        # Offset the seed by the trials already stored, so that a continued run does not
        # replay the first run's random draws, and a run from scratch is reproducible.
        study.sampler = make_sampler(
            config.sampler,
            config.sampler_options,
            config.seed + len(trials) + options.sampler_seed_offset,
            grid=lambda: grid_values(config.params),
        )
        study.pruner = make_pruner(config.pruner, config.pruner_options, config.epochs)
        progress_bar = _Progress(study, target, done, options.progress, refresh)
        with warnings.catch_warnings(), _heartbeat_faults_left_to_the_trial():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if batch > 1:
                _run_batches(study, config, data, target, batch, timeout, progress_bar)
            else:
                _run_sequential(study, make_objective(config, data), target, timeout, progress_bar)
    finally:
        if progress_bar is not None:
            progress_bar.bar.close()
            refresh(final=True)
        optuna_logger.setLevel(level)
    after = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return RunSummary(config.name, target, done, after, progress_bar.failed)


def _resolve_options(
    config: StudyConfig, options: RunOptions
) -> tuple[StudyConfig, int, float | None, int]:
    """The study file with the options' seed and device, and the run's target, timeout and
    batch size (the options' where given, else the file's), checked."""
    if options.seed is not None:
        config = dataclasses.replace(config, seed=options.seed)
    if options.device is not None:
        config = dataclasses.replace(config, device=options.device)
    target = config.n_trials if options.n_trials is None else options.n_trials
    if target < 1:
        raise HpsearchError(f"n_trials must be >= 1, got {target}")
    timeout = config.timeout if options.timeout is None else options.timeout
    batch = config.batch if options.batch is None else options.batch
    if batch < 1:
        raise HpsearchError(f"batch must be >= 1, got {batch}")
    check_pruner(config, batch)
    check_batch_method(config, batch)
    return config, target, timeout, batch


def _apply_threads(threads: int | None) -> None:
    """Train with ``threads`` torch threads (None: leave torch's setting as it is), through
    the one mechanism that records the choice (:func:`hpsearch.core.threads.apply_threads`);
    a count already in force (the CLI applied it) is left as it was applied."""
    if threads is not None and threads != torch.get_num_threads():
        apply_threads(threads)


@dataclasses.dataclass(frozen=True)
class WorkerAssignment:
    """What a worker process (:mod:`hpsearch.study.worker`) runs: :func:`run_study`'s
    arguments, sent as JSON on its stdin; the storage URL goes in its environment
    (:data:`STORAGE_ENV`), never on a command line."""

    study_file: str
    options: RunOptions

    def to_json(self) -> str:
        return json.dumps({"study_file": self.study_file, "options": asdict(self.options)})

    @classmethod
    def from_json(cls, text: str) -> WorkerAssignment:
        sent = json.loads(text)
        return cls(sent["study_file"], RunOptions(**sent["options"]))


def run_workers(
    study_file: str | Path,
    storage: str = DEFAULT_STORAGE,
    options: RunOptions = RunOptions(workers=2),
    publish: Publisher | None = None,
    on_start: Callable[[], None] | None = None,
) -> RunSummary:
    """Run the study of ``study_file`` in ``options.workers`` processes (``hpsearch worker``)
    sharing ``storage``, until it has its target number of trials; see :func:`run_study`.

    The study is created here first, so the workers only join it; a progress bar follows the
    stored trials. Ctrl-C interrupts every worker (each stores its running trial as FAIL).

    Raises:
        HpsearchError: The storage cannot be reached, holds an incompatible study, or a worker
            exited with an error.
    """
    config, target, _, _ = _resolve_options(load_study_file(study_file), options)
    resolve_device(config.device)  # refused here, before any worker starts
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    study = create_or_load_study(config, open_storage(storage))
    done = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    failed_before = _diverged(study)
    if on_start is not None:
        on_start()
    # N workers × torch's default of one thread per core oversubscribes the cores, and idle
    # OpenMP threads spin: split the cores between the workers (see hpsearch.core.threads).
    threads = options.threads
    if threads is None:
        threads = plan_threads(options.workers, config.threads, "the study file's threads").threads
    # The workers leave the dashboard's note and figures to this process: one writer, and one
    # PNG artifact for the whole run.
    each = dataclasses.replace(options, n_trials=target, threads=threads, workers=1, progress=False)
    assignment = WorkerAssignment(str(study_file), each).to_json()
    env = {**os.environ, **thread_environment(threads), STORAGE_ENV: storage}

    def refresh(artifact: bool = False) -> None:
        _publish_safely(publish, study, artifact)

    refresh()
    procs, errors = _supervise_workers(
        [assignment] * options.workers,
        env,
        study,
        lambda: _Progress(study, target, done, options.progress).bar,
        refresh,
    )
    after = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    _report_worker_exits(procs, errors, after, target)
    # Artifacts cannot be replaced: a new PNG only when there is something new to draw.
    refresh(artifact=after > done or not is_published(study))
    return RunSummary(config.name, target, done, after, _diverged(study) - failed_before)


def _supervise_workers(
    assignments: list[str],
    env: dict[str, str],
    study: optuna.Study,
    make_bar: Callable[[], Any],
    refresh: Callable[[], None],
) -> tuple[list[subprocess.Popen], list[str]]:
    """Start one worker per assignment and follow the study until every worker has exited:
    the progress bar, a dashboard refresh every :data:`REFRESH_SECONDS`, and Ctrl-C or
    SIGTERM passed on to the workers, waited for, then raised. Returns the workers and the
    distinct errors they reported (:class:`_EchoOnce`)."""
    procs: list[subprocess.Popen] = []
    echo = None
    bar = None
    try:
        # Ctrl-C and SIGTERM are held until the loop's next check: raised inside a storage
        # read, the database driver could swallow them and the run would go on as if never
        # interrupted; raised while the workers start, some would be left unsupervised.
        with DeferredInterrupt() as interrupt:
            echo = _EchoOnce()
            for assignment in assignments:  # one at a time: each is stopped if one fails
                procs.append(_start_worker(assignment, env))
                echo.follow(procs[-1])
            bar = make_bar()
            refreshed = time.monotonic()
            while any(p.poll() is None for p in procs):
                time.sleep(POLL_SECONDS)
                interrupt.check()
                counted = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
                bar.update(counted - bar.n)
                if time.monotonic() - refreshed > REFRESH_SECONDS:
                    refresh()
                    refreshed = time.monotonic()
            interrupt.check()  # a signal while the last worker finished still counts
    except BaseException as stop:
        # Pass the same signal on (a terminal or a scheduler may have sent it to this process
        # alone), and wait for every worker to store its running trial; a second signal does
        # not abandon them. Any other failure here (the storage unreadable from this process)
        # stops the workers as SIGTERM does: none is left running unsupervised.
        interrupted = isinstance(stop, KeyboardInterrupt) and not isinstance(stop, Terminated)
        _stop_workers(procs, signal.SIGINT if interrupted else signal.SIGTERM)
        if echo is not None and not isinstance(stop, KeyboardInterrupt):
            echo.join()
            for error in echo.errors:  # what the workers said, before the launcher's line
                print(f"{_EchoOnce.ERROR}{error}", file=sys.stderr)
        raise
    finally:
        if bar is not None:
            bar.close()
        if echo is not None:
            echo.join()
    return procs, echo.errors if echo is not None else []


def _stop_workers(procs: list[subprocess.Popen], signum: int) -> None:
    """Send ``signum`` to the workers still running and wait for them all."""
    with DeferredInterrupt():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
        for p in procs:
            p.wait()


class _EchoOnce:
    """Pass the workers' stderr on as it comes, each distinct line once: a fault that every
    worker meets (a full disk, a lost server) is named once per run, not once per worker.
    A worker's closing error line is kept in :attr:`errors` instead, for the launcher's own
    one line (:func:`_report_worker_exits`)."""

    ERROR = "hpsearch worker: error: "

    def __init__(self, procs: Sequence[subprocess.Popen] = ()) -> None:
        self.errors: list[str] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        for proc in procs:
            self.follow(proc)

    def follow(self, proc: subprocess.Popen) -> None:
        """Read ``proc``'s stderr until it closes, in a thread of its own."""
        thread = threading.Thread(target=self._follow, args=(proc.stderr,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _follow(self, stream: Any) -> None:
        # The pipe is drained to its end whatever happens here: a worker blocked on a full
        # pipe would hold its trials' slots for ever (its heartbeat thread still beats).
        for line in stream:
            with self._lock, contextlib.suppress(OSError, ValueError):
                if line in self._seen:
                    continue
                self._seen.add(line)
                if line.startswith(self.ERROR):
                    self.errors.append(line.removeprefix(self.ERROR).strip())
                else:
                    sys.stderr.write(line)
                    sys.stderr.flush()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)


def _report_worker_exits(
    procs: list[subprocess.Popen], errors: list[str], after: int, target: int
) -> None:
    """Fail in one line when workers exited with an error before the target was reached,
    with the errors they reported (each distinct one once); warn when the others completed
    the study anyway."""
    failures = [_describe_exit(i, p.returncode) for i, p in enumerate(procs) if p.returncode]
    cause = "".join(f"{error}; " for error in errors)
    if failures and after < target:
        raise HpsearchError(
            f"{cause}{', '.join(failures)} before the study reached its target ({after}/"
            f"{target} trials); run the same command again to continue"
        )
    if failures:  # the others completed the study: not a failed run
        print(
            f"hpsearch: warning: {cause}{', '.join(failures)}; the other workers completed "
            "the study",
            file=sys.stderr,
        )


def _describe_exit(index: int, code: int) -> str:
    if code < 0:
        return f"worker {index} was killed by {signal.Signals(-code).name}"
    return f"worker {index} exited with {code}"


def _start_worker(assignment: str, env: dict[str, str]) -> subprocess.Popen:
    """A worker process (:mod:`hpsearch.study.worker`), its assignment written to its stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpsearch.study.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        errors="replace",  # a worker's odd byte must not stop the thread that reads it
        env=env,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(assignment)
    proc.stdin.close()
    return proc


def _publish_safely(publish: Publisher | None, study: optuna.Study, final: bool) -> None:
    """Publish the dashboard's note and figures; a failure is a warning, never a failed run."""
    if publish is None:
        return
    try:
        publish(study, final)
    except Exception as e:
        print(f"hpsearch: warning: dashboard note/figures not updated: {e}", file=sys.stderr)


def _diverged(study: optuna.Study) -> int:
    return sum(
        t.state == TrialState.FAIL and keys.FAIL_REASON in t.user_attrs
        for t in study.get_trials(deepcopy=False)
    )
