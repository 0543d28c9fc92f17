"""Study files (TOML): loading and validation into a :class:`StudyConfig`.

Everything a study file can hold is checked here, before any storage is touched; a problem
raises :class:`StudyFileError` naming the file, the key and what is allowed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hpsearch.core.aggregators import (
    AIMING_AGGREGATORS,
    INSTALL_HINT,
    POPULATION_REFUSES_JD,
    torchjd_installed,
)
from hpsearch.core.data import (
    Dataset,
    DataSource,
    available_datasets,
    check_dataset,
    dataset_name,
    dataset_task,
    load_dataset,
)
from hpsearch.core.device import check_device_name
from hpsearch.core.knobs import TRAIN_BUDGET, TRAIN_PARAMS, TrainConfig
from hpsearch.core.models import ACTIVATIONS, MODEL_KINDS, ModelSpec
from hpsearch.core.options import Option
from hpsearch.core.setups import Setup, available_setups, get_setup
from hpsearch.core.sources import SHARED_UNIT_DATASETS, TASKS, DataFile, DataFileError
from hpsearch.errors import HpsearchError, StudyFileError
from hpsearch.study.limits import RUN_LIMITS
from hpsearch.study.samplers import BATCH_PRUNER, PRUNERS, SAMPLERS
from hpsearch.study.validation import Checker, ParamSpec, read_toml_file, shown

MODES: tuple[str, ...] = ("scalarized", "pareto")
OBJECTIVES: tuple[str, ...] = ("loss1", "loss2", "metric", "weighted")

# Hyperparameters every study has, with their domains and defaults. Setups add their own.
CORE_PARAMS: dict[str, Option] = {
    **TRAIN_PARAMS,
    "depth": Option("int", 1, low=0, high=16, help="hidden layers of the MLP"),
    "width": Option("int", 64, low=1, high=4096, help="units per hidden layer"),
    "activation": Option("categorical", "relu", choices=tuple(ACTIVATIONS), help="activation"),
}
BUDGET: dict[str, Option] = TRAIN_BUDGET
DATA: dict[str, Option] = {
    "val_fraction": Option("float", 0.2, low=0, high=0.9, low_open=True),
    "test_fraction": Option("float", 0.2, low=0, high=0.9, low_open=True),
    "split_seed": Option("int", 0, low=0, high=2**32 - 1),
    "label_noise": Option("float", 0.0, low=0, high=1, high_open=True),
}
_STUDY_KEYS = (
    "name",
    "batch",
    "description",
    "dataset",
    "setup",
    "model",
    "mode",
    "objective",
    "objective_weights",
    "sampler",
    "pruner",
    "n_trials",
    "seed",
    "timeout",
    "threads",
    "device",
    "imports",
)
_TABLES = ("study", "data", "budget", "params")


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file.

    Attributes mirror the file: ``[study]`` keys, ``[data]``, ``[budget]`` and ``[params]``
    (every hyperparameter, fixed or searched, defaults filled in).
    """

    path: str
    name: str
    dataset: str
    setup: str
    mode: str
    n_trials: int
    model: str = "mlp"
    description: str = ""
    objective: str | None = None
    objective_weights: tuple[float, float] | None = None
    sampler: str = "tpe"
    sampler_options: dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    timeout: float | None = None
    batch: int = 1
    threads: int | None = None
    device: str = "cpu"
    epochs: int = 20
    batch_size: int = 64
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 0
    label_noise: float = 0.0
    params: dict[str, ParamSpec] = field(default_factory=dict)
    imports: tuple[str, ...] = ()
    data_file: DataFile | None = None

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        """Optuna directions: both losses minimized, or the one scalar objective."""
        if self.mode == "pareto":
            return ["minimize", "minimize"]
        return ["maximize" if self.objective == "metric" else "minimize"]

    def identity(self) -> dict[str, Any]:
        """What defines the trials of this study; a stored study must match it to be continued.

        The number of trials, sampler, pruner, seed and timeout may change between runs.
        """
        defaults = self._defaults()
        return {
            # A data file by its content: moved, it is the same study; edited, another.
            "dataset": self.data_file.describe() if self.data_file else self.dataset,
            "setup": self.setup,
            "model": self.model,
            "mode": self.mode,
            "objective": self.objective,
            "objective_weights": list(self.objective_weights) if self.objective_weights else None,
            "budget": {"epochs": self.epochs, "batch_size": self.batch_size},
            "data": {
                "val_fraction": self.val_fraction,
                "test_fraction": self.test_fraction,
                "split_seed": self.split_seed,
                # Only when set, so studies stored before the key existed keep their identity.
                **({"label_noise": self.label_noise} if self.label_noise else {}),
                # Digits' pixels share one scale since 2026-12 (the per-pixel one blew up rare
                # pixels): a study stored with the old features is another study.
                **(
                    {"feature_scale": "one for all pixels"}
                    if self.data_file is None and self.dataset in SHARED_UNIT_DATASETS
                    else {}
                ),
            },
            # Parameters left at their defaults are omitted, so that a new parameter added to
            # hpsearch later does not change the identity of studies stored before it.
            "params": {
                k: p.to_dict()
                for k, p in sorted(self.params.items())
                if p.searched or p.value != defaults[k].default
            },
        }

    def _defaults(self) -> dict[str, Option]:
        return {**CORE_PARAMS, **get_setup(self.setup).options}

    def load_data(self) -> Dataset:
        """The study's dataset, split and scaled as its ``[data]`` table says."""
        return load_dataset(
            self.data_file or self.dataset,
            self.split_seed,
            self.val_fraction,
            self.test_fraction,
            self.label_noise,
        )

    def resolve(
        self, values: dict[str, Any], seed: int | None = None, trial_number: int = 0
    ) -> tuple[TrainConfig, ModelSpec, dict[str, Any]]:
        """Turn one trial's hyperparameter values into the training core's inputs.

        Args:
            values: Every searched parameter's value; fixed ones are taken from the file.
            seed: Training seed (default: the study's seed).
            trial_number: The trial's number, which ``init_seed = "trial"`` derives its seed
                from.

        Returns:
            ``(TrainConfig, ModelSpec, setup options)``.
        """
        full = {k: p.value for k, p in self.params.items() if not p.searched}
        full.update(values)
        # Every knob of TRAIN_PARAMS, by its type there: a knob added to the table is passed
        # on, never left at its default by omission.
        knobs = {k: _typed(full[k], o) for k, o in TRAIN_PARAMS.items() if k != "init_seed"}
        train = TrainConfig(
            **knobs,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed if seed is None else seed,
            init_seed=trial_init_seed(self.seed, trial_number)
            if full["init_seed"] == "trial"
            else full["init_seed"],
        )
        model = ModelSpec(
            kind=self.model,
            depth=int(full["depth"]),
            width=int(full["width"]),
            activation=full["activation"],
        )
        options = {k: v for k, v in full.items() if k not in CORE_PARAMS}
        return train, model, options


