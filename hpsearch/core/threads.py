"""How many threads torch's intra-op pool gets: the cores this process may use, split between
the processes that train at once.

torch starts one intra-op thread per core in every process. Two workers on two cores then run
four busy threads, and OpenMP's threads spin while they wait for each other (2 workers on 2
cores: 1.5x faster with one thread each, benchmarks/results/threads.md). So hpsearch chooses:
an explicit request first (``--threads`` or the study file's ``threads``), then an
``OMP_NUM_THREADS`` already in the environment (a scheduler's or the user's), else the usable
cores divided by the workers, at least 1. The choice must be made before torch starts
(OpenMP reads it once); :func:`apply_threads` also resizes a torch already running.

One trial at a time, the choice does not follow the machine's load, though fewer threads run
faster beside other busy processes: the thread count changes the order of float sums there, so
results would change with the load (measured: 5 of 6 sequential demo trials differ between 1
and 2 threads). A seeded run stays reproducible on one machine; when other work keeps the
cores busy the one line says so and suggests ``--threads``.

Population mode is different on both counts. Its results do not depend on the thread count
(each member's matmuls and sums run whole on one thread: tests/core/test_threads.py checks 1 against
2 threads bit for bit), and a second thread pays there when the core is free (K = 64: 12.7x
the competent loop with two threads against 7.5x with one, benchmarks/results/population.md)
but costs when it is not (beside one busy process, torch's two threads run a competent loop at
a quarter of its one-thread speed, same file).
So when nobody asked for a number, :class:`LoadWatch` lowers the threads of each batch to the
cores other work leaves free.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

THREADS_ENV = "OMP_NUM_THREADS"
# Read by the BLAS libraries torch may call into, besides OpenMP's own variable.
_ALSO_SET = ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a scheduler's allocation), not
    every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


# How long the usable cores are watched to see how busy they are (a fraction of a second of
# start-up, only when the choice is more than one thread; a load average would lag a minute
# behind, and count the whole machine).
BUSY_WINDOW_SECONDS = 0.2


def _cpu_times() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) clock ticks since boot, from /proc/stat."""
    times = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(f) for f in fields]
                idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
                times[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return times


def busy_cores() -> int:
    """How many of this process's usable cores other work keeps busy right now: their busy
    share over :data:`BUSY_WINDOW_SECONDS`, summed and rounded (0 where /proc/stat is not).
    For the hint of :meth:`ThreadPlan.describe` only."""
    try:
        cpus = os.sched_getaffinity(0)
        before = _cpu_times()
        time.sleep(BUSY_WINDOW_SECONDS)
        after = _cpu_times()
    except (AttributeError, OSError, ValueError):  # not Linux
        return 0
    share = 0.0
    for cpu in cpus & before.keys() & after.keys():
        busy = after[cpu][0] - before[cpu][0]
        total = after[cpu][1] - before[cpu][1]
        share += busy / total if total > 0 else 0.0
    return round(share)


class LoadWatch:
    """How many of this process's usable cores other processes keep busy, read between calls.

    Between two readings, the busy clock ticks of the usable cores (``/proc/stat``) less this
    process's own CPU time are the other work: nothing waits for it, unlike
    :func:`busy_cores`. The first reading, with no interval behind it, watches for
    :data:`BUSY_WINDOW_SECONDS`.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = None

    @staticmethod
    def _reading() -> tuple[float, float, float] | None:
        """(busy seconds of the usable cores, this process's CPU seconds, wall seconds)."""
        try:
            cpus = os.sched_getaffinity(0)
            ticks = _cpu_times()
        except (AttributeError, OSError, ValueError):  # not Linux
            return None
        hz = os.sysconf("SC_CLK_TCK")
        busy = sum(busy for cpu, (busy, _) in ticks.items() if cpu in cpus) / hz
        own = os.times()
        return busy, own.user + own.system, time.monotonic()

    def other_busy_cores(self) -> float:
        """Cores busy with other work since the last call (0.0 where it cannot be read)."""
        if self._last is None:
            self._last = self._reading()
            time.sleep(BUSY_WINDOW_SECONDS)
        now = self._reading()
        before, self._last = self._last, now
        if before is None or now is None or now[2] <= before[2]:
            return 0.0
        other = (now[0] - before[0]) - (now[1] - before[1])
        return max(0.0, other / (now[2] - before[2]))

    def free_threads(self, most: int) -> int:
        """Threads for the next stretch of work: the usable cores other work leaves free,
        between 1 and ``most``."""
        if most <= 1:
            return 1
        return max(1, min(most, usable_cores() - round(self.other_busy_cores())))


def follows_load() -> bool:
    """Whether this process's thread count is hpsearch's own choice, which population mode may
    lower while other work keeps cores busy (see the module docstring): nobody asked for a
    number (``--threads``, a study file's ``threads``, an ``OMP_NUM_THREADS`` of their own)."""
    if _applied is not None:
        return _applied_follows_load
    inherited = os.environ.get(THREADS_ENV, "").strip()
    return not (inherited.isdigit() and int(inherited) >= 1)


@dataclass(frozen=True)
class ThreadPlan:
    """The intra-op threads of each training process, and why.

    Attributes:
        threads: Threads per process (>= 1).
        workers: Processes training at once on these cores.
        reason: Where the number comes from, in words.
    """

    threads: int
    workers: int
    reason: str
    busy: int = 0
    chosen: bool = False  # hpsearch's own split of the cores, not a number someone asked for

    def describe(self) -> str:
        """One line for the start of a run."""
        each = f" in each of {self.workers} workers" if self.workers > 1 else ""
        plural = "s" if self.threads > 1 else ""
        change = "--threads N or the study file's threads to change"
        if self.busy and self.threads > 1:  # a hint, not a choice: see the module docstring
            free = max(1, self.threads - self.busy)
            change = (
                f"{self.busy} of the cores busy with other work: --threads {free} runs faster "
                "then, with other float rounding"
            )
        return f"hpsearch: torch uses {self.threads} thread{plural}{each} ({self.reason}; {change})"


def plan_threads(
    workers: int = 1, requested: int | None = None, requested_by: str = "--threads"
) -> ThreadPlan:
    """Choose the threads of each of ``workers`` processes training at once.

    Args:
        workers: Processes that train at the same time on this machine's usable cores.
        requested: An explicit number (``--threads``, a study file's ``threads``), or None.
        requested_by: Who asked for ``requested``, for the message.
    """
    if requested is not None:
        return ThreadPlan(requested, workers, f"{requested_by} {requested}")
    # What the user (or a scheduler) set, not what an earlier command in this process did.
    inherited = (_before_apply if _applied is not None else os.environ.get(THREADS_ENV)) or ""
    inherited = inherited.strip()
    if inherited.isdigit() and int(inherited) >= 1:
        return ThreadPlan(int(inherited), workers, f"{THREADS_ENV}={inherited} in the environment")
    cores = usable_cores()
    reason = f"{cores} usable cores ÷ {workers} workers" if workers > 1 else f"{cores} usable cores"
    threads = max(1, cores // workers)
    return ThreadPlan(threads, workers, reason, busy_cores() if threads > 1 else 0, chosen=True)


def thread_environment(threads: int) -> dict[str, str]:
    """The environment variables that give a process started now ``threads`` threads."""
    return {name: str(threads) for name in (THREADS_ENV, *_ALSO_SET)}


# What apply_threads put in the environment, and what was there before it: a later plan
# (another command run in the same process) plans from the user's setting, not from ours.
_applied: str | None = None
_before_apply: str | None = None
_applied_follows_load = False


def apply_threads(threads: int, follow_load: bool = False) -> None:
    """Give this process, and the processes it starts, ``threads`` intra-op threads.

    Args:
        threads: The number.
        follow_load: It is hpsearch's own choice (:attr:`ThreadPlan.chosen`), which
            population mode may lower while other work keeps cores busy.
    """
    global _applied, _before_apply, _applied_follows_load
    if _applied is None:
        _before_apply = os.environ.get(THREADS_ENV)
    os.environ.update(thread_environment(threads))
    _applied = str(threads)
    _applied_follows_load = follow_load
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):  # already started
        torch.set_num_threads(threads)
