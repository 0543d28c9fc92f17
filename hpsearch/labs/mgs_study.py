"""Studies of the metric-training estimators: an Optuna study per estimator (MGS tunes σ, α,
λ, n and the learning rate; REINFORCE n and the learning rate; cross-entropy the learning
rate) on split and seed ``seed``, then the best of each re-run on evaluation seeds disjoint
from it (each its own split and initialisation), twice: at the file's epochs, and at equal
wall time (the cheaper estimators get the epochs that fit in the costliest one's time per run,
timed on the runs at the file's epochs). Drawn as metric against wall time; paired differences
between estimators with bootstrap intervals.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from hpsearch.results.stats import bootstrap_interval
from hpsearch.study import keys
from hpsearch.study.limits import RUN_LIMITS
from hpsearch.study.validation import read_table_file


@dataclass(frozen=True)
class MGSStudyConfig:
    """A validated ``[mgs]`` file: what to train, the budget, and the seeds.

    Attributes:
        path, name: The file, and the prefix of its Optuna studies (``<name>-<estimator>``).
        dataset, metric: A classification dataset and the metric to raise.
        depth, width: The MLP.
        epochs, batch_size: Budget of one training run.
        n_trials: Trials of each estimator's study.
        eval_seeds: How many seeds the best configuration of each estimator is re-run with:
            ``seed + 1``, ``seed + 2``, …, each setting the split and the initialisation (the
            tuning used ``seed``'s, so no evaluation run saw the data split it was tuned on).
        seed: Seed of the samplers, and the split and initialisation of the tuning runs.
        estimators: Which estimators to compare.
        threads: Torch threads (default: hpsearch's choice; ``--threads`` beats it).
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
    eval_seeds: int = 5
    seed: int = 0
    estimators: tuple[str, ...] = ESTIMATORS
    threads: int | None = None


_NUMBERS = {  # the integer keys and their ranges (defaults: MGSStudyConfig's)
    "depth": Option("int", 1, low=0, high=8),
    "width": Option("int", 64, low=1, high=1024),
    "epochs": Option("int", 15, *RUN_LIMITS["epochs"]),
    "batch_size": Option("int", 64, low=1, high=100_000),
    "n_trials": Option("int", 20, *RUN_LIMITS["n_trials"]),
    "eval_seeds": Option("int", 5, low=1, high=100),
    "seed": Option("int", 0, low=0, high=2**32 - 1),
    "threads": Option("int", 1, *RUN_LIMITS["threads"]),  # absent: hpsearch's choice
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
    """The best configuration of one estimator and its re-runs over the evaluation seeds.

    Attributes:
        runs: At the file's epochs, one per evaluation seed.
        timed_runs: At ``timed_epochs``, the epochs that fit in the costliest estimator's wall
            time per run (``runs`` again for that estimator).
        seconds_per_epoch: Median over its runs at the file's epochs.
    """

    estimator: str
    params: dict[str, Any]
    runs: list[MGSResult]
    study_name: str
    timed_runs: list[MGSResult] = field(default_factory=list)
    timed_epochs: int = 0
    seconds_per_epoch: float = math.nan


def eval_seeds(config: MGSStudyConfig) -> list[int]:
    """The evaluation seeds: after the tuning seed, never it."""
    return [config.seed + 1 + s for s in range(config.eval_seeds)]


def _split(config: MGSStudyConfig, seed: int):
    return load_dataset(config.dataset, seed)


def run_mgs_study(
    config: MGSStudyConfig,
    storage: str | optuna.storages.BaseStorage,
    out: str | Path,
    progress: Callable[[str], None] | None = print,
) -> list[EstimatorSummary]:
    """Tune each estimator (or continue its stored study), re-run the best over the seeds,
    and write ``<name>.png`` (validation metric against wall time) and ``<name>.md``."""
    from hpsearch.labs.figures import plot_metric_against_time

    names = [f"{config.name}-{estimator}" for estimator in config.estimators]
    check_stored_budgets(storage, names, {"epochs": config.epochs})
    summaries = [_tune(config, storage, estimator, progress) for estimator in config.estimators]
    summaries = _at_equal_wall_time(config, summaries, progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_metric_against_time(summaries, config.metric, out / f"{config.name}.png")
    (out / f"{config.name}.md").write_text(mgs_table(config, summaries))
    return summaries


def _base_config(config: MGSStudyConfig) -> tuple[ModelSpec, MGSConfig]:
    """The model and the run settings every estimator's runs share."""
    model = ModelSpec(depth=config.depth, width=config.width)
    base = MGSConfig(
        metric=config.metric,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    return model, base


def _tune(
    config: MGSStudyConfig,
    storage: str | optuna.storages.BaseStorage,
    estimator: str,
    progress: Callable[[str], None] | None,
) -> EstimatorSummary:
    """Tune one estimator on the study's split, then re-run its best over the seeds."""
    data = _split(config, config.seed)
    model, base = _base_config(config)
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

    def objective(trial: optuna.Trial) -> float:
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
        train_metric(_split(config, e), model, replace(base, estimator=estimator, seed=e, **best))
        for e in eval_seeds(config)
    ]
    # Timed on the evaluation runs (warm: the tuning ran first), the median of them.
    per_epoch = statistics.median(r.seconds[-1] for r in runs) / config.epochs
    if progress is not None:
        tests = [r.test for r in runs]
        progress(
            f"{estimator:<13} best val {study.best_value:.4f}; test {config.metric} "
            f"{statistics.mean(tests):.4f} over {len(runs)} evaluation seeds, "
            f"{statistics.mean(r.seconds[-1] for r in runs):.1f} s a run"
        )
    return EstimatorSummary(estimator, best, runs, name, seconds_per_epoch=per_epoch)


def _at_equal_wall_time(
    config: MGSStudyConfig,
    summaries: list[EstimatorSummary],
    progress: Callable[[str], None] | None,
) -> list[EstimatorSummary]:
    """Every estimator re-run for the epochs that fit in the costliest one's wall time."""
    model, base = _base_config(config)
    budget = max(s.seconds_per_epoch for s in summaries) * config.epochs
    timed = []
    for s in summaries:
        epochs = max(config.epochs, round(budget / s.seconds_per_epoch))
        runs = s.runs
        if epochs != config.epochs:
            runs = [
                train_metric(
                    _split(config, e),
                    model,
                    replace(base, estimator=s.estimator, seed=e, epochs=epochs, **s.params),
                )
                for e in eval_seeds(config)
            ]
        timed.append(replace(s, timed_runs=runs, timed_epochs=epochs))
        if progress is not None and epochs != config.epochs:
            progress(
                f"{s.estimator:<13} at equal wall time ({epochs} epochs): test {config.metric} "
                f"{statistics.mean(r.test for r in runs):.4f}"
            )
    return timed


def paired_differences(
    summaries: list[EstimatorSummary], timed: bool = True
) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Per pair of estimators (each against every later one in the file's order): the mean
    per-seed difference of the test metric and its 95% bootstrap interval."""
    out = {}
    for i, a in enumerate(summaries):
        for b in summaries[i + 1 :]:
            ra, rb = (s.timed_runs if timed else s.runs for s in (a, b))
            out[(a.estimator, b.estimator)] = bootstrap_interval(
                [x.test - y.test for x, y in zip(ra, rb, strict=True)]
            )
    return out


def mgs_table(config: MGSStudyConfig, summaries: list[EstimatorSummary]) -> str:
    """Markdown: each estimator's tuned parameters, test metric (mean ± sd) at equal epochs
    and at equal wall time, time per run, and the paired differences."""
    seeds = eval_seeds(config)
    lines = [
        f"# Training for {config.metric} on {config.dataset}: MGS vs REINFORCE vs cross-entropy",
        "",
        f"Made by `hpsearch mgs {config.path}`: MLP depth {config.depth}, width "
        f"{config.width}, {config.epochs} epochs, batch {config.batch_size}; {config.n_trials} "
        f"TPE trials per estimator on validation {config.metric} (split and seed "
        f"{config.seed}), then the best configuration re-run with evaluation seeds "
        f"{seeds[0]}–{seeds[-1]} (each its own split and initialisation), at {config.epochs} "
        "epochs and at equal wall time: every estimator gets the epochs that fit in the "
        "costliest one's time per run (time per epoch: the median of its runs at "
        f"{config.epochs} epochs). "
        "Mean ± sample sd over the evaluation seeds.",
        "",
        f"| estimator | test {config.metric}, {config.epochs} epochs | val {config.metric} "
        f"| epochs at equal time | test {config.metric}, equal time | s / epoch | tuned |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in s.params.items()
        )
        lines.append(
            f"| {s.estimator} | {mean_sd([r.test for r in s.runs])} "
            f"| {mean_sd([r.val for r in s.runs])} | {s.timed_epochs} "
            f"| {mean_sd([r.test for r in s.timed_runs])} | {s.seconds_per_epoch:.3f} | {shown} |"
        )
    if len(summaries) > 1 and len(seeds) > 1:
        lines += [
            "",
            f"Paired differences of test {config.metric} (per evaluation seed; mean [95% "
            "bootstrap interval]):",
            "",
            "| pair | equal epochs | equal wall time |",
            "|---|---|---|",
        ]
        plain, timed = paired_differences(summaries, False), paired_differences(summaries)
        for pair in plain:
            lines.append(
                f"| {pair[0]} − {pair[1]} | {_interval(plain[pair])} | {_interval(timed[pair])} |"
            )
    return "\n".join(lines) + "\n"


def _interval(v: tuple[float, float, float]) -> str:
    return f"{v[0]:+.4f} [{v[1]:+.4f}, {v[2]:+.4f}]"
