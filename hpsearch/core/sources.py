"""Where a dataset's rows come from: scikit-learn's bundled datasets, your own data file
(CSV, NPZ or Parquet), or a loader you register.

Every source gives the same thing: raw features (float64, n × d), raw targets and feature
names, and a key that changes whenever the rows would (a file's key is its content's hash,
not its name). :mod:`hpsearch.core.data` splits, scales and caches them alike.

CSV and Parquet are read by pandas (Parquet through pyarrow, the ``parquet`` extra), NPZ by
NumPy: no hand-written parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hpsearch.errors import HpsearchError, did_you_mean

TASKS: tuple[str, ...] = ("classification", "regression")


class DataFileError(HpsearchError):
    """A data file or a registered loader whose rows cannot be used (names the file)."""


FILE_FORMATS: tuple[str, ...] = (".csv", ".npz", ".parquet")

Rows = tuple[np.ndarray, np.ndarray, tuple[str, ...]]
"""Raw features (n × d, float64), raw targets (n), feature names (d)."""

# name -> (scikit-learn loader, task). Every loader reads files shipped inside scikit-learn:
# no network. scikit-learn itself is imported on first load (it costs ~1 s of start-up).
SKLEARN_DATASETS: dict[str, tuple[str, str]] = {
    "digits": ("load_digits", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
# Built-in datasets whose features share one unit (digits: ink counts 0–16 per pixel of an 8×8
# image). They are centered per feature but divided by one scale for all features (see
# hpsearch.core.data._feature_scale): a pixel almost never inked in training has a tiny std, and
# dividing by it made a validation row that inks it huge (|x| up to 186).
SHARED_UNIT_DATASETS: frozenset[str] = frozenset({"digits"})


@dataclass(frozen=True)
class DataFile:
    """Your own data file as a study file's ``dataset = { path = …, target = … }`` names it.

    Attributes:
        path: The file (absolute; a study file's relative path is resolved against its folder).
        target: The target column (CSV, Parquet) or array (NPZ).
        task: ``"classification"`` (labels of any type, numbered in sorted order) or
            ``"regression"`` (numbers).
        features: The feature columns (CSV, Parquet; default: every other column) or the
            2-D feature array of an NPZ (default ``"x"``).
    """

    path: str
    target: str
    task: str = "classification"
    features: tuple[str, ...] | str | None = None

    @property
    def name(self) -> str:
        """What tables call it: the file's name."""
        return Path(self.path).name

    def digest(self) -> str:
        """SHA-256 of the file's content (first 16 hex digits): the split cache's key."""
        return _file_digest(self.path)

    def describe(self) -> dict[str, Any]:
        """What a study's identity records of it: the content, not where it lies."""
        features = list(self.features) if isinstance(self.features, tuple) else self.features
        return {"file": self.name, "target": self.target, "task": self.task,
                "features": features, "sha256": self.digest()}  # fmt: skip

    def read(self) -> Rows:
        """The file's rows, checked (see :func:`check_rows`)."""
        suffix = Path(self.path).suffix.lower()
        if suffix not in FILE_FORMATS:
            raise DataFileError(
                f"{self.path}: unknown data file format {suffix or '(none)'!r}; allowed: "
                f"{', '.join(FILE_FORMATS)}"
            )
        if not Path(self.path).is_file():
            raise DataFileError(f"{self.path}: no such data file")
        if suffix == ".npz":
            x, y, names = self._read_npz()
        else:
            x, y, names = self._read_table(suffix)
        return check_rows(self.path, x, y, names, self.task)

    def _read_npz(self) -> tuple[Any, Any, tuple[str, ...]]:
        features = self.features if isinstance(self.features, str) else "x"
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise DataFileError(f"{self.path}: not a readable NPZ file ({e})") from None
        for key in (features, self.target):
            if key not in arrays:
                raise DataFileError(
                    f"{self.path}: no array {key!r}; arrays: {', '.join(arrays)}"
                    + did_you_mean(key, list(arrays))
                )
        x = arrays[features]
        if x.ndim != 2:
            raise DataFileError(f"{self.path}: array {features!r} must be 2-D (rows × features)")
        names = tuple(f"{features}{i}" for i in range(x.shape[1]))
        return x, arrays[self.target], names

    def _read_table(self, suffix: str) -> tuple[Any, Any, tuple[str, ...]]:
        frame = _read_frame(self.path, suffix)
        if len(frame) == 0:
            raise DataFileError(f"{self.path}: no data rows, only a header")
        columns = [str(c) for c in frame.columns]
        frame.columns = columns
        wanted = list(self.features) if isinstance(self.features, tuple) else None
        for key in [self.target, *(wanted or [])]:
            if key not in columns:
                raise DataFileError(
                    f"{self.path}: no column {key!r}; columns: {', '.join(columns)}"
                    + did_you_mean(key, columns)
                )
        features = wanted or [c for c in columns if c != self.target]
        if not features:
            raise DataFileError(f"{self.path}: no feature column besides the target")
        table = frame[features]
        text = [c for c in features if not _numeric_dtype(table[c])]
        if text:
            raise DataFileError(
                f"{self.path}: feature column{'s' if len(text) > 1 else ''} "
                f"{', '.join(repr(c) for c in text[:5])} {'are' if len(text) > 1 else 'is'} not "
                "numeric; allowed: numbers only (encode categories as numbers, or leave the "
                "column out with features = [...])"
            )
        return table.to_numpy(dtype=np.float64), frame[self.target].to_numpy(), tuple(features)


def _read_frame(path: str, suffix: str) -> Any:
    import pandas as pd

    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except ImportError as e:
        raise DataFileError(
            f"{path}: reading Parquet needs pyarrow: pip install 'hpsearch[parquet]' ({e})"
        ) from None
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataFileError(f"{path}: cannot read it as {suffix[1:]} ({e})") from None


def _numeric_dtype(column: Any) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(column)) and not pd.api.types.is_bool_dtype(column)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such data file") from None
    except OSError as e:
        raise DataFileError(f"{path}: cannot read the data file ({e.strerror})") from None
    return digest.hexdigest()[:16]


