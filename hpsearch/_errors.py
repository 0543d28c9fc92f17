"""Errors that the CLI turns into one line and a non-zero exit code."""

from __future__ import annotations

from typing import Any


class HpsearchError(Exception):
    """A problem the user can fix: bad input, unknown name, unreachable storage."""


def check_choice(what: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise HpsearchError unless ``value`` is one of ``allowed``, naming them."""
    if value not in allowed:
        raise HpsearchError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


def check_fields(obj: Any, checks: dict[str, bool]) -> None:
    """Raise HpsearchError naming every field of ``obj`` whose check is False, with its value."""
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        shown = ", ".join(f"{k}={getattr(obj, k)!r}" for k in bad)
        raise HpsearchError(f"{type(obj).__name__}: invalid {shown}")


class StudyFileError(HpsearchError):
    """A study file that cannot be used, naming the file, the key and what is allowed.

    Args:
        path: The study file.
        key: Dotted key inside the file (``"params.lr.low"``), or ``""`` for the whole file.
        message: What is wrong and what is allowed.
    """

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = f"{path}: {_printable(key)}: " if key else f"{path}: "
        super().__init__(where + _printable(message))


def _printable(text: str) -> str:
    # One line whatever a study file holds: a key or value with a newline or a control
    # character is shown escaped.
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


class DivergedError(Exception):
    """Training produced a non-finite loss; the trial is stored as FAIL with this reason."""
