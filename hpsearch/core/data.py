"""Datasets as seeded, stratified, scaled tensor splits: scikit-learn's small real datasets,
your own data files and registered loaders (:mod:`hpsearch.core.sources`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch._lazy import lazy_import
from hpsearch.core.sources import (
    SHARED_UNIT_DATASETS,
    SKLEARN_DATASETS,
    DataFile,
    Rows,
    registered_dataset,
    registered_names,
    rows_digest,
)
from hpsearch.errors import HpsearchError, did_you_mean

if TYPE_CHECKING:
    import torch
else:  # torch starts when data is loaded, not when a study file is checked
    torch = lazy_import("torch", globals())

_LOADERS = SKLEARN_DATASETS

# The built-in datasets. "none": no data, for analytic problems (setups whose losses depend on
# the parameters only); one dummy row in every split, so each epoch is a single full-batch step.
DATASETS: tuple[str, ...] = (*_LOADERS, "none")

DataSource = str | DataFile
"""A dataset: a built-in or registered name (:func:`register_dataset`), or a data file."""


def available_datasets() -> tuple[str, ...]:
    """The names a study file may give: the built-in datasets, then the registered ones."""
    return (*DATASETS, *registered_names())


@dataclass(frozen=True)
class Split:
    """Features ``x`` (float32, n × d) and targets ``y`` (int64 labels or float32 values)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device) -> Split:
        """The split on ``device`` (itself when it is there already)."""
        if self.x.device == device and self.y.device == device:
            return self
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """A dataset split into train/validation/test, scaled with train statistics only.

    Attributes:
        name: Dataset name: one of :data:`DATASETS`, a registered name, or a data file's name.
        task: ``"classification"``, ``"regression"``, or ``"none"`` (no data).
        n_classes: Number of classes (0 for regression).
        feature_names: One name per input column.
        train, val, test: The three splits.
        feature_mean, feature_scale: Train statistics used to standardize ``x``;
            ``x * feature_scale + feature_mean`` recovers the raw features.
        target_mean, target_scale: Train statistics used to standardize a regression target
            (0 and 1 for classification).
    """

    name: str
    task: str
    n_classes: int
    feature_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    feature_mean: torch.Tensor
    feature_scale: torch.Tensor
    target_mean: float = 0.0
    target_scale: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def device(self) -> torch.device:
        """Where the splits lie, and so where training on them runs."""
        return self.train.x.device

    def to(self, device: torch.device) -> Dataset:
        """The dataset with its splits and statistics on ``device``: moved once, before
        training, so no step copies data."""
        return dataclasses.replace(
            self,
            train=self.train.to(device),
            val=self.val.to(device),
            test=self.test.to(device),
            feature_mean=self.feature_mean.to(device),
            feature_scale=self.feature_scale.to(device),
        )


def _stratify_labels(y: np.ndarray, task: str, n_bins: int = 5) -> np.ndarray:
    """Labels to stratify on: the class, or the quantile bin of a regression target."""
    if task == "classification":
        return y
    edges = np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.digitize(y, edges)


def _check_arguments(
    name: DataSource, val_fraction: float, test_fraction: float, label_noise: float
) -> None:
    if isinstance(name, str) and name not in available_datasets():
        names = available_datasets()
        raise HpsearchError(
            f"unknown dataset {name!r}; available: {', '.join(names)} (or a data file: "
            "dataset = { path = ..., target = ... })" + did_you_mean(name, names)
        )
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise HpsearchError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
            "(0, 1) and sum to less than 1"
        )
    if not 0 <= label_noise < 1:
        raise HpsearchError(f"label_noise={label_noise} must be in [0, 1)")


def dataset_task(name: DataSource) -> str:
    """``"classification"``, ``"regression"`` or ``"none"``: what dataset ``name`` is."""
    if isinstance(name, DataFile):
        return name.task
    registered = registered_dataset(name)
    if registered is not None:
        return registered.task
    return _LOADERS[name][1] if name in _LOADERS else "none"


def dataset_name(name: DataSource) -> str:
    """What tables and setups call the dataset (a data file: its file name)."""
    return name.name if isinstance(name, DataFile) else name


def check_dataset(
    name: DataSource,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    label_noise: float = 0.0,
) -> None:
    """Raise the error :func:`load_dataset` would raise for these arguments, without building
    tensors: the split itself is made (scikit-learn, no torch), so a fraction too small to
    hold every class is found."""
    _check_arguments(name, val_fraction, test_fraction, label_noise)
    if label_noise > 0 and dataset_task(name) != "classification":
        raise HpsearchError(
            _NOISE_NEEDS_CLASSES.format(name=dataset_name(name), task=dataset_task(name))
        )
    if name != "none":
        _split_rows(name, int(seed), float(val_fraction), float(test_fraction))


_NOISE_NEEDS_CLASSES = "label_noise needs a classification dataset; {name} is {task}"


