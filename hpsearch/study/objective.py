"""Where Optuna meets the training core: one trial → hyperparameters → train → values and attrs."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from hpsearch._compat import (
    CONSTRAINTS_KEY,
    heartbeat_interval,
    parent_cache_prefix,
    rdb_backend,
    study_storage,
    trial_id,
)
from hpsearch.core.data import Dataset
from hpsearch.core.population import GROUP_KEYS, train_population
from hpsearch.core.setups import get_setup
from hpsearch.core.train import EpochRecord, TrainResult, train
from hpsearch.errors import DivergedError
from hpsearch.study import keys
from hpsearch.study.config import ParamSpec, StudyConfig
from hpsearch.study.persist import (
    abandon_trials,
    add_finished_trials,
    beat,
    finish_trials,
    set_user_attrs,
    start_trials,
)


def suggest_params(trial: optuna.Trial, params: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask ``trial`` for a value of every searched parameter.

    Args:
        trial: The Optuna trial.
        params: The study's parameters; fixed ones are skipped.

    Returns:
        ``{name: value}`` for the searched parameters.
    """
    values: dict[str, Any] = {}
    for name, p in params.items():
        if p.type == "float":
            low, high = p.bounds
            values[name] = trial.suggest_float(name, low, high, log=p.log, step=p.step)
        elif p.type == "int":
            low, high = p.bounds
            step = int(p.step or 1)
            values[name] = trial.suggest_int(name, int(low), int(high), log=p.log, step=step)
        elif p.type == "categorical":
            values[name] = trial.suggest_categorical(name, list(p.choices))
    return values


def scalar_objective(config: StudyConfig, loss1: float, loss2: float, metric: float) -> float:
    """The value a scalarized study optimizes (see ``[study] objective``)."""
    if config.objective == "loss1":
        return loss1
    if config.objective == "loss2":
        return loss2
    if config.objective == "metric":
        return metric
    w1, w2 = config.objective_weights or (1.0, 0.0)
    return w1 * loss1 + w2 * loss2


def objective_values(config: StudyConfig, val: dict[str, float]) -> float | tuple[float, float]:
    """Trial value(s): ``(val loss1, val loss2)`` in pareto mode, else the scalar objective."""
    if config.mode == "pareto":
        return val["loss1"], val["loss2"]
    return scalar_objective(config, val["loss1"], val["loss2"], val["metric"])


def record_result(trial: optuna.Trial, result: TrainResult, constrained: bool) -> None:
    """Store both losses and the metric(s) of every split, and the history, as user attrs.

    Args:
        trial: The trial.
        result: Its training run.
        constrained: Whether an MDMM budget is the user's constraint (a scalarized study), so
            that a run that missed it is recorded as infeasible for Optuna too. In a pareto
            study ε is a training knob like α: every run's achieved point counts on the front,
            and its feasibility is only recorded (user attribute ``feasible``).
    """
    attrs: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        for key, value in getattr(result, split).items():
            attrs[keys.split_key(split, key)] = value
    for key, value in result.info.items():
        attrs[key] = bool(value) if key == keys.FEASIBLE else value
    if constrained and keys.CONSTRAINT_VIOLATION in result.info:
        # Optuna's constraint record: feasible when <= 0, so best_trials and the samplers that
        # read constraints skip MDMM runs that missed their budget. Within the tolerance
        # counts as met (0); a miss is the (positive) excess over ε. Stored in the list format
        # (constraint "0" is the L2 budget), which Optuna 5 reads as well as its per-key one,
        # because optuna-dashboard 0.21 reads only the list and would show infeasible trials
        # as best.
        violation = 0.0 if result.info[keys.FEASIBLE] else result.info[keys.CONSTRAINT_VIOLATION]
        trial.storage.set_trial_system_attr(trial_id(trial), CONSTRAINTS_KEY, [violation])
    attrs[keys.EPOCHS_RUN] = len(result.history)
    attrs[keys.TRAIN_SECONDS] = round(result.seconds, 4)
    attrs[keys.TORCH_THREADS] = torch.get_num_threads()
    attrs[keys.HISTORY] = result.history_columns()
    set_user_attrs(trial, attrs)


