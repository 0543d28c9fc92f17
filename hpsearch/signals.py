"""Signals, handled in one place: SIGTERM stops a run like Ctrl-C (:class:`Terminated`), the
run loops hold both until a safe point (:class:`DeferredInterrupt`, :func:`signals_deferred`),
and a server stops on either (:func:`stop_on_signals`).

The bottom of the package with :mod:`hpsearch.errors`: it imports nothing of hpsearch.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, systemd): stops the run like Ctrl-C, at the same safe
    points, and exits :data:`EXIT_TERMINATED`."""


_terminating = False


def terminated() -> Terminated:
    """The exception that stops the process on SIGTERM. Once made, further SIGTERMs are
    ignored: the process is already stopping (the launcher of workers passes its SIGTERM on,
    so a worker of a process group gets two), and a second one raised inside a finalizer would
    only print "Exception ignored"."""
    global _terminating
    _terminating = True
    return Terminated()


def is_terminating() -> bool:
    """Whether :func:`terminated` was raised in this process: the process is stopping."""
    return _terminating


def raise_terminated(signum: int, frame: Any) -> None:
    """The SIGTERM handler outside the run loops' own: stop like Ctrl-C does."""
    if not _terminating:
        raise terminated()


def handle_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` (a KeyboardInterrupt) in the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)


class DeferredInterrupt:
    """Ctrl-C (SIGINT) and SIGTERM raise at once inside the objective (Optuna then stores the
    trial as FAIL) and are held until the next safe point elsewhere: a signal between Optuna
    creating a trial and calling the objective, or while it stores the result, would leave the
    trial RUNNING. SIGTERM raises :class:`Terminated`, SIGINT
    KeyboardInterrupt."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.in_objective = False
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM and is_terminating():
            return  # already stopping: a forwarded second SIGTERM changes nothing
        if self.pending is None or signum == signal.SIGTERM:
            self.pending = signum
        if self.in_objective:
            self.check()

    def check(self) -> None:
        """Raise the held signal, at a safe point."""
        if self.pending == signal.SIGTERM:
            raise terminated()
        if self.pending is not None:
            raise KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (the main thread only): a storage
    transaction and what records it must not be cut in half by a second Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise KeyboardInterrupt in the main thread: Python installs its
    Ctrl-C handler only where SIGINT was not ignored at start-up (a background job of a
    script, a test runner's worker), and a server must stop on either."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