def _typed(value: Any, option: Option) -> Any:
    """A parameter's value as its option's type says (TOML and Optuna give ints for floats)."""
    if option.type == "float":
        return float(value)
    if option.type == "int":
        return int(value)
    return value


def trial_init_seed(study_seed: int, trial_number: int) -> int:
    """The initial weights' seed of trial ``trial_number`` under ``init_seed = "trial"``.

    Mixed from both numbers (numpy's SeedSequence) rather than added, so that the studies of
    neighbouring seeds do not share their trials' initialisations.
    """
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])


# --- validation helpers ----------------------------------------------------------------------


MAX_GRID_POINTS = 10_000


def grid_values(params: dict[str, ParamSpec], check: Checker | None = None) -> dict[str, list]:
    """The grid sampler's values of every searched parameter: a categorical's choices, and
    ``low, low + step, …, high`` for a number (which therefore needs a step).

    Raises:
        StudyFileError: With ``check``: a searched number has no step, a log scale, or more
            than ``MAX_GRID_POINTS`` values (an HpsearchError without ``check``).
    """

    def fail(key: str, message: str) -> HpsearchError:
        return check.fail(key, message) if check else HpsearchError(f"{key}: {message}")

    out: dict[str, list] = {}
    for name, p in params.items():
        if not p.searched:
            continue
        if p.type == "categorical":
            out[name] = list(p.choices)
            continue
        if p.step is None or p.log:
            raise fail(
                f"params.{name}",
                "the grid sampler needs a step (and no log scale) on every searched number",
            )
        low, high = p.bounds
        points = (high - low) / p.step + 1
        if not points <= MAX_GRID_POINTS:  # also catches inf and NaN from a tiny step
            raise fail(
                f"params.{name}.step",
                f"the grid sampler would need {points:.3g} values here; "
                f"at most {MAX_GRID_POINTS} per parameter (a larger step)",
            )
        count = int(math.floor(points - 1 + 1e-9)) + 1
        if p.type == "int":
            out[name] = [int(low + i * p.step) for i in range(count)]
        else:  # rounded, so that 0.07 is 0.07 and not 0.07000000000000001
            out[name] = [round(low + i * p.step, 12) for i in range(count)]
    return out