def load_dataset(
    name: DataSource,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    label_noise: float = 0.0,
) -> Dataset:
    """Load a dataset as seeded, stratified, standardized tensor splits.

    Args:
        name: One of :data:`DATASETS`, a name given to :func:`register_dataset`, or a
            :class:`DataFile`.
        seed: Seed of the split; the same seed always gives the same rows in each split.
        val_fraction: Fraction of all rows in the validation split.
        test_fraction: Fraction of all rows in the test split.
        label_noise: Fraction of the training labels replaced by another class (symmetric
            label noise, see :func:`with_label_noise`); validation and test stay clean.

    Returns:
        The :class:`Dataset`. Features are standardized with the train split's mean and
        standard deviation; a regression target is standardized the same way so that its MSE
        is on the scale of 1 (R² is unaffected).

    Raises:
        HpsearchError: Unknown name, fractions that leave no training data, or a data file or
            loader whose rows cannot be used (see :func:`hpsearch.core.sources.check_rows`).
    """
    _check_arguments(name, val_fraction, test_fraction, label_noise)
    # Cached per arguments: every trial of a study shares one copy, so treat it as read-only.
    if label_noise > 0:
        return _noisy_cached(
            name, int(seed), float(val_fraction), float(test_fraction), label_noise
        )
    return _load_cached(name, int(seed), float(val_fraction), float(test_fraction))


def with_label_noise(data: Dataset, rate: float, seed: int = 0) -> Dataset:
    """The dataset with symmetric label noise on its training split.

    Exactly ``round(rate · n_train)`` training rows, drawn with ``seed``, get a label drawn
    uniformly from the *other* classes (the flipped-label protocol of the flooding paper's
    noisy-label experiments). Validation and test labels stay clean, so test accuracy measures
    what was learned of the true labels.

    Raises:
        HpsearchError: The dataset is not a classification task, or ``rate`` is not in [0, 1).
    """
    if data.task != "classification":
        raise HpsearchError(_NOISE_NEEDS_CLASSES.format(name=data.name, task=data.task))
    if not 0 <= rate < 1:
        raise HpsearchError(f"label_noise={rate} must be in [0, 1)")
    gen = torch.Generator().manual_seed(seed + 7919)  # its own stream, apart from the split's
    y = data.train.y.clone()
    rows = torch.randperm(len(y), generator=gen)[: round(rate * len(y))]
    # An offset in 1..C-1 added modulo C gives each other class with the same probability.
    offset = torch.randint(1, data.n_classes, (len(rows),), generator=gen)
    y[rows] = (y[rows] + offset) % data.n_classes
    return dataclasses.replace(data, train=Split(x=data.train.x, y=y))


@functools.lru_cache(maxsize=32)
def _noisy_cached(
    name: DataSource, seed: int, val_fraction: float, test_fraction: float, rate: float
) -> Dataset:
    return with_label_noise(_load_cached(name, seed, val_fraction, test_fraction), rate, seed)


_Rows = tuple[np.ndarray, np.ndarray, Any, tuple[np.ndarray, np.ndarray, np.ndarray]]
"""Raw features, raw targets, feature names, and the rows of train, validation and test."""

# Where made splits are kept between processes (default: $XDG_CACHE_HOME/hpsearch, else
# ~/.cache/hpsearch); "off" keeps none.
CACHE_ENV = "HPSEARCH_CACHE_DIR"


def _cache_file(name: str, seed: int, val_fraction: float, test_fraction: float) -> Path | None:
    """The file that keeps this split, or None (caching off, or scikit-learn not installed).

    ``name`` is a built-in dataset's name or the key of other rows' content
    (:func:`_source_key`): a data file edited in place gets a new split, not the old one."""
    root = os.environ.get(CACHE_ENV)
    if root == "off":
        return None
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "hpsearch")
    try:  # the split is scikit-learn's: a new version may draw other rows
        version = importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return None
    key = f"{name}-seed{seed}-val{val_fraction!r}-test{test_fraction!r}-sklearn{version}"
    return Path(root).expanduser() / "splits" / f"{key}.npz"


def _read_cached(path: Path) -> _Rows | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            names = tuple(str(n) for n in f["feature_names"]) if f["has_names"] else None
            return f["x"], f["y"], names, (f["train"], f["val"], f["test"])
    except Exception:  # missing, half-written by a killed process, another format: remake
        return None


def _write_cached(path: Path, rows: _Rows) -> None:
    x, y, names, (train, val, test) = rows
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a process reading it meanwhile sees all or nothing.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as out:
            np.savez(
                out, x=x, y=y, train=train, val=val, test=test, has_names=names is not None,
                feature_names=np.array(list(names) if names is not None else [], dtype=str),
            )  # fmt: skip
        os.replace(tmp, path)
    except OSError:  # a read-only or full home: the cache only saves start-up time
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _source_key(name: DataSource) -> tuple[str, Rows | None]:
    """The split cache's name of a dataset, and its rows when they had to be read for it."""
    if isinstance(name, DataFile):
        features = (
            name.features if isinstance(name.features, str) else ",".join(name.features or ())
        )
        tail = hashlib.sha256(f"{name.target}\0{name.task}\0{features}".encode()).hexdigest()
        return f"file-{name.digest()}-{tail[:8]}", None
    registered = registered_dataset(name)
    if registered is not None:
        rows = registered.read()
        return f"registered-{rows_digest(rows)}-{registered.task}", rows
    return name, None