def _record_epoch(trial: optuna.Trial, record: EpochRecord) -> None:
    # A pruned trial still gets both validation losses and the metric, from its last epoch.
    trial.set_user_attr(keys.VAL_LOSS1, record.val_loss1)
    trial.set_user_attr(keys.VAL_LOSS2, record.val_loss2)
    trial.set_user_attr(keys.VAL_METRIC, record.val_metric)
    trial.set_user_attr(keys.EPOCHS_RUN, record.epoch)


def make_objective(
    config: StudyConfig, data: Dataset
) -> Callable[[optuna.Trial], float | tuple[float, float]]:
    """Build the Optuna objective of a study.

    Every trial records ``val_loss1``, ``val_loss2`` and ``val_metric`` (and the same for train
    and test) as user attributes, in both modes. A diverging run returns NaN, which Optuna
    stores as FAIL, with the reason in the user attribute ``fail_reason``.

    Args:
        config: The validated study file.
        data: The loaded dataset.

    Returns:
        The objective function.
    """
    setup_cls = get_setup(config.setup)
    prune = config.mode == "scalarized" and config.pruner != "none"

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        train_config, model, options = config.resolve(suggest_params(trial, config.params))
        trial.set_user_attr(keys.TRAIN_SEED, train_config.seed)

        def on_epoch_end(record: EpochRecord) -> None:
            if not prune:
                return
            value = scalar_objective(config, record.val_loss1, record.val_loss2, record.val_metric)
            trial.report(value, record.epoch)
            # Never prune after the last epoch: the run is complete, and its result is kept.
            if record.epoch < config.epochs and trial.should_prune():
                _record_epoch(trial, record)
                raise optuna.TrialPruned(f"pruned at epoch {record.epoch}")

        try:
            result = train(setup_cls(**options), data, model, train_config, on_epoch_end)
        except DivergedError as e:
            trial.set_user_attr(keys.FAIL_REASON, str(e))
            return (math.nan, math.nan) if config.mode == "pareto" else math.nan
        record_result(trial, result, constrained=config.mode == "scalarized")
        return objective_values(config, result.val)

    return objective


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