def _limit(name: str, default: int) -> Option:
    low, high = RUN_LIMITS[name]
    return Option("int", default, low=low, high=high)


def _run_imports(check: Checker, raw: Any, base: Path, run: bool = True) -> tuple[str, ...]:
    """Import modules or .py files (relative to the study file) that register setups; with
    ``run=False`` only check that the list is well formed and its files exist."""
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise check.fail(
            "study.imports", f"must be a list of module names or .py paths, got {shown(raw)}"
        )
    for i, item in enumerate(raw):
        key = f"study.imports[{i}]"
        try:
            if item.endswith(".py"):
                file = (base / item).resolve()
                if not file.is_file():
                    raise check.fail(key, f"no such file {str(file)!r}")
                if not run:
                    continue
                mod_name = f"hpsearch_user_{file.stem}_{abs(hash(str(file)))}"
                if mod_name not in sys.modules:
                    spec = importlib.util.spec_from_file_location(mod_name, file)
                    assert spec is not None and spec.loader is not None
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[mod_name] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        del sys.modules[mod_name]
                        raise
            elif run:
                importlib.import_module(item)
        except StudyFileError:
            raise
        except Exception as e:  # the user's code: report it in one line, whatever it raised
            raise check.fail(key, f"importing {item!r} failed: {type(e).__name__}: {e}") from None
    return tuple(raw)


# The keys of a data file's table, `dataset = { path = ..., target = ... }`.
_DATA_FILE_KEYS = ("path", "target", "task", "features")


def _dataset(check: Checker, raw: Any, folder: Path) -> DataSource:
    """``study.dataset``: a built-in or registered name, or a data file's table (its path
    relative to the study file's folder)."""
    if not isinstance(raw, dict):
        return check.string(raw, "study.dataset", available_datasets())
    table = check.table(raw, "study.dataset", _DATA_FILE_KEYS)
    for required in ("path", "target"):
        if required not in table:
            raise check.fail(
                f"study.dataset.{required}",
                'missing (required): dataset = { path = "data.csv", target = "label" }',
            )
    features = table.get("features")
    if features is not None and not (
        isinstance(features, str)
        or (isinstance(features, list) and features and all(isinstance(f, str) for f in features))
    ):
        raise check.fail(
            "study.dataset.features",
            f"must be a list of column names (CSV, Parquet) or an array's name (NPZ), got "
            f"{shown(features)}",
        )
    path = folder / check.string(table["path"], "study.dataset.path")
    target = check.string(table["target"], "study.dataset.target")
    npz = path.suffix.lower() == ".npz"
    if features is not None and (npz != isinstance(features, str) or target in features):
        raise check.fail(
            "study.dataset.features",
            'an NPZ file names its 2-D feature array (features = "x"), a CSV or Parquet '
            'file a list of columns (features = ["a", "b"]), never the target',
        )
    return DataFile(
        path=str(path.resolve()),
        target=target,
        task=check.string(table.get("task", "classification"), "study.dataset.task", TASKS),
        features=tuple(features) if isinstance(features, list) else features,
    )