@functools.lru_cache(maxsize=32)
def _split_rows(name: DataSource, seed: int, val_fraction: float, test_fraction: float) -> _Rows:
    """The raw features and targets of ``name``, its feature names, and the row indices of the
    train, validation and test splits (stratified, seeded).

    Made by scikit-learn, whose import costs each process about 1.5 s (as long as torch's), and
    kept in a file (:data:`CACHE_ENV`) that the next process reads instead: the same arrays,
    without importing scikit-learn (every worker of a study, every ``check`` and ``run``).
    """
    key, read = _source_key(name)
    path = _cache_file(key, seed, val_fraction, test_fraction)
    rows = _read_cached(path) if path is not None else None
    if rows is None:
        rows = _make_split_rows(name, seed, val_fraction, test_fraction, read)
        if path is not None:
            _write_cached(path, rows)
    return rows


def _read_rows(name: DataSource) -> tuple[np.ndarray, np.ndarray, Any]:
    """The raw rows of a dataset: a data file's or a registered loader's (checked), or
    scikit-learn's bundled files."""
    if isinstance(name, DataFile):
        return name.read()
    registered = registered_dataset(name)
    if registered is not None:
        return registered.read()
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, _LOADERS[name][0])()
    names = getattr(bunch, "feature_names", None)
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target), names


def _make_split_rows(
    name: DataSource,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    read: Rows | None = None,
) -> _Rows:
    from sklearn.model_selection import train_test_split

    x, y, names = read if read is not None else _read_rows(name)
    task = dataset_task(name)
    idx = np.arange(len(x))
    strat = _stratify_labels(y, task)
    try:
        idx_rest, idx_test = train_test_split(
            idx, test_size=test_fraction, random_state=seed, stratify=strat
        )
        idx_train, idx_val = train_test_split(
            idx_rest,
            test_size=val_fraction / (1 - test_fraction),
            random_state=seed,
            stratify=strat[idx_rest],
        )
    except ValueError as e:  # a split too small to hold every class
        raise HpsearchError(
            f"cannot split {dataset_name(name)} ({len(x)} rows) into val_fraction="
            f"{val_fraction}, test_fraction={test_fraction} with every class in each split: {e}"
        ) from None
    return x, y, names, (idx_train, idx_val, idx_test)


def _feature_scale(x_train: np.ndarray, shared: bool) -> np.ndarray:
    """What each feature is divided by after centering: its train-split std, or, for features
    that share one unit (:data:`SHARED_UNIT_DATASETS`), one scale for all of them.

    The shared scale is the root mean square of the features' stds: the features keep their
    relative sizes (a faint pixel stays faint), each stays within ±(range / scale) (digits:
    about ±3.7), and the inputs' total variance is about what per-feature standardization gave
    (the number of features, against the number of non-constant ones), so learning rates
    chosen for that still fit."""
    std = x_train.std(axis=0)
    if shared:
        return np.full_like(std, max(float(np.sqrt(np.mean(std**2))), 1e-12))
    return np.where(std == 0, 1.0, std)  # a constant feature: left at 0 after centering


@functools.lru_cache(maxsize=32)
def _load_cached(name: DataSource, seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    if name == "none":
        dummy = Split(x=torch.zeros(1, 1), y=torch.zeros(1))
        return Dataset(
            name="none",
            task="none",
            n_classes=0,
            feature_names=("dummy",),
            train=dummy,
            val=dummy,
            test=dummy,
            feature_mean=torch.zeros(1),
            feature_scale=torch.ones(1),
        )
    x, y, names, (idx_train, idx_val, idx_test) = _split_rows(
        name, seed, val_fraction, test_fraction
    )
    task = dataset_task(name)
    mean = x[idx_train].mean(axis=0)
    scale = _feature_scale(x[idx_train], shared=name in SHARED_UNIT_DATASETS)
    xs = (x - mean) / scale

    if task == "classification":
        yt = torch.as_tensor(y, dtype=torch.int64)
        n_classes = int(y.max()) + 1
        t_mean, t_scale = 0.0, 1.0
    else:
        t_mean, t_scale = float(y[idx_train].mean()), float(y[idx_train].std())
        yt = torch.as_tensor((y - t_mean) / t_scale, dtype=torch.float32)
        n_classes = 0
    xt = torch.as_tensor(xs, dtype=torch.float32)

    def split(rows: np.ndarray) -> Split:
        r = torch.as_tensor(np.sort(rows))
        return Split(x=xt[r].clone(), y=yt[r].clone())

    feature_names = (
        tuple(str(n) for n in names)
        if names is not None
        else tuple(f"x{i}" for i in range(x.shape[1]))
    )
    return Dataset(
        name=dataset_name(name),
        task=task,
        n_classes=n_classes,
        feature_names=feature_names,
        train=split(idx_train),
        val=split(idx_val),
        test=split(idx_test),
        feature_mean=torch.as_tensor(mean, dtype=torch.float32),
        feature_scale=torch.as_tensor(scale, dtype=torch.float32),
        target_mean=t_mean,
        target_scale=t_scale,
    )
