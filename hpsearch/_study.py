"""Optuna studies from study files: storage, sampler, pruner, and the run loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from hpsearch._config import StudyConfig
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


def open_storage(url: str, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """Open an Optuna storage by URL, with a one-line error when it cannot be reached.

    Args:
        url: Any storage URL Optuna accepts (``sqlite:///file.db``, ``postgresql://…``).
        must_exist: For SQLite, refuse to create a new empty database file (for read-only
            commands such as ``list`` and ``show``).

    Returns:
        The storage.

    Raises:
        HpsearchError: The URL is malformed, its driver is missing or it cannot be reached.
    """
    if not isinstance(url, str) or "://" not in url:
        raise HpsearchError(
            f"storage {url!r} is not a URL; use e.g. sqlite:///hpsearch.db or "
            "postgresql://user:password@host/db"
        )
    if must_exist and url.startswith("sqlite:///"):
        file = Path(url[len("sqlite:///") :])
        if not file.is_file():
            raise HpsearchError(
                f"storage {url!r}: no database file at {str(file)!r}; run "
                "`hpsearch run STUDY_FILE` first or pass --storage"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(url)
    except Exception as e:  # SQLAlchemy/driver errors of every kind: report one line
        raise HpsearchError(f"cannot open storage {url!r}: {_one_line(e)}") from None
    if url.startswith("sqlite:"):
        _tune_sqlite(storage.engine)
    return storage


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
    raise HpsearchError(f"unknown sampler {name!r}")


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
    names = optuna.get_all_study_names(storage)
    if config.name in names:
        study = optuna.load_study(study_name=config.name, storage=storage)
        stored = study.user_attrs.get(_ATTR)
        if stored is None:
            raise HpsearchError(
                f"study {config.name!r} already exists in the storage and was not made by "
                "hpsearch; choose another [study] name"
            )
        diff = _describe_difference(stored["identity"], config.identity())
        if diff:
            raise HpsearchError(
                f"study {config.name!r} in the storage was made from a different definition: "
                f"{diff}; give the changed study a new [study] name"
            )
        return study
    attrs = _study_attrs(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            study_name=config.name, storage=storage, directions=config.directions
        )
        study.set_metric_names(metric_names(config, attrs))
    study.set_user_attr(_ATTR, attrs)
    return study


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

    def __init__(self, study: optuna.Study, target: int, done: int, enabled: bool) -> None:
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


def run_study(
    config: StudyConfig,
    storage: str = DEFAULT_STORAGE,
    n_trials: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    progress: bool = True,
    batch: int | None = None,
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
    try:
        study = create_or_load_study(config, open_storage(storage))
        trials = study.get_trials(deepcopy=False)
        done = sum(counts_toward_target(t) for t in trials)
        if done >= target:
            return RunSummary(config.name, target, done, done, 0)
        # Offset the seed by the trials already stored, so that a continued run does not
        # replay the first run's random draws, and a run from scratch is reproducible.
        study.sampler = make_sampler(config, config.seed + len(trials))
        study.pruner = make_pruner(config)
        progress_bar = _Progress(study, target, done, progress)
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
                study.optimize(
                    make_objective(config, data),
                    n_trials=target - done,
                    timeout=timeout,
                    callbacks=[progress_bar],
                )
    finally:
        if progress_bar is not None:
            progress_bar.bar.close()
        optuna_logger.setLevel(level)
    after = sum(counts_toward_target(t) for t in study.get_trials(deepcopy=False))
    return RunSummary(config.name, target, done, after, progress_bar.failed)