def run_population(
    study: optuna.Study, config: StudyConfig, data: Dataset, n: int, target: int | None = None
) -> list[optuna.trial.FrozenTrial]:
    """Ask for ``n`` trials at once, train them as populations, tell and store every result.

    The batch is asked and told in an in-memory copy of ``study`` that shares its sampler (see
    :func:`_in_memory_copy`). Once asked, on an SQL storage, its trials are stored in ``study``
    as RUNNING in one transaction (:func:`hpsearch.study.persist.start_trials`): the storage
    and the dashboard show them while they train, other workers' samplers see them running,
    and with heartbeats on they send heartbeats, so that a killed process's batch goes stale
    and is failed. Each trained group is then completed in one transaction
    (:func:`hpsearch.study.persist.finish_trials`); on a journal file or in memory, each group
    is stored when trained (:func:`hpsearch.study.persist.add_finished_trials`). Study system
    attrs a sampler wrote (a QMC sequence's position, for one) are written back. Trials are
    grouped so that each group shares the architecture, setup options and
    :data:`hpsearch.core.population.GROUP_KEYS`; each group is one batched model. A member
    that diverges is stored as FAIL with its reason; the others are unaffected. If anything
    stops the batch (Ctrl-C, an error), the groups already trained are kept and the rest of
    the batch is stored as FAIL without a reason (SQL) or not at all (journal): it does not
    count, a rerun replaces it, nothing is left RUNNING. With a ``target``,
    trials that would count past it are stored as surplus (see
    :func:`hpsearch.study.persist.finish_trials`).

    Returns:
        The stored trials, in the order asked.
    """
    setup_cls = get_setup(config.setup)
    batch, attrs = _in_memory_copy(study)
    batch_storage, batch_id = study_storage(batch)
    trials = [batch.ask() for _ in range(n)]
    stored: dict[int, optuna.trial.FrozenTrial] = {}
    started: list[optuna.trial.FrozenTrial] = []
    heartbeat: _Heartbeat | None = None

    def wrap_up() -> None:
        # The sampler's study attrs go back first: a batch that stopped still moved them.
        storage, study_id = study_storage(study)
        for key, value in batch_storage.get_study_system_attrs(batch_id).items():
            if attrs.get(key, _MISSING) != value and not _holds_trial_ids(study.sampler, key):
                storage.set_study_system_attr(study_id, key, value)
        abandon_trials(study, [t for i, t in enumerate(started) if i not in stored])

    try:
        resolved = [config.resolve(suggest_params(t, config.params)) for t in trials]
        groups: dict[tuple, list[int]] = {}
        for i, (train_config, model, options) in enumerate(resolved):
            group = (
                model,
                tuple(sorted(options.items())),
                *(getattr(train_config, k) for k in GROUP_KEYS),
            )
            groups.setdefault(group, []).append(i)
        for members in groups.values():
            for i in members:
                # Recorded before training: the trial shows its seed and batch while it runs.
                trials[i].set_user_attr(keys.TRAIN_SEED, resolved[i][0].seed)
                trials[i].set_user_attr(keys.POPULATION_SIZE, len(members))
        # On an SQL storage the batch is stored RUNNING now and completed under the study's
        # lock. A journal file's many appends cannot decide who counts atomically across
        # workers, so there each group is stored once trained (add_finished_trials).
        live = rdb_backend(study_storage(study)[0]) is not None
        if live:
            with _signals_deferred():  # stored RUNNING, then known to the clean-up below
                asked = [batch_storage.get_trial(trial_id(t)) for t in trials]
                started = start_trials(study, asked)
            heartbeat = _Heartbeat(study, started)
        for members in groups.values():
            _, model, options = resolved[members[0]]
            results = train_population(
                setup_cls(**options), data, model, [resolved[i][0] for i in members]
            )
            told = {}
            for i, result in zip(members, results, strict=True):
                trial = trials[i]
                if isinstance(result, Exception):  # diverged: nothing else stops a member here
                    trial.set_user_attr(keys.FAIL_REASON, str(result))
                    told[i] = batch.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    record_result(trial, result, constrained=config.mode == "scalarized")
                    told[i] = batch.tell(trial, objective_values(config, result.val))
            order = sorted(told)
            finished = [told[i] for i in order]
            with _signals_deferred():
                if live:
                    done = finish_trials(study, [started[i] for i in order], finished, target)
                else:
                    done = add_finished_trials(study, finished, target)
                stored.update(zip(order, done, strict=True))
            if heartbeat is not None:
                heartbeat.forget({trial_id(started[i]) for i in order})
    except BaseException:
        # Clean up what can be, without hiding what stopped the batch.
        with _signals_deferred(), contextlib.suppress(Exception):
            wrap_up()
        raise
    else:
        with _signals_deferred():
            wrap_up()
    finally:
        if heartbeat is not None:
            heartbeat.stop()
    return [stored[i] for i in sorted(stored)]


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (the main thread only): a storage
    transaction and what records it must not be cut in half by a second Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _Heartbeat:
    """Heartbeats for a batch's RUNNING trials from a background thread, every heartbeat
    interval while it trains (as Optuna's own thread does for a sequential trial): other
    workers then tell a live batch from a dead one, however long an epoch takes."""

    def __init__(self, study: optuna.Study, started: list[optuna.trial.FrozenTrial]) -> None:
        self.storage, _ = study_storage(study)
        self.running = {trial_id(t): t for t in started}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        interval = heartbeat_interval(self.storage)
        self.thread = None
        if interval is not None:
            self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
            self.thread.start()

    def _run(self, interval: float) -> None:
        while not self.stopped.wait(interval):
            with self.lock:
                trials = list(self.running.values())
            # A missed beat is retried at the next interval; a storage's own fault shows when
            # the batch is stored.
            with contextlib.suppress(Exception):
                beat(self.storage, trials)

    def forget(self, ids: set[int]) -> None:
        """Stop beating for trials that are finished."""
        with self.lock:
            for tid in ids:
                self.running.pop(tid, None)

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
