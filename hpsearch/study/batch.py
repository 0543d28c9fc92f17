"""Population mode: a batch of trials asked at once, trained as batched models, told and
stored (:class:`PopulationBatch`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from hpsearch._compat import (
    heartbeat_interval,
    parent_cache_prefix,
    rdb_backend,
    study_storage,
    trial_id,
)
from hpsearch.core.data import Dataset
from hpsearch.core.knobs import TrainConfig
from hpsearch.core.models import ModelSpec
from hpsearch.core.population import GROUP_KEYS, train_population
from hpsearch.core.setups import get_setup
from hpsearch.core.train import EpochRecord, TrainResult, history_columns
from hpsearch.signals import signals_deferred
from hpsearch.study import keys
from hpsearch.study.config import StudyConfig
from hpsearch.study.halving import Halving, Point, RungTable
from hpsearch.study.objective import (
    objective_values,
    record_result,
    record_start,
    scalar_objective,
    suggest_params,
)
from hpsearch.study.persist import (
    abandon_trials,
    add_finished_trials,
    beat,
    finish_trials,
    set_user_attrs,
    start_trials,
)
from hpsearch.study.samplers import batch_halving
from hpsearch.study.storage import counts_toward_target

Resolved = tuple[TrainConfig, ModelSpec, dict[str, Any]]


_MISSING = object()


def _holds_trial_ids(sampler: optuna.samplers.BaseSampler, key: str) -> bool:
    # Genetic samplers (NSGA-II/III) cache parent populations as lists of trial ids, which
    # differ between a copy and the storage; without the cache they select the parents again.
    prefix = parent_cache_prefix(sampler)
    return prefix is not None and key.startswith(prefix)


def _in_memory_copy(study: optuna.Study) -> tuple[optuna.Study, dict[str, Any]]:
    """A copy of ``study`` in memory that shares its sampler, and the study system attrs copied.

    Asking and telling there costs no storage round trip: asking 64 trials of a SQLite study
    one by one takes about 1.4 s (each ask re-reads every running trial), more than training
    them. Trials waiting in a queue (``enqueue_trial``) are not copied, so they stay queued.
    """
    copy = optuna.create_study(directions=study.directions, sampler=study.sampler)
    storage, study_id = study_storage(study)
    attrs = {
        key: value
        for key, value in storage.get_study_system_attrs(study_id).items()
        if not _holds_trial_ids(study.sampler, key)
    }
    copy_storage, copy_id = study_storage(copy)
    for key, value in attrs.items():
        copy_storage.set_study_system_attr(copy_id, key, value)
    states = tuple(s for s in TrialState if s != TrialState.WAITING)
    copy.add_trials(study.get_trials(deepcopy=False, states=states))
    return copy, attrs


def _history_point(config: StudyConfig, val1: float, val2: float, metric: float) -> Point:
    """What batch pruning compares at a rung, to be minimized: both validation losses in
    pareto mode, else the scalar objective (negated when it is maximized)."""
    if config.mode == "pareto":
        return (val1, val2)
    value = scalar_objective(config, val1, val2, metric)
    return (-value if config.directions[0] == "maximize" else value,)


def _rung_table(study: optuna.Study, config: StudyConfig, rule: Halving) -> RungTable:
    """The rungs' points of the study's stored trials that ran that far (their histories)."""
    table = RungTable(rule)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        history = trial.user_attrs.get(keys.HISTORY) or {}
        losses1, losses2 = history.get("val_loss1", []), history.get("val_loss2", [])
        metrics = history.get("val_metric", [])
        for rung in rule.rungs:
            if rung <= min(len(losses1), len(losses2), len(metrics)):
                point = (losses1[rung - 1], losses2[rung - 1], metrics[rung - 1])
                table.record(rung, _history_point(config, *point))
    return table


def run_population(
    study: optuna.Study,
    config: StudyConfig,
    data: Dataset,
    n: int,
    target: int | None = None,
    *,
    total: int | None = None,
    deadline: float | None = None,
    on_stored: Callable[[list[optuna.trial.FrozenTrial]], None] | None = None,
) -> list[optuna.trial.FrozenTrial]:
    """Ask for ``n`` trials at once, train them as populations, tell and store every result.

    The batch is asked and told in an in-memory copy of ``study`` that shares its sampler (see
    :func:`_in_memory_copy`). Once asked, on an SQL storage, its trials are stored in ``study``
    as RUNNING in one transaction (:func:`hpsearch.study.persist.start_trials`): the storage
    and the dashboard show them while they train, other workers' samplers see them running,
    and with heartbeats on they send heartbeats, so that a killed process's batch goes stale
    and is failed. Trials that end at an epoch are then completed in one transaction
    (:func:`hpsearch.study.persist.finish_trials`); on a journal file or in memory they are
    stored when they end (:func:`hpsearch.study.persist.add_finished_trials`). Study system
    attrs a sampler wrote (a QMC sequence's position, for one) are written back. Trials are
    grouped so that each group shares the architecture, setup options and
    :data:`hpsearch.core.population.GROUP_KEYS`; each group is one batched model. A member
    that diverges is stored as FAIL with its reason; the others are unaffected. If anything
    stops the batch (Ctrl-C, an error), the trials already ended are kept and the rest of
    the batch is stored as FAIL without a reason (SQL) or not at all (journal): it does not
    count, a rerun replaces it, nothing is left RUNNING. With a ``target``,
    trials that would count past it are stored as surplus (see
    :func:`hpsearch.study.persist.finish_trials`).

    With ``pruner = "successive_halving"`` (both modes), runs that fall behind at a rung are
    stopped and stored as PRUNED with their last losses and history (:mod:`hpsearch.study.
    halving`), and every slot a run frees is refilled with a new ask, so that the batch stays
    full, until ``total`` trials were asked or ``deadline`` (``time.monotonic()``) passed.

    Args:
        on_stored: Called with the trials stored, as each epoch's are.

    Returns:
        The stored trials, in the order asked.
    """
    batch = PopulationBatch(study, config, data, n, target, total, deadline, on_stored)
    return batch.run()


class PopulationBatch:
    """One call of :func:`run_population`: the trials asked, their configurations and
    histories, which are stored RUNNING and which ended, and the groups still to train.

    Trials are numbered by the order they were asked (an index into :attr:`trials`).
    """

    def __init__(
        self,
        study: optuna.Study,
        config: StudyConfig,
        data: Dataset,
        n: int,
        target: int | None,
        total: int | None,
        deadline: float | None,
        on_stored: Callable[[list[optuna.trial.FrozenTrial]], None] | None,
    ) -> None:
        self.study, self.config, self.data, self.n, self.target = study, config, data, n, target
        self.deadline, self.on_stored = deadline, on_stored
        self.rule = batch_halving(config.pruner, config.pruner_options, config.epochs)
        self.total = n if self.rule is None or total is None else max(n, total)
        self.table = None if self.rule is None else _rung_table(study, config, self.rule)
        self.rungs = set() if self.rule is None else set(self.rule.rungs)
        self.report = self.rule is not None and config.mode == "scalarized"
        self.batch, self.attrs = _in_memory_copy(study)
        self.batch_storage, self.batch_id = study_storage(self.batch)
        # On an SQL storage the batch is stored RUNNING now and completed under the study's
        # lock. A journal file's many appends cannot decide who counts atomically across
        # workers, so there each trial is stored once it ended (add_finished_trials).
        live = rdb_backend(study_storage(study)[0]) is not None
        self.heartbeat = _Heartbeat(study) if live else None
        self.trials: list[optuna.Trial] = []
        self.resolved: list[Resolved] = []
        self.histories: dict[int, list[EpochRecord]] = {}
        self.started: dict[int, optuna.trial.FrozenTrial] = {}
        self.stored: dict[int, optuna.trial.FrozenTrial] = {}
        # Groups still to train, in order of first appearance: (group, trial indices).
        self.queue: list[tuple[tuple, list[int]]] = []

    def run(self) -> list[optuna.trial.FrozenTrial]:
        """Ask, train every group, store; clean up whatever stops it (see
        :func:`run_population`). Returns the stored trials in the order asked."""
        try:
            self.train_all()
        except BaseException:
            # Clean up what can be, without hiding what stopped the batch.
            with signals_deferred(), contextlib.suppress(Exception):
                self.wrap_up()
            raise
        else:
            with signals_deferred():
                self.wrap_up()
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop()
        return [self.stored[i] for i in sorted(self.stored)]

    def train_all(self) -> None:
        """Ask the first ``n`` trials, then train the queue's groups one by one."""
        for i in self.ask(self.n):
            self.enqueue(i)
        for _, members in self.queue:
            for i in members:
                self.trials[i].set_user_attr(keys.POPULATION_SIZE, len(members))
        self.start(list(range(len(self.trials))))
        while self.queue:
            if self.rule is not None and self.past_deadline():
                break  # the rest is abandoned by wrap_up: it does not count
            group, members = self.queue.pop(0)
            if len(members) > self.n:  # refills of another group: at most n train at once
                self.queue.insert(0, (group, members[self.n :]))
                members = members[: self.n]
            for i in members:
                self.trials[i].set_user_attr(keys.POPULATION_SIZE, len(members))
            _GroupRun(self, group, members).train()

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def group_of(self, i: int) -> tuple:
        """What trials must share to train as one batched model."""
        train_config, model, options = self.resolved[i]
        return (
            model,
            tuple(sorted(options.items())),
            *(getattr(train_config, k) for k in GROUP_KEYS),
        )

    def enqueue(self, i: int) -> None:
        for group, members in self.queue:
            if group == self.group_of(i):
                members.append(i)
                return
        self.queue.append((self.group_of(i), [i]))

    def ask(self, m: int, population_size: int | None = None) -> list[int]:
        """Ask ``m`` trials of the in-memory copy; their indices."""
        new = []
        for _ in range(m):
            trial = self.batch.ask()
            self.trials.append(trial)
            values = suggest_params(trial, self.config.params)
            self.resolved.append(self.config.resolve(values, trial_number=trial.number))
            # Recorded before training: the trial shows its seeds and batch while it runs.
            record_start(trial, self.resolved[-1][0], self.data.device)
            if population_size is not None:
                trial.set_user_attr(keys.POPULATION_SIZE, population_size)
            new.append(len(self.trials) - 1)
        return new

    def room(self) -> int:
        """How many more trials this batch may ask: within ``total``, and the study's target
        less what counts already and what runs (this batch's and other workers')."""
        left = self.total - len(self.trials)
        if self.target is None:
            return left
        stored_trials = self.study.get_trials(deepcopy=False)
        counted = sum(counts_toward_target(t) for t in stored_trials)
        running = sum(t.state == TrialState.RUNNING for t in stored_trials)
        if self.heartbeat is None:  # a journal's batch is stored only once its trials end
            running += len(self.trials) - len(self.stored)
        return min(left, self.target - counted - running)

    def start(self, new: list[int]) -> None:
        """Store the new trials RUNNING (an SQL storage) and beat for them."""
        if self.heartbeat is None or not new:
            return
        with signals_deferred():  # stored RUNNING, then known to the clean-up
            asked = [self.batch_storage.get_trial(trial_id(self.trials[i])) for i in new]
            self.started.update(zip(new, start_trials(self.study, asked), strict=True))
        self.heartbeat.track([self.started[i] for i in new])

    def store(self, ended: dict[int, optuna.trial.FrozenTrial]) -> None:
        """Store the trials that ended, in one transaction."""
        order = sorted(ended)
        finished = [ended[i] for i in order]
        with signals_deferred():
            if self.heartbeat is not None:
                started = [self.started[i] for i in order]
                done = finish_trials(self.study, started, finished, self.target)
            else:
                done = add_finished_trials(self.study, finished, self.target)
            self.stored.update(zip(order, done, strict=True))
        if self.heartbeat is not None:
            self.heartbeat.forget({trial_id(self.started[i]) for i in order})
        if self.on_stored is not None:
            self.on_stored(done)

    def tell(self, i: int, result: TrainResult | Exception) -> optuna.trial.FrozenTrial:
        """Tell the in-memory copy how trial ``i`` ended: pruned, diverged or complete."""
        trial = self.trials[i]
        if isinstance(result, optuna.TrialPruned):
            history = self.histories[i]
            last = history[-1]
            set_user_attrs(trial, {
                keys.VAL_LOSS1: last.val_loss1,
                keys.VAL_LOSS2: last.val_loss2,
                keys.VAL_METRIC: last.val_metric,
                keys.EPOCHS_RUN: last.epoch,
                keys.TORCH_THREADS: torch.get_num_threads(),
                keys.HISTORY: history_columns(history),
            })  # fmt: skip
            return self.batch.tell(trial, state=TrialState.PRUNED)
        if isinstance(result, Exception):  # diverged: nothing else stops a member here
            trial.set_user_attr(keys.FAIL_REASON, str(result))
            return self.batch.tell(trial, state=TrialState.FAIL)
        record_result(trial, result, constrained=self.config.mode == "scalarized")
        return self.batch.tell(trial, objective_values(self.config, result.val))

    def wrap_up(self) -> None:
        """Write the sampler's study attrs back (a batch that stopped still moved them), and
        fail the trials stored RUNNING that did not end."""
        storage, study_id = study_storage(self.study)
        for key, value in self.batch_storage.get_study_system_attrs(self.batch_id).items():
            if self.attrs.get(key, _MISSING) != value and not _holds_trial_ids(
                self.study.sampler, key
            ):
                storage.set_study_system_attr(study_id, key, value)
        stopped = [t for i, t in sorted(self.started.items()) if i not in self.stored]
        abandon_trials(self.study, stopped)


class _GroupRun:
    """One group of a :class:`PopulationBatch` trained as one batched model: the callbacks
    :func:`hpsearch.core.population.train_population` calls, with ``runs`` mapping its run
    indices to the batch's trial indices (refills append to it)."""

    def __init__(self, batch: PopulationBatch, group: tuple, members: list[int]) -> None:
        self.batch, self.group = batch, group
        self.members = members
        self.runs = list(members)
        self.capacity = len(members) if batch.rule is None else batch.n

    def train(self) -> None:
        batch = self.batch
        _, model, options = batch.resolved[self.members[0]]
        halving = batch.rule is not None
        train_population(
            get_setup(batch.config.setup)(**options),
            batch.data,
            model,
            [batch.resolved[i][0] for i in self.members],
            self.on_epoch_end,
            judge=self.judge if halving else None,
            refill=self.refill if halving else None,
            on_results=self.on_results,
            # Batch pruning that ranks runs by the metric needs it every epoch.
            metric_every_epoch=halving and batch.config.objective == "metric",
        )

    def refill(self, free: int) -> list[TrainConfig]:
        """Ask for trials to take ``free`` slots; those of this group join the run."""
        batch = self.batch
        if batch.past_deadline():
            return []
        # Trials waiting for another group take slots too: ask only for the rest, and only
        # for what the study still lacks (other workers fill it as well).
        waiting = sum(len(m) for _, m in batch.queue)
        new = batch.ask(max(0, min(free - waiting, batch.room())), self.capacity)
        batch.start(new)
        joining = [i for i in new if batch.group_of(i) == self.group]
        self.runs.extend(joining)
        for i in new:  # another group's: trained as its own population later
            if batch.group_of(i) != self.group:
                batch.enqueue(i)
        return [batch.resolved[i][0] for i in joining]

    def on_epoch_end(self, run: int, record: EpochRecord) -> None:
        i = self.runs[run]
        self.batch.histories.setdefault(i, []).append(record)
        if self.batch.report:
            point = (record.val_loss1, record.val_loss2, record.val_metric)
            value = scalar_objective(self.batch.config, *point)
            self.batch.trials[i].report(value, record.epoch)

    def judge(self, records: list[tuple[int, EpochRecord]]) -> dict[int, Exception]:
        """Which runs stop at the rungs reached this epoch (successive halving)."""
        batch = self.batch
        assert batch.table is not None
        stops: dict[int, Exception] = {}
        for rung in sorted({r.epoch for _, r in records} & batch.rungs):
            arrivals = [(run, r) for run, r in records if r.epoch == rung]
            points = [
                _history_point(batch.config, r.val_loss1, r.val_loss2, r.val_metric)
                for _, r in arrivals
            ]
            for (run, _), stop in zip(arrivals, batch.table.arrive(rung, points), strict=True):
                if stop:
                    stops[run] = optuna.TrialPruned(f"pruned at epoch {rung}")
        return stops

    def on_results(self, ended: list[tuple[int, TrainResult | Exception]]) -> None:
        batch = self.batch
        batch.store({self.runs[run]: batch.tell(self.runs[run], result) for run, result in ended})


class _Heartbeat:
    """Heartbeats for a batch's RUNNING trials from a background thread, every heartbeat
    interval while it trains (as Optuna's own thread does for a sequential trial): other
    workers then tell a live batch from a dead one, however long an epoch takes."""

    def __init__(self, study: optuna.Study) -> None:
        self.storage, _ = study_storage(study)
        self.running: dict[int, optuna.trial.FrozenTrial] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.interval = heartbeat_interval(self.storage)
        self.thread: threading.Thread | None = None

    def _run(self, interval: float) -> None:
        while not self.stopped.wait(interval):
            with self.lock:
                trials = list(self.running.values())
            # A missed beat is retried at the next interval; a storage's own fault shows when
            # the batch is stored.
            with contextlib.suppress(Exception):
                beat(self.storage, trials)

    def track(self, trials: list[optuna.trial.FrozenTrial]) -> None:
        """Beat for these trials too (stored RUNNING with a first heartbeat), from now on."""
        with self.lock:
            self.running.update((trial_id(t), t) for t in trials)
        if self.thread is None and self.interval is not None:
            self.thread = threading.Thread(target=self._run, args=(self.interval,), daemon=True)
            self.thread.start()

    def forget(self, ids: set[int]) -> None:
        """Stop beating for trials that are finished."""
        with self.lock:
            for tid in ids:
                self.running.pop(tid, None)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
