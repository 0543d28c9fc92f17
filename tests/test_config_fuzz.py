"""Hostile study files: whatever a user writes, the loader answers with a config or one
``StudyFileError`` line, never another exception."""

from __future__ import annotations

import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpsearch import StudyConfig, StudyFileError, load_study_file
from tests.conftest import STUDY_FILES

SEEDS = [tomllib.loads(p.read_text()) for p in STUDY_FILES]
KEYS = sorted(
    {k for doc in SEEDS for table in doc.values() if isinstance(table, dict) for k in table}
    | {"type", "low", "high", "log", "step", "choices", "name", "imports", "objective_weights"}
)


def _toml_key(key: str) -> str:
    plain = key and all(c.isalnum() or c in "-_" for c in key)
    return key if plain else _toml_value(key)


def _toml_value(value: Any) -> str:
    """A TOML literal for ``value`` (the fuzz only needs the types TOML has)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


def _dump(doc: dict[str, Any]) -> str:
    lines = []
    for name, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{_toml_key(name)} = {_toml_value(table)}")
    return "\n".join(lines) + "\n"


scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70).filter(lambda i: -(2**63) <= i < 2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "tpe", "nsgaii", "float", "int", "categorical", "adam", "relu", "x.py"]),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=8,
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped study file with a few of its keys deleted, retyped, or added."""
    seed = draw(st.sampled_from(SEEDS))
    doc = {k: dict(v) if isinstance(v, dict) else v for k, v in seed.items()}
    for _ in range(draw(st.integers(1, 4))):
        tables = list(doc) + ["study", "data", "budget", "params", "extra"]
        name = draw(st.sampled_from(tables))
        table = doc.setdefault(name, {})
        if not isinstance(table, dict):
            doc[name] = draw(values)
            continue
        action = draw(st.sampled_from(["delete", "replace", "add", "retable"]))
        if action == "delete" and table:
            del table[draw(st.sampled_from(sorted(table)))]
        elif action == "replace" and table:
            table[draw(st.sampled_from(sorted(table)))] = draw(values)
        elif action == "add":
            table[draw(st.sampled_from(KEYS) | st.text(max_size=8))] = draw(values)
        else:
            doc[name] = draw(values)
    return doc


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.toml"
        path.write_text(text)
        try:
            config = load_study_file(path)
        except StudyFileError as e:
            message = str(e)
            assert "\n" not in message and message.startswith(str(path)), message
        else:
            assert isinstance(config, StudyConfig)


FUZZ = settings(
    max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@FUZZ
@given(mutated_documents())
def test_mutated_study_files_get_one_line_errors(doc: dict[str, Any]) -> None:
    _load(_dump(doc))


@settings(max_examples=350, deadline=None, derandomize=True)
@given(st.sampled_from(SEEDS), st.integers(0, 2000), st.text(max_size=20))
def test_damaged_study_text_gets_one_line_errors(seed: dict, cut: int, junk: str) -> None:
    # Truncated files, and text spliced into the middle of one: mostly invalid TOML.
    text = _dump(seed)
    cut = cut % (len(text) + 1)
    _load(text[:cut] + junk + text[cut : cut + len(junk) * 3])
