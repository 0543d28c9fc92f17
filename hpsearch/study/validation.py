"""Validating a TOML file of hpsearch (a study file, or a lab's single-table file) with errors
that name the file, the dotted key and what is allowed: :class:`Checker`, the readers of the
files, and :class:`ParamSpec`, a checked hyperparameter. The study files
(:mod:`hpsearch.study.config`) and the labs' files use the same checks.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.core.options import Option
from hpsearch.errors import HpsearchError, StudyFileError, did_you_mean

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SPEC_KEYS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}


@dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter of a study: a fixed value or an Optuna distribution.

    Attributes:
        name: Hyperparameter name.
        type: ``"fixed"``, ``"float"``, ``"int"`` or ``"categorical"``.
        value: The fixed value (``type == "fixed"``).
        low, high, log, step: Range of a float/int distribution.
        choices: Values of a categorical distribution.
    """

    name: str
    type: str
    value: Any = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a searched number (a study file always gives both)."""
        if self.low is None or self.high is None:
            raise HpsearchError(f"parameter {self.name!r} has no range")
        return self.low, self.high

    @property
    def searched(self) -> bool:
        return self.type != "fixed"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written in the study file."""
        if self.type == "fixed":
            return {"value": self.value}
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


class Checker:
    """Raises StudyFileError for one file, with dotted keys."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> StudyFileError:
        return StudyFileError(self.path, key, message)

    def table(self, raw: Any, key: str, allowed: tuple[str, ...] | dict[str, Any]) -> dict:
        if not isinstance(raw, dict):
            raise self.fail(key, f"must be a table, got {shown(raw)}")
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            raise self.fail(
                f"{key}.{unknown[0]}" if key else unknown[0],
                f"unknown key; allowed: {', '.join(allowed) or 'none'}"
                + did_you_mean(unknown[0], allowed),
            )
        return raw

    def string(self, raw: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(raw, str):
            allowed = f"one of {', '.join(choices)}" if choices else "a string"
            raise self.fail(key, f"must be {allowed}, got {shown(raw)}")
        if choices is not None and raw not in choices:
            raise self.fail(
                key,
                f"unknown value {raw!r}; allowed: {', '.join(choices)}"
                + did_you_mean(raw, choices),
            )
        return raw

    def study_name(self, raw: Any, key: str) -> str:
        """A name Optuna studies and output files are made from."""
        name = self.string(raw, key)
        if not _NAME_RE.fullmatch(name):  # fullmatch: "$" would let a trailing newline in
            raise self.fail(
                key, f"{name!r} is not allowed; use 1-128 letters, digits, '.', '_' or '-'"
            )
        return name

    def names(self, raw: Any, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        """A non-empty list of distinct names from ``allowed``."""
        if (
            not isinstance(raw, list)
            or not raw
            or not all(isinstance(v, str) and v in allowed for v in raw)
            or len(set(raw)) != len(raw)
        ):
            wrong = [v for v in raw if v not in allowed] if isinstance(raw, list) else []
            raise self.fail(
                key,
                f"must be a non-empty list of distinct names from: {', '.join(allowed)}"
                + (did_you_mean(wrong[0], allowed) if wrong else ""),
            )
        return tuple(raw)

    def value(self, raw: Any, key: str, option: Option) -> Any:
        if not option.contains(raw):
            raise self.fail(
                key,
                f"{shown(raw)} is not allowed; must be {option.allowed()}"
                + did_you_mean(raw, option.choices),
            )
        return float(raw) if option.type == "float" else raw

    def options(self, raw: dict, key: str, domains: dict[str, Option]) -> dict[str, Any]:
        self.table(raw, key, domains)
        return {k: self.value(v, f"{key}.{k}", domains[k]) for k, v in raw.items()}

    def named(
        self, raw: Any, key: str, registry: dict[str, dict[str, Option]]
    ) -> tuple[str, dict[str, Any]]:
        """A sampler/pruner: ``"name"`` or ``{name = "…", option = …}``."""
        if isinstance(raw, dict):
            rest = dict(raw)
            if "name" not in rest:
                raise self.fail(f"{key}.name", f"missing; allowed: {', '.join(registry)}")
            name = self.string(rest.pop("name"), f"{key}.name", tuple(registry))
            return name, self.options(rest, key, registry[name])
        return self.string(raw, key, tuple(registry)), {}

    def param(self, raw: Any, key: str, name: str, option: Option) -> ParamSpec:
        if not isinstance(raw, dict):
            return ParamSpec(name, "fixed", value=self.value(raw, key, option))
        kinds = ("categorical",) if option.type == "categorical" else (option.type, "categorical")
        if "type" not in raw:
            raise self.fail(
                f"{key}.type", f"missing; a searched parameter needs type = {' or '.join(kinds)}"
            )
        kind = self.string(raw["type"], f"{key}.type", kinds)
        self.table(raw, key, _SPEC_KEYS[kind])
        if kind == "categorical":
            choices = raw.get("choices")
            if not isinstance(choices, list) or not choices:
                raise self.fail(f"{key}.choices", "must be a non-empty list")
            values = tuple(self.value(c, f"{key}.choices", option) for c in choices)
            if len(set(values)) != len(values):
                raise self.fail(f"{key}.choices", "has duplicate values")
            return ParamSpec(name, "categorical", choices=values)
        for bound in ("low", "high"):
            if bound not in raw:
                raise self.fail(f"{key}.{bound}", f"missing; must be {option.allowed()}")
            self.value(raw[bound], f"{key}.{bound}", option)
        low, high = raw["low"], raw["high"]
        if low > high:
            raise self.fail(key, f"low ({low}) must be <= high ({high})")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise self.fail(f"{key}.log", f"must be true or false, got {shown(log)}")
        if log and low <= 0:
            raise self.fail(f"{key}.low", f"log scale needs low > 0, got {low}")
        step = raw.get("step")
        if step is not None:
            num = int if kind == "int" else (int, float)
            if isinstance(step, bool) or not isinstance(step, num) or not step > 0:
                raise self.fail(f"{key}.step", f"must be a positive {kind}, got {shown(step)}")
            if log and (kind == "float" or step != 1):
                raise self.fail(f"{key}.step", "cannot be combined with log = true")
        cast = float if kind == "float" else int
        return ParamSpec(
            name,
            kind,
            low=cast(low),
            high=cast(high),
            log=log,
            step=None if step is None else cast(step),
        )


def shown(raw: Any) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(raw), type(raw).__name__)
    text = repr(raw) if not isinstance(raw, dict | list) else kind
    if len(text) > 60:
        text = text[:57] + "..."
    return text if isinstance(raw, dict | list) else f"{text} ({kind})"


def read_toml_file(path: str | Path, what: str = "study file") -> dict[str, Any]:
    """The parsed TOML document of ``path``.

    Raises:
        StudyFileError: The file is missing, a directory, not UTF-8, unreadable or not TOML.
    """
    check = Checker(str(path))
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise check.fail("", f"no such {what}") from None
    except IsADirectoryError:
        raise check.fail("", f"is a directory, not a {what}") from None
    except UnicodeDecodeError:
        raise check.fail("", "is not UTF-8 text") from None
    except OSError as e:
        raise check.fail("", f"cannot be read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise check.fail("", f"invalid TOML: {e}") from None


def read_table_file(
    path: str | Path, table: str, keys: tuple[str, ...]
) -> tuple[Checker, dict[str, Any]]:
    """The one table of a single-table file (``[playground]``, ``[mgs]``), its keys checked.

    Returns:
        A checker that names the file in its errors, and the table's raw values.

    Raises:
        StudyFileError: The file is unreadable or not TOML, holds any other table, or the
            table has a key outside ``keys``.
    """
    check = Checker(str(path))
    doc = read_toml_file(path, f"{table} file")
    if set(doc) != {table}:
        raise check.fail("", f"needs exactly one table, [{table}]")
    return check, check.table(doc[table], table, keys)
