"""Errors that the command line and the worker processes turn into one line and an exit code.

The bottom of the package with :mod:`hpsearch.signals` (SIGTERM's exception comes from there).
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import sys
from collections.abc import Callable, Collection, Iterable
from typing import Any

from hpsearch.signals import Terminated, handle_sigterm


class HpsearchError(Exception):
    """A problem the user can fix: bad input, unknown name, unreachable storage."""


# How alike (difflib's ratio, 0 to 1) a name must be to an allowed one to be suggested:
# difflib's own default, which catches a dropped, doubled or swapped letter even in a
# three-letter name ("sdg", "rnu") and suggests nothing for another word ("mnist", "asha").
SUGGEST_CUTOFF = 0.6


def did_you_mean(value: Any, allowed: Iterable[Any]) -> str:
    """``"; did you mean 'x'?"`` naming the allowed name closest to ``value`` (both, when two
    are as close: ``'loss1' or 'loss2'``), or ``""`` when none is close or ``value`` is not a
    string. Case is ignored. Every message that refuses a name from a fixed set ends with it.
    """
    if not isinstance(value, str):
        return ""
    names = {a.lower(): a for a in allowed if isinstance(a, str)}
    word = value.lower()
    close = difflib.get_close_matches(word, names, n=3, cutoff=SUGGEST_CUTOFF)
    if not close:
        return ""
    best = difflib.SequenceMatcher(None, close[0], word).ratio()
    tied = [  # in the order of ``allowed``
        name
        for low, name in names.items()
        if low in close and difflib.SequenceMatcher(None, low, word).ratio() == best
    ]
    return f"; did you mean {' or '.join(repr(t) for t in tied)}?"


def check_choice(what: str, value: Any, allowed: Collection[str]) -> None:
    """Raise HpsearchError unless ``value`` is one of ``allowed``, naming them (and the one
    meant, when ``value`` is close to one)."""
    if value not in allowed:
        raise HpsearchError(
            f"unknown {what} {value!r}; allowed: {', '.join(allowed)}"
            + did_you_mean(value, allowed)
        )


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


EXIT_ERROR = 1  # the storage or a study in it is not usable
EXIT_USAGE = 2  # bad study file or arguments (argparse uses 2 as well)
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a process Ctrl-C stopped
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
INTERRUPTED_MESSAGE = (
    "interrupted; finished trials are stored, run the same command again to continue"
)
TERMINATED_MESSAGE = INTERRUPTED_MESSAGE.replace("interrupted", "terminated (SIGTERM)", 1)

# user:password@ in anything that looks like a URL's authority, with or without a scheme.
_CREDENTIALS = re.compile(r"(?P<user>[^\s:/@'\"]*):(?P<password>[^\s/'\"]+)@")


def mask_secrets(text: str) -> str:
    """``text`` with the password of every ``user:password@host`` in it shown as ``***``.

    Every message that may hold a storage URL goes through it, a malformed URL included.
    """
    return _CREDENTIALS.sub(lambda m: f"{m['user']}:***@", text)


# What a storage error says, and the cause a user can act on. Matched anywhere in the chain
# of causes: Optuna often re-raises a storage failure as another error ("Should not reach.").
_STORAGE_FAULTS: tuple[tuple[str, str], ...] = (
    ("database or disk is full", "disk full"),
    ("no space left on device", "disk full"),
    ("could not extend file", "disk full"),
    # Permanent server refusals first: their messages also say "connection to server … failed".
    ("password authentication failed", "authentication failed (wrong user or password)"),
    ("no pg_hba.conf entry", "connection not allowed by the server's pg_hba.conf"),
    ('fatal:  database "', "no such database on the server"),
    ('fatal:  role "', "no such user on the server"),
    ("readonly database", "read-only"),
    ("read-only file system", "read-only"),
    ("disk image is malformed", "corrupt database file"),
    ("file is not a database", "corrupt database file"),
    ("connection refused", "database unreachable"),
    ("could not connect", "database unreachable"),
    ("server closed the connection", "database unreachable"),
    ("terminating connection", "database unreachable"),
    ("the database system is", "database unreachable"),
    ("could not translate host name", "unknown database host"),
    ("database is locked", "database locked by another process"),
)


def error_chain(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def storage_fault(error: BaseException) -> str | None:
    """The storage fault behind ``error`` in words ("disk full", "read-only", "database
    unreachable", "corrupt database file", ...), or None when it is not one."""
    for cause in error_chain(error):
        text = str(cause).lower()
        for fragment, fault in _STORAGE_FAULTS:
            if fragment in text:
                return fault
    return None


def run_reporting_errors(command: Callable[[], int], prog: str = "hpsearch") -> int:
    """Run ``command``; turn what it raises into one line on stderr and an exit code.

    A :class:`StudyFileError` exits :data:`EXIT_USAGE`, another :class:`HpsearchError` or an
    unexpected exception :data:`EXIT_ERROR` (its traceback only with ``HPSEARCH_DEBUG=1``),
    Ctrl-C :data:`EXIT_INTERRUPTED`, SIGTERM :data:`EXIT_TERMINATED`. Every message has its
    passwords masked. The command line and each worker process use it alike.
    """
    handle_sigterm()
    try:
        return command()
    except StudyFileError as e:
        print(f"{prog}: error: {mask_secrets(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except HpsearchError as e:
        print(f"{prog}: error: {mask_secrets(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        # Anything else (a user setup that raises, a storage that drops mid-run): one line;
        # the trial that hit it is already stored as FAIL by Optuna.
        if os.environ.get("HPSEARCH_DEBUG"):
            raise
        fault = storage_fault(e)
        if fault is not None:
            print(
                f"{prog}: error: storage: {fault}; finished trials are stored, run the same "
                "command again once it is fixed (a trial it interrupted is retried)",
                file=sys.stderr,
            )
            return EXIT_ERROR
        shown = mask_secrets(" ".join(str(e).split()))  # one line
        print(
            f"{prog}: error: unexpected {type(e).__name__}: {shown} "
            "(set HPSEARCH_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except Terminated:
        print(f"{prog}: {TERMINATED_MESSAGE}", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{prog}: {INTERRUPTED_MESSAGE}", file=sys.stderr)
        return EXIT_INTERRUPTED