def load_study_file(path: str | Path, run_imports: bool = True) -> StudyConfig:
    """Read and validate a study file.

    Args:
        path: Path of a TOML study file.
        run_imports: Import what ``study.imports`` lists (user code that registers setups).
            ``hpsearch check`` passes False unless asked: checking a file runs none of its
            code, and a setup only those imports would register is reported as such.

    Returns:
        The validated :class:`StudyConfig`.

    Raises:
        StudyFileError: The file is missing, not TOML, or any key is unknown, of the wrong
            type or out of range; the message names the file, the key and what is allowed.
    """
    path = Path(path)
    check = Checker(str(path))
    doc = read_toml_file(path)
    check.table(doc, "", _TABLES)
    if "study" not in doc:
        raise check.fail("study", "missing table [study]")
    study, setup_cls, source = _read_study(check, doc["study"], path, run_imports)
    data = _read_data(check, doc.get("data", {}))
    budget = _read_options(check, doc.get("budget", {}), "budget", BUDGET)
    params = _read_params(check, doc.get("params", {}), setup_cls, study)
    config = StudyConfig(path=str(path), **study, **data, **budget, params=params)
    _check_data(check, config, setup_cls, source)
    return config


def _read_study(
    check: Checker, raw: Any, path: Path, run_imports: bool
) -> tuple[dict[str, Any], type[Setup], DataSource]:
    """The ``[study]`` table: StudyConfig's fields from it, the setup's class and the data
    source."""
    study = check.table(raw, "study", _STUDY_KEYS)
    for required in ("name", "dataset", "setup", "mode", "n_trials"):
        if required not in study:
            raise check.fail(f"study.{required}", "missing (required)")
    # Checked in the order of the keys' documentation: the first problem is the one named.
    name = check.study_name(study["name"], "study.name")
    description = check.string(study.get("description", ""), "study.description")
    imports = _run_imports(check, study.get("imports", []), path.parent, run_imports)
    source = _dataset(check, study["dataset"], path.parent)
    setup_cls = _setup_class(check, study["setup"], dataset_name(source), imports, run_imports)
    model = check.string(study.get("model", "mlp"), "study.model", MODEL_KINDS)
    mode = check.string(study["mode"], "study.mode", MODES)
    fields = {
        "name": name,
        "description": description,
        "imports": imports,
        "dataset": dataset_name(source),
        "data_file": source if isinstance(source, DataFile) else None,
        "setup": study["setup"],
        "model": model,
        "mode": mode,
        **_read_objective(check, study, mode, setup_cls),
        **_read_search(check, study, mode),
    }
    return fields, setup_cls, source


def _setup_class(
    check: Checker, raw: Any, dataset: str, imports: tuple[str, ...], run_imports: bool
) -> type[Setup]:
    """``study.setup``: a registered setup that takes ``dataset`` (data, or ``"none"``)."""
    setup_name = check.string(raw, "study.setup")
    try:
        setup_cls = get_setup(setup_name)
    except HpsearchError as e:
        hint = ""
        if imports and not run_imports:
            hint = (
                " (it may come from study.imports, which `hpsearch check` runs only with --imports)"
            )
        raise check.fail("study.setup", str(e) + hint) from None
    if setup_cls.needs_data is not None and setup_cls.needs_data == (dataset == "none"):
        analytic = [n for n in available_setups() if get_setup(n).needs_data is False]
        raise check.fail(
            "study.dataset",
            f"setup {setup_name!r} "
            + (
                'trains on data: use a dataset, not "none"'
                if setup_cls.needs_data
                else 'is an analytic problem: use dataset = "none"'
            )
            + f' ("none" goes with the analytic setups: {", ".join(analytic)})',
        )
    return setup_cls


