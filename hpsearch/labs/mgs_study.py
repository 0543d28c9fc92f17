"""Studies of the metric-training estimators: an Optuna study per estimator (MGS tunes σ, α,
λ, n and the learning rate; REINFORCE n and the learning rate; cross-entropy the learning
rate), then the best of each re-run over several seeds, drawn as metric against wall time.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna

from hpsearch.core.data import DATASETS, load_dataset
from hpsearch.core.models import ModelSpec
from hpsearch.core.options import Option
from hpsearch.errors import HpsearchError
from hpsearch.labs.budget import check_budget, check_stored_budgets, trials_to_run
from hpsearch.labs.mgs import ESTIMATORS, METRICS, MGSConfig, MGSResult, train_metric
from hpsearch.results.report import mean_sd
from hpsearch.study import keys
from hpsearch.study.config import read_table_file
from hpsearch.study.limits import RUN_LIMITS


@dataclass(frozen=True)
class MGSStudyConfig:
    """A validated ``[mgs]`` file: what to train, the budget, and the seeds.

    Attributes:
        path, name: The file, and the prefix of its Optuna studies (``<name>-<estimator>``).
        dataset, metric: A classification dataset and the metric to raise.
        depth, width: The MLP.
        epochs, batch_size: Budget of one training run.
        n_trials: Trials of each estimator's study.
        eval_seeds: Seeds the best configuration of each estimator is re-run with.
        seed: Seed of the samplers (and of the first evaluation run).
        estimators: Which estimators to compare.
    """

    path: str
    name: str
    dataset: str = "digits"
    metric: str = "macro_f1"
    depth: int = 1
    width: int = 64
    epochs: int = 15
    batch_size: int = 64
    n_trials: int = 20
    eval_seeds: int = 3
    seed: int = 0
    estimators: tuple[str, ...] = ESTIMATORS


_NUMBERS = {  # the integer keys and their ranges (defaults: MGSStudyConfig's)
    "depth": Option("int", 1, low=0, high=8),
    "width": Option("int", 64, low=1, high=1024),
    "epochs": Option("int", 15, *RUN_LIMITS["epochs"]),
    "batch_size": Option("int", 64, low=1, high=100_000),
    "n_trials": Option("int", 20, *RUN_LIMITS["n_trials"]),
    "eval_seeds": Option("int", 3, low=1, high=100),
    "seed": Option("int", 0, low=0, high=2**32 - 1),
}
_CLASSIFICATION = tuple(d for d in DATASETS if d not in ("diabetes", "none"))
_KEYS = ("name", "dataset", "metric", "estimators", *_NUMBERS)


def load_mgs_file(path: str | Path) -> MGSStudyConfig:
    """Read and validate an ``[mgs]`` study file.

    Raises:
        StudyFileError: Missing file, bad TOML, an unknown key or a bad value; the message
            names the file, the key and what is allowed.
    """
    check, raw = read_table_file(path, "mgs", _KEYS)
    if "name" not in raw:
        raise check.fail("mgs.name", "missing (required)")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"mgs.{key}"
        if key == "name":
            values[key] = check.study_name(value, dotted)
        elif key == "dataset":
            values[key] = check.string(value, dotted, _CLASSIFICATION)
        elif key == "metric":
            values[key] = check.string(value, dotted, METRICS)
        elif key == "estimators":
            values[key] = check.names(value, dotted, ESTIMATORS)
        else:
            values[key] = check.value(value, dotted, _NUMBERS[key])
    return MGSStudyConfig(path=str(path), **values)


def suggest(trial: optuna.Trial, estimator: str) -> dict[str, Any]:
    """The searched hyperparameters of an estimator."""
    params: dict[str, Any] = {"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}
    if estimator == "reinforce":
        params["n"] = trial.suggest_int("n", 2, 32, log=True)
    if estimator == "mgs":
        params["n"] = trial.suggest_int("n", 2, 16, log=True)
        params["sigma"] = trial.suggest_float("sigma", 0.05, 5.0, log=True)
        params["alpha"] = trial.suggest_float("alpha", 1e-3, 1.0, log=True)
        params["mix"] = trial.suggest_float("mix", 0.0, 1.0)
    return params


@dataclass(frozen=True)
class EstimatorSummary:
    """The best configuration of one estimator and its re-runs over the evaluation seeds."""

    estimator: str
    params: dict[str, Any]
    runs: list[MGSResult]
    study_name: str


def run_mgs_study(
    config: MGSStudyConfig,
    storage: str | optuna.storages.BaseStorage,
    out: str | Path,
    progress: Callable[[str], None] | None = print,
) -> list[EstimatorSummary]:
    """Tune each estimator (or continue its stored study), re-run the best over the seeds,
    and write ``<name>.png`` (validation metric against wall time) and ``<name>.md``."""
    from hpsearch.results.plots import plot_metric_against_time

    names = [f"{config.name}-{estimator}" for estimator in config.estimators]
    check_stored_budgets(storage, names, {"epochs": config.epochs})
    data = load_dataset(config.dataset)
    model = ModelSpec(depth=config.depth, width=config.width)
    base = MGSConfig(
        metric=config.metric,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    summaries = []
    for estimator in config.estimators:
        name = f"{config.name}-{estimator}"
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=8),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([f"val_{config.metric}"])
        # What `hpsearch list` shows for this study.
        study.set_user_attr(keys.LAB_DATASET, config.dataset)
        study.set_user_attr(keys.LAB_ESTIMATOR, estimator)
        study.set_user_attr(keys.LAB_METRIC, config.metric)
        check_budget(study, {"epochs": config.epochs})

        def objective(trial: optuna.Trial, estimator: str = estimator) -> float:
            run = train_metric(
                data, model, replace(base, estimator=estimator, **suggest(trial, estimator))
            )
            trial.set_user_attr(keys.LAB_SECONDS, run.seconds[-1])
            trial.set_user_attr(keys.LAB_TEST, run.test)
            if not math.isfinite(run.val):  # failed by itself: counts, as a diverged run
                trial.set_user_attr(keys.FAIL_REASON, "non-finite validation metric")
                raise HpsearchError(f"{estimator}: non-finite validation metric")
            return run.val

        remaining = trials_to_run(study, config.n_trials)  # the target counts the stored ones
        if remaining > 0:
            study.optimize(objective, n_trials=remaining, catch=(HpsearchError,))
        best = dict(study.best_trial.params)
        runs = [
            train_metric(
                data, model, replace(base, estimator=estimator, seed=config.seed + s, **best)
            )
            for s in range(config.eval_seeds)
        ]
        summaries.append(EstimatorSummary(estimator, best, runs, name))
        if progress is not None:
            tests = [r.test for r in runs]
            progress(
                f"{estimator:<13} best val {study.best_value:.4f}; test {config.metric} "
                f"{statistics.mean(tests):.4f} over {len(runs)} seeds, "
                f"{statistics.mean(r.seconds[-1] for r in runs):.1f} s a run"
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_metric_against_time(summaries, config.metric, out / f"{config.name}.png")
    (out / f"{config.name}.md").write_text(mgs_table(config, summaries))
    return summaries


def mgs_table(config: MGSStudyConfig, summaries: list[EstimatorSummary]) -> str:
    """Markdown: each estimator's tuned parameters, test metric (mean ± sd) and time."""
    lines = [
        f"# Training for {config.metric} on {config.dataset}: MGS vs REINFORCE vs cross-entropy",
        "",
        f"Made by `hpsearch mgs {config.path}`: MLP depth {config.depth}, width "
        f"{config.width}, {config.epochs} epochs, batch {config.batch_size}; {config.n_trials} "
        f"TPE trials per estimator on validation {config.metric}, then the best configuration "
        f"re-run with {config.eval_seeds} seeds.",
        "",
        f"| estimator | test {config.metric} | val {config.metric} | s / run | tuned |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.params.items()
        )
        lines.append(
            f"| {s.estimator} | {mean_sd([r.test for r in s.runs])} "
            f"| {mean_sd([r.val for r in s.runs])} "
            f"| {statistics.mean(r.seconds[-1] for r in s.runs):.2f} | {shown} |"
        )
    return "\n".join(lines) + "\n"
