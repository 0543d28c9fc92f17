"""Where Optuna meets the training core: one trial → hyperparameters → train → values and attrs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
import torch

from hpsearch._compat import (
    CONSTRAINTS_KEY,
    trial_id,
)
from hpsearch.core.data import Dataset
from hpsearch.core.knobs import TrainConfig
from hpsearch.core.setups import get_setup
from hpsearch.core.train import EpochRecord, TrainResult, train
from hpsearch.errors import DivergedError
from hpsearch.study import keys
from hpsearch.study.config import StudyConfig
from hpsearch.study.persist import (
    set_user_attrs,
)
from hpsearch.study.validation import ParamSpec


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


def record_start(trial: optuna.Trial, config: TrainConfig, device: torch.device) -> None:
    """Record what a run's results depend on besides its parameters, as it starts (so a
    pruned or diverged trial has it too): the batch order's seed, its initial weights' (which
    differ between trials under ``init_seed = "trial"`` or a searched ``init_seed``), and the
    device it trains on."""
    set_user_attrs(trial, {
        keys.TRAIN_SEED: config.seed,
        keys.INIT_SEED: config.weights_seed,
        keys.DEVICE: str(device),
    })  # fmt: skip


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
        record_start(trial, train_config, data.device)

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