def _read_objective(
    check: Checker, study: dict[str, Any], mode: str, setup_cls: type[Setup]
) -> dict[str, Any]:
    """``study.objective`` and ``study.objective_weights``: a scalarized study's one
    objective; none in pareto mode."""
    loss_help = f"loss1 = {setup_cls.loss_names[0]}, loss2 = {setup_cls.loss_names[1]}"
    if mode != "scalarized":
        for key in ("objective", "objective_weights"):
            if key in study:
                raise check.fail(
                    f"study.{key}",
                    "not allowed in pareto mode, which minimizes both validation losses "
                    f"({loss_help})",
                )
        return {"objective": None, "objective_weights": None}
    if "objective" not in study:
        raise check.fail(
            "study.objective",
            f"missing; scalarized mode needs one of {', '.join(OBJECTIVES)} ({loss_help})",
        )
    objective = check.string(study["objective"], "study.objective", OBJECTIVES)
    if objective != "weighted":
        if "objective_weights" in study:
            raise check.fail("study.objective_weights", "only allowed with objective = 'weighted'")
        return {"objective": objective, "objective_weights": None}
    raw_w = study.get("objective_weights")
    if (
        not isinstance(raw_w, list)
        or len(raw_w) != 2
        or not all(Option("float", 0).contains(w) for w in raw_w)
        or min(raw_w) < 0
        or max(raw_w) == 0
    ):
        raise check.fail(
            "study.objective_weights",
            "objective = 'weighted' needs two non-negative numbers, not both 0, "
            f"[w1, w2] for w1*loss1 + w2*loss2, got {shown(raw_w)}",
        )
    return {"objective": objective, "objective_weights": (float(raw_w[0]), float(raw_w[1]))}


def _read_search(check: Checker, study: dict[str, Any], mode: str) -> dict[str, Any]:
    """The keys of ``[study]`` that say how the search runs: sampler, pruner, trials, seed,
    timeout, population batch and threads."""
    sampler, sampler_options = check.named(
        study.get("sampler", "tpe"), "study.sampler", {k: s.options for k, s in SAMPLERS.items()}
    )
    pruner, pruner_options = check.named(
        study.get("pruner", "none"), "study.pruner", {k: p.options for k, p in PRUNERS.items()}
    )
    if mode == "pareto" and pruner not in ("none", BATCH_PRUNER):
        raise check.fail(
            "study.pruner",
            "Optuna's pruners need one objective: in pareto mode only 'none' or "
            f"'{BATCH_PRUNER}' (across a population batch, batch > 1) is allowed",
        )
    timeout = None
    if "timeout" in study:
        timeout = check.value(
            study["timeout"], "study.timeout", Option("float", 1, low=0, low_open=True)
        )
    threads = None  # None: chosen at run time (hpsearch.core.threads)
    if "threads" in study:
        threads = check.value(study["threads"], "study.threads", _limit("threads", 1))
    return {
        "sampler": sampler,
        "sampler_options": sampler_options,
        "pruner": pruner,
        "pruner_options": pruner_options,
        "n_trials": check.value(study["n_trials"], "study.n_trials", _limit("n_trials", 1)),
        "seed": check.value(study.get("seed", 0), "study.seed", _limit("seed", 0)),
        "timeout": timeout,
        "batch": check.value(study.get("batch", 1), "study.batch", _limit("batch", 1)),
        "threads": threads,
        "device": _read_device(check, study.get("device", "cpu")),
    }


def _read_device(check: Checker, raw: Any) -> str:
    """``study.device``: its form checked here, whether it is there when the run starts."""
    try:
        return check_device_name(raw)
    except HpsearchError as e:
        raise check.fail("study.device", str(e)) from None


def _read_options(
    check: Checker, raw: Any, table: str, options: dict[str, Option]
) -> dict[str, Any]:
    """A table of plain options (``[budget]``, ``[data]``), defaults filled in."""
    given = check.options(raw, table, options)
    return {k: given.get(k, o.default) for k, o in options.items()}


