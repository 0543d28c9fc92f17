"""Hostile study files: whatever a user writes, the loader answers with a config that keeps
the loader's promises, or one printable ``StudyFileError`` line naming the key at fault; never
another exception."""

from __future__ import annotations

import math
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpsearch import StudyConfig, StudyFileError, load_study_file
from hpsearch.core.data import DATASETS
from hpsearch.core.options import FLOAT32_MAX
from hpsearch.study.limits import RUN_LIMITS
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


# Values aimed at the loader's checks: beyond float32, not finite, names that only look valid.
bounds = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, 1e39, -1e39, 3.5e38, 1e-3, 0.0, 10, -1, 2**63 - 1]),
)
names = st.one_of(
    st.sampled_from(["ok\n", "ok\r", "a b", "x" * 129, "-x", "é", "ok\u0000", "ok.v2"]),
    st.text(max_size=10),
)


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped study file with a few of its keys deleted, retyped, or added; its name or a
    searched parameter's bounds replaced by a hostile value."""
    seed = draw(st.sampled_from(SEEDS))
    doc = {k: dict(v) if isinstance(v, dict) else v for k, v in seed.items()}
    for _ in range(draw(st.integers(1, 4))):
        tables = list(doc) + ["study", "data", "budget", "params", "extra"]
        name = draw(st.sampled_from(tables))
        params = doc.get("params")
        searched = [
            k
            for k, v in (params.items() if isinstance(params, dict) else ())
            if isinstance(v, dict) and "low" in v
        ]
        if draw(st.booleans()) and isinstance(doc.get("study"), dict):
            if searched and draw(st.booleans()):
                chosen = draw(st.sampled_from(searched))
                param = dict(doc["params"][chosen])
                param[draw(st.sampled_from(["low", "high"]))] = draw(bounds)
                doc["params"] = {**doc["params"], chosen: param}
            else:
                doc["study"]["name"] = draw(names)
            continue
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


def _load(text: str, valid_toml: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.toml"
        path.write_text(text)
        try:
            config = load_study_file(path)
        except StudyFileError as e:
            _assert_one_line_naming_a_key(str(e), e, str(path), valid_toml)
        else:
            _assert_promises(config)


def _assert_one_line_naming_a_key(
    message: str, error: StudyFileError, path: str, valid_toml: bool
) -> None:
    assert message.isprintable(), message  # no newline, no control character
    assert message.startswith(f"{path}: "), message
    if valid_toml:  # then the fault is in one key, and the message names it
        assert error.key, message
        assert message.startswith(f"{path}: {error.key}: ") or not error.key.isprintable()


def _assert_promises(config: StudyConfig) -> None:
    """What every accepted file guarantees to the code that runs it."""
    assert isinstance(config, StudyConfig)
    name = config.name
    assert name.isprintable() and name == name.strip() and 1 <= len(name) <= 128, repr(name)
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name), repr(name)
    assert config.dataset in DATASETS
    for key in ("n_trials", "batch", "seed"):
        low, high = RUN_LIMITS[key]
        assert low <= getattr(config, key) <= high, key
    for spec in config.params.values():
        numbers = [spec.value] if spec.type == "fixed" else list(spec.choices)
        if spec.type in ("float", "int"):
            low, high = spec.bounds
            assert low <= high, spec
            numbers += [low, high]
        for x in numbers:
            if isinstance(x, float | int) and not isinstance(x, bool):
                assert math.isfinite(x) and abs(x) <= FLOAT32_MAX, spec


FUZZ = settings(
    max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@FUZZ
@given(mutated_documents())
def test_mutated_study_files_get_one_line_errors(doc: dict[str, Any]) -> None:
    text = _dump(doc)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        valid = False  # a key the fuzz drew that TOML cannot hold
    else:
        valid = True
    _load(text, valid)


@settings(max_examples=350, deadline=None, derandomize=True)
@given(st.sampled_from(SEEDS), st.integers(0, 2000), st.text(max_size=20))
def test_damaged_study_text_gets_one_line_errors(seed: dict, cut: int, junk: str) -> None:
    # Truncated files, and text spliced into the middle of one: mostly invalid TOML.
    text = _dump(seed)
    cut = cut % (len(text) + 1)
    _load(text[:cut] + junk + text[cut : cut + len(junk) * 3], valid_toml=False)
