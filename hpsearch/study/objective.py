"""Where Optuna meets the training core: one trial → hyperparameters → train → values and attrs."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
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
from hpsearch.core.knobs import TrainConfig
from hpsearch.core.models import ModelSpec
from hpsearch.core.population import GROUP_KEYS, train_population
from hpsearch.core.setups import get_setup
from hpsearch.core.train import EpochRecord, TrainResult, history_columns, train
from hpsearch.errors import DivergedError
from hpsearch.study import keys
from hpsearch.study.config import ParamSpec, StudyConfig
from hpsearch.study.halving import Halving, Point, RungTable
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


def record_seeds(trial: optuna.Trial, config: TrainConfig) -> None:
    """Record the run's seeds: the batch order's, and its initial weights' (which differ
    between trials under ``init_seed = "trial"`` or a searched ``init_seed``)."""
    trial.set_user_attr(keys.TRAIN_SEED, config.seed)
    trial.set_user_attr(keys.INIT_SEED, config.weights_seed)


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
        train_config, model, options = config.resolve(
            suggest_params(trial, config.params), trial_number=trial.number
        )
        record_seeds(trial, train_config)

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
    setup_cls = get_setup(config.setup)
    rule = batch_halving(config.pruner, config.pruner_options, config.epochs)
    total = n if rule is None or total is None else max(n, total)
    table = None if rule is None else _rung_table(study, config, rule)
    rungs = set() if rule is None else set(rule.rungs)
    report = rule is not None and config.mode == "scalarized"
    batch, attrs = _in_memory_copy(study)
    batch_storage, batch_id = study_storage(batch)
    # On an SQL storage the batch is stored RUNNING now and completed under the study's
    # lock. A journal file's many appends cannot decide who counts atomically across
    # workers, so there each trial is stored once it ended (add_finished_trials).
    live = rdb_backend(study_storage(study)[0]) is not None
    trials: list[optuna.Trial] = []
    resolved: list[tuple[TrainConfig, ModelSpec, dict[str, Any]]] = []
    histories: dict[int, list[EpochRecord]] = {}
    started: dict[int, optuna.trial.FrozenTrial] = {}
    stored: dict[int, optuna.trial.FrozenTrial] = {}
    heartbeat = _Heartbeat(study) if live else None

    def group_of(i: int) -> tuple:
        train_config, model, options = resolved[i]
        return (
            model,
            tuple(sorted(options.items())),
            *(getattr(train_config, k) for k in GROUP_KEYS),
        )

    def ask(m: int, population_size: int | None = None) -> list[int]:
        new = []
        for _ in range(m):
            trial = batch.ask()
            trials.append(trial)
            resolved.append(
                config.resolve(suggest_params(trial, config.params), trial_number=trial.number)
            )
            # Recorded before training: the trial shows its seeds and batch while it runs.
            record_seeds(trial, resolved[-1][0])
            if population_size is not None:
                trial.set_user_attr(keys.POPULATION_SIZE, population_size)
            new.append(len(trials) - 1)
        return new

    def room() -> int:
        """How many more trials this batch may ask: within ``total``, and the study's target
        less what counts already and what runs (this batch's and other workers')."""
        left = total - len(trials)
        if target is None:
            return left
        stored_trials = study.get_trials(deepcopy=False)
        counted = sum(counts_toward_target(t) for t in stored_trials)
        running = sum(t.state == TrialState.RUNNING for t in stored_trials)
        if heartbeat is None:  # a journal's batch is stored only once its trials end
            running += len(trials) - len(stored)
        return min(left, target - counted - running)

    def start(new: list[int]) -> None:
        if heartbeat is None or not new:
            return
        with _signals_deferred():  # stored RUNNING, then known to the clean-up below
            asked = [batch_storage.get_trial(trial_id(trials[i])) for i in new]
            started.update(zip(new, start_trials(study, asked), strict=True))
        heartbeat.track([started[i] for i in new])

    def store(ended: dict[int, optuna.trial.FrozenTrial]) -> None:
        order = sorted(ended)
        finished = [ended[i] for i in order]
        with _signals_deferred():
            if heartbeat is not None:
                done = finish_trials(study, [started[i] for i in order], finished, target)
            else:
                done = add_finished_trials(study, finished, target)
            stored.update(zip(order, done, strict=True))
        if heartbeat is not None:
            heartbeat.forget({trial_id(started[i]) for i in order})
        if on_stored is not None:
            on_stored(done)

    def tell(i: int, result: TrainResult | Exception) -> optuna.trial.FrozenTrial:
        trial = trials[i]
        if isinstance(result, optuna.TrialPruned):
            history = histories[i]
            last = history[-1]
            set_user_attrs(trial, {
                keys.VAL_LOSS1: last.val_loss1,
                keys.VAL_LOSS2: last.val_loss2,
                keys.VAL_METRIC: last.val_metric,
                keys.EPOCHS_RUN: last.epoch,
                keys.TORCH_THREADS: torch.get_num_threads(),
                keys.HISTORY: history_columns(history),
            })  # fmt: skip
            return batch.tell(trial, state=TrialState.PRUNED)
        if isinstance(result, Exception):  # diverged: nothing else stops a member here
            trial.set_user_attr(keys.FAIL_REASON, str(result))
            return batch.tell(trial, state=TrialState.FAIL)
        record_result(trial, result, constrained=config.mode == "scalarized")
        return batch.tell(trial, objective_values(config, result.val))

    def wrap_up() -> None:
        # The sampler's study attrs go back first: a batch that stopped still moved them.
        storage, study_id = study_storage(study)
        for key, value in batch_storage.get_study_system_attrs(batch_id).items():
            if attrs.get(key, _MISSING) != value and not _holds_trial_ids(study.sampler, key):
                storage.set_study_system_attr(study_id, key, value)
        abandon_trials(study, [t for i, t in sorted(started.items()) if i not in stored])

    # Groups still to train, in order of first appearance: (group, trial indices).
    queue: list[tuple[tuple, list[int]]] = []

    def enqueue(i: int) -> None:
        for group, members in queue:
            if group == group_of(i):
                members.append(i)
                return
        queue.append((group_of(i), [i]))

    try:
        for i in ask(n):
            enqueue(i)
        for _, members in queue:
            for i in members:
                trials[i].set_user_attr(keys.POPULATION_SIZE, len(members))
        start(list(range(len(trials))))
        while queue:
            if rule is not None and deadline is not None and time.monotonic() >= deadline:
                break  # the rest is abandoned by wrap_up: it does not count
            group, members = queue.pop(0)
            if len(members) > n:  # refills of another group: at most n train at once
                queue.insert(0, (group, members[n:]))
                members = members[:n]
            for i in members:
                trials[i].set_user_attr(keys.POPULATION_SIZE, len(members))
            runs = list(members)  # run index (train_population's) -> trial index
            capacity = len(members) if rule is None else n

            def refill(free: int, group: tuple = group, runs: list[int] = runs,
                       capacity: int = capacity) -> list[TrainConfig]:  # fmt: skip
                if deadline is not None and time.monotonic() >= deadline:
                    return []
                # Trials waiting for another group take slots too: ask only for the rest,
                # and only for what the study still lacks (other workers fill it as well).
                waiting = sum(len(m) for _, m in queue)
                new = ask(max(0, min(free - waiting, room())), capacity)
                start(new)
                joining = [i for i in new if group_of(i) == group]
                runs.extend(joining)
                for i in new:  # another group's: trained as its own population later
                    if group_of(i) != group:
                        enqueue(i)
                return [resolved[i][0] for i in joining]

            def on_epoch_end(run: int, record: EpochRecord, runs: list[int] = runs) -> None:
                i = runs[run]
                histories.setdefault(i, []).append(record)
                if report:
                    point = (record.val_loss1, record.val_loss2, record.val_metric)
                    trials[i].report(scalar_objective(config, *point), record.epoch)

            def judge(
                records: list[tuple[int, EpochRecord]], runs: list[int] = runs
            ) -> dict[int, Exception]:
                assert table is not None
                stops: dict[int, Exception] = {}
                for rung in sorted({r.epoch for _, r in records} & rungs):
                    arrivals = [(run, r) for run, r in records if r.epoch == rung]
                    points = [
                        _history_point(config, r.val_loss1, r.val_loss2, r.val_metric)
                        for _, r in arrivals
                    ]
                    for (run, _), stop in zip(arrivals, table.arrive(rung, points), strict=True):
                        if stop:
                            stops[run] = optuna.TrialPruned(f"pruned at epoch {rung}")
                return stops

            def on_results(
                ended: list[tuple[int, TrainResult | Exception]], runs: list[int] = runs
            ) -> None:
                store({runs[run]: tell(runs[run], result) for run, result in ended})

            _, model, options = resolved[members[0]]
            train_population(
                setup_cls(**options),
                data,
                model,
                [resolved[i][0] for i in members],
                on_epoch_end,
                judge=None if rule is None else judge,
                refill=None if rule is None else refill,
                on_results=on_results,
            )
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