def _read_data(check: Checker, raw: Any) -> dict[str, Any]:
    """The ``[data]`` table: the split's fractions and seed, and the label noise."""
    data = _read_options(check, raw, "data", DATA)
    if data["val_fraction"] + data["test_fraction"] >= 1:
        raise check.fail("data", "val_fraction + test_fraction must be < 1")
    return data


def _read_params(
    check: Checker, raw: Any, setup_cls: type[Setup], study: dict[str, Any]
) -> dict[str, ParamSpec]:
    """The ``[params]`` table: every hyperparameter of the run and of the setup, fixed (its
    default unless given) or searched; at least one searched."""
    domains = {**CORE_PARAMS, **setup_cls.options}
    raw_params = check.table(raw, "params", domains)
    params = {
        k: check.param(raw_params[k], f"params.{k}", k, o)
        if k in raw_params
        else ParamSpec(k, "fixed", value=o.default)
        for k, o in domains.items()
    }
    if not any(p.searched for p in params.values()):
        raise check.fail(
            "params", "nothing to search: give at least one parameter a type and range"
        )
    _check_jd(check, params, study["batch"])
    flood_mode = params["flood_mode"]
    if (flood_mode.value == "sample" or "sample" in flood_mode.choices) and (
        not setup_cls.has_sample_losses()
    ):
        raise check.fail(
            "params.flood_mode",
            f"'sample' (iFlood) needs per-sample task losses, which setup {study['setup']!r} "
            "does not give; allowed here: 'batch'",
        )
    if study["sampler"] == "grid":
        grid_size = math.prod(len(v) for v in grid_values(params, check).values())
        if study["n_trials"] > grid_size:
            raise check.fail(
                "study.n_trials",
                f"{study['n_trials']} is more than the grid's {grid_size} points; allowed: 1 "
                f"to {grid_size}",
            )
    return params


def may_use_jd(method: ParamSpec) -> bool:
    """Whether some trial of the study trains with Jacobian descent (fixed, or a choice)."""
    return method.value == "jd" or "jd" in method.choices


def check_batch_method(config: StudyConfig, batch: int) -> None:
    """Refuse a population batch (``batch`` > 1, the file's or ``--batch``) for a study some of
    whose trials train by Jacobian descent, in one line."""
    if batch > 1 and may_use_jd(config.params["method"]):
        raise HpsearchError(POPULATION_REFUSES_JD)


def _check_jd(check: Checker, params: dict[str, ParamSpec], batch: int) -> None:
    """``method = "jd"`` needs the optional torchjd, trains one trial at a time, and reads
    ``w`` only through an aggregator that takes preference weights."""
    if not may_use_jd(params["method"]):
        return
    if not torchjd_installed():
        raise check.fail("params.method", INSTALL_HINT)
    if batch > 1:
        raise check.fail("study.batch", POPULATION_REFUSES_JD)
    aggregator = params["aggregator"]
    named = aggregator.choices or (aggregator.value,)
    only_jd = params["method"].value == "jd" and not params["method"].choices
    if only_jd and params["w"].searched and not set(named) & set(AIMING_AGGREGATORS):
        raise check.fail(
            "params.w",
            f"searched, but {', '.join(named)} take(s) no preference weight: w is read by "
            f"{', '.join(AIMING_AGGREGATORS)}; to vary a knobless aggregator's runs, search "
            "init_seed",
        )


def _check_data(
    check: Checker, config: StudyConfig, setup_cls: type[Setup], source: DataSource
) -> None:
    """The setup takes this dataset, and the split is possible (rows in every class)."""
    if config.label_noise > 0 and dataset_task(source) != "classification":
        raise check.fail(
            "data.label_noise",
            f"label_noise needs a classification dataset; {config.dataset} is "
            f"{dataset_task(source)}",
        )
    try:
        setup_cls.check_dataset(config.dataset)
        check_dataset(
            source, config.split_seed, config.val_fraction, config.test_fraction,
            config.label_noise,
        )  # fmt: skip
    except DataFileError as e:
        raise check.fail("study.dataset", str(e)) from None
    except HpsearchError as e:
        raise check.fail("data", str(e)) from None