def check_rows(where: str, x: Any, y: Any, names: tuple[str, ...], task: str) -> Rows:
    """Features and targets as a study trains on them, or one line saying what is wrong.

    Features must be finite numbers; a classification target is numbered 0..C-1 in sorted
    order of its values and needs two classes; a regression target must be finite numbers.
    """
    if task not in TASKS:
        raise DataFileError(f"{where}: unknown task {task!r}; allowed: {', '.join(TASKS)}")
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(f"{where}: the features are not all numbers") from None
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise DataFileError(
            f"{where}: expected features n × d and targets n, got {x.shape} and {y.shape}"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        column = int(np.flatnonzero(bad.any(0))[0])
        raise DataFileError(
            f"{where}: {int(bad.sum())} missing or infinite feature values (first in column "
            f"{names[column]!r}); allowed: finite numbers only (drop or impute those rows)"
        )
    y = _class_labels(where, y) if task == "classification" else _regression_targets(where, y)
    return x, y, tuple(names)


def _class_labels(where: str, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise DataFileError(f"{where}: the target has missing values; every row needs a label")
    if y.dtype.kind == "O" and any(v is None or v != v for v in y):  # None or NaN
        raise DataFileError(f"{where}: the target has missing values; every row needs a label")
    try:
        classes, labels = np.unique(y, return_inverse=True)
    except TypeError:  # labels that do not sort together, 1 and "a"
        raise DataFileError(
            f"{where}: the labels mix types ({sorted({type(v).__name__ for v in y})}); give "
            "them one type (cast them to str, say)"
        ) from None
    if len(classes) < 2:
        raise DataFileError(
            f"{where}: the target has one class only ({classes[0]!r}); classification needs 2 "
            "or more"
        )
    return labels.astype(np.int64)


def _regression_targets(where: str, y: np.ndarray) -> np.ndarray:
    try:
        values = y.astype(np.float64)
    except (TypeError, ValueError):
        raise DataFileError(
            f"{where}: a regression target must be numbers (task = 'classification' for labels)"
        ) from None
    if not np.isfinite(values).all():
        raise DataFileError(f"{where}: the target has missing or infinite values")
    return values


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset registered from Python (:func:`register_dataset`)."""

    name: str
    loader: Callable[[], Any] = field(compare=False)
    task: str = "classification"

    def read(self) -> Rows:
        loaded = self.loader()
        if not isinstance(loaded, tuple) or len(loaded) not in (2, 3):
            raise DataFileError(
                f"dataset {self.name!r}: its loader must return (x, y) or (x, y, feature_names)"
            )
        where = f"dataset {self.name!r}"
        try:
            x = np.asarray(loaded[0], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataFileError(f"{where}: the features are not a table of numbers") from None
        width = x.shape[1] if x.ndim == 2 else 0
        names = tuple(str(n) for n in loaded[2]) if len(loaded) == 3 else None
        return check_rows(
            where, x, loaded[1], names or tuple(f"x{i}" for i in range(width)), self.task
        )


_REGISTERED: dict[str, RegisteredDataset] = {}


def register_dataset(name: str, loader: Callable[[], Any], task: str = "classification") -> None:
    """Make ``loader``'s data a dataset that study files and :func:`load_dataset` name.

    It is split, standardized and cached like the built-in ones (the cache keyed by the rows'
    content). Register it in a module that a study file's ``study.imports`` lists, so that
    every worker process registers it too.

    Args:
        name: The dataset's name (not one of the built-in ones).
        loader: Returns ``(x, y)`` or ``(x, y, feature_names)``: numeric features n × d and
            n targets (labels of any type, or numbers for regression).
        task: ``"classification"`` or ``"regression"``.

    Raises:
        HpsearchError: A built-in name, or an unknown task.
    """
    if name in SKLEARN_DATASETS or name == "none":
        raise HpsearchError(f"dataset {name!r} is built in; register yours under another name")
    if task not in TASKS:
        raise HpsearchError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    _REGISTERED[name] = RegisteredDataset(name, loader, task)


def registered_dataset(name: str) -> RegisteredDataset | None:
    return _REGISTERED.get(name)


def registered_names() -> tuple[str, ...]:
    return tuple(_REGISTERED)


def rows_digest(rows: Rows) -> str:
    """A key of the rows' content (the split cache's key for a registered dataset)."""
    x, y, names = rows
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    digest.update("\0".join(names).encode())
    return digest.hexdigest()[:16]
