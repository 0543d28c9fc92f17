"""Load and faults: N workers × population batches of K on each storage, with and without
faults injected on a schedule, every run checked.

Per storage (SQLite file, journal file, PostgreSQL when a URL is given) and scenario:

    none      ``hpsearch run STUDY --workers N --batch K`` to a target of T trials;
    kill      the same, one worker SIGKILLed once a quarter of the target counts (its batch
              goes stale and is retried by the others);
    sigterm   SIGTERM to the whole process group once a quarter counts, as a scheduler sends
              it; then the same command again;
    restart   PostgreSQL stopped for 10 s once a quarter counts, then started (root and
              pg_ctlcluster needed);
    full      the storage file on a tmpfs too small for the study (root needed): the run
              stops with "disk full"; the tmpfs grown, the same command again.

Each run is checked: exactly T trials count, trial numbers unique (0..n-1), nothing left
RUNNING, every trial that had completed when the fault struck still complete (no trial lost),
and trials trained for nothing (stored as surplus) at most what is in flight when the target
is reached, per command of the scenario: K × (N − 1) on SQLite and PostgreSQL, where a worker
sees the others' RUNNING batches and asks only for the slots nobody holds (surplus comes only
from asks in the same instant); N × K − 1 on a journal file, where no worker sees another's
batch in flight (and one that died while storing its batch holds its slots for 30 s, so a
rerun may meet batches in flight once more).

The table gives wall time, trials/s, surplus (and its share of the trials trained), trials a
fault interrupted (retried by Optuna's heartbeat callback, which queues a copy; a copy the
target made unnecessary is left WAITING, and a rerun with a larger target takes it first),
and the exit codes. A storage micro-benchmark gives each storage's milliseconds per trial
(one trivial trial: one ask and tell).

``--code DIR`` runs the hpsearch of another checkout (e.g. a worktree of an older commit), to
measure what a change saved (``--tag before`` names its files). Writes ``load.md`` and
``load.json`` to --out (default: a temporary folder, printed; ``--write-results``:
benchmarks/results/).

Usage: python benchmarks/load.py [--workers 5] [--batch 4] [--trials 62] [--storages LIST]
       [--scenarios LIST] [--postgres URL] [--code DIR] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from _common import Run, add_output_arguments, parse_args
from optuna.trial import TrialState
from storage import STUDY, fresh_storage, postgres_problem, trivial_seconds_per_trial

from hpsearch.errors import mask_secrets
from hpsearch.results.report import markdown_table
from hpsearch.study.storage import counts_toward_target

STORAGES = ("sqlite", "journal", "postgresql")
SCENARIOS = ("none", "kill", "sigterm", "restart", "full")
# A few trials fit, then the disk is full (a journal file holds the same trials in less room).
TMPFS_SMALL = {"sqlite": "600k", "journal": "64k"}
TMPFS_LARGE = "64m"


@dataclass
class Outcome:
    """One run of one scenario on one storage, and its checks."""

    storage: str
    scenario: str
    wall_s: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    counted: int = 0
    stored: int = 0
    surplus: int = 0
    interrupted: int = 0  # FAIL trials a fault left (stale, killed, stopped): retried
    queued: int = 0  # retries of those that the target made unnecessary (left WAITING)
    problems: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def trained(self) -> int:
        return self.counted + self.surplus + self.interrupted


# The CLI through this interpreter, so that PYTHONPATH (--code) decides which hpsearch runs.
CLI = [sys.executable, "-c", "import sys; from hpsearch.cli import main; sys.exit(main())"]


def environment(code: str | None, storage_url: str) -> dict[str, str]:
    env = {**os.environ, "HPSEARCH_STORAGE": storage_url, "HPSEARCH_CACHE_DIR": "off"}
    if code:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [code, env.get("PYTHONPATH")]))
    return env


def read_trials(url: str) -> list[optuna.trial.FrozenTrial]:
    """The stored trials, or none while the study does not exist yet."""
    try:
        study = optuna.load_study(study_name="load", storage=storage_object(url))
        return study.get_trials(deepcopy=False)
    except Exception:  # not created yet, or the server is down for the fault
        return []


@functools.cache
def storage_object(url: str) -> optuna.storages.BaseStorage:
    """One storage object per URL for the whole benchmark (polled many times)."""
    if url.startswith("journal:///"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len("journal:///") :]))
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def counted(url: str) -> int:
    return sum(counts_toward_target(t) for t in read_trials(url))


@dataclass(frozen=True)
class Setting:
    workers: int
    batch: int
    trials: int
    epochs: int
    code: str | None
    folder: Path

    def command(self) -> list[str]:
        study = self.folder / "load.toml"
        study.write_text(
            STUDY.format(name="load", n=self.trials, epochs=self.epochs, depth=1, width=32)
        )
        # Short heartbeats: a killed worker's batch goes stale in seconds, not minutes.
        return [*CLI, "run", str(study), "--workers", str(self.workers), "--batch",
                str(self.batch), "--heartbeat", "2", "--no-progress", "--no-dashboard"]  # fmt: skip


def start(setting: Setting, url: str, log: Path) -> subprocess.Popen:
    """The run, in a session of its own (a signal to its group reaches every worker)."""
    with log.open("a") as err:
        return subprocess.Popen(
            setting.command(), cwd=setting.folder, env=environment(setting.code, url),
            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, limit: float = 600) -> bool:
    """Poll ``condition`` while ``proc`` runs; False if it ended first or time ran out."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.2)
    return False


def workers_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def finish(proc: subprocess.Popen, limit: float = 900) -> int:
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return -9


def complete_numbers(url: str) -> set[int]:
    return {t.number for t in read_trials(url) if t.state == TrialState.COMPLETE}


def run_scenario(setting: Setting, scenario: str, url: str, outcome: Outcome) -> set[int]:
    """Run ``scenario`` on ``url`` (exit codes into ``outcome``); returns the trials that
    were complete when the fault struck."""
    log = setting.folder / f"{outcome.storage}-{scenario}.log"
    quarter = max(1, setting.trials // 4)
    proc = start(setting, url, log)
    before: set[int] = set()
    if scenario != "none" and scenario != "full":
        if not wait_for(lambda: counted(url) >= quarter, proc):
            outcome.problems.append("the run ended before the fault")
        before = complete_numbers(url)
        inject(scenario, proc)
    outcome.exit_codes.append(finish(proc))
    if scenario == "full":
        before = complete_numbers(url)
        grow_disk(setting.folder / "disk")
    if scenario in ("sigterm", "full"):  # the same command again
        outcome.exit_codes.append(finish(start(setting, url, log)))
    return before


def inject(scenario: str, proc: subprocess.Popen) -> None:
    if scenario == "kill":
        victims = workers_of(proc.pid)
        if victims:
            os.kill(victims[0], signal.SIGKILL)
    elif scenario == "sigterm":
        os.killpg(proc.pid, signal.SIGTERM)
    elif scenario == "restart":
        version, cluster = _pg_cluster()
        subprocess.run(["pg_ctlcluster", version, cluster, "stop", "-m", "fast"], check=True)
        time.sleep(10)
        subprocess.run(["pg_ctlcluster", version, cluster, "start"], check=True)


def _pg_cluster() -> tuple[str, str]:
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    version, cluster = out.stdout.split()[:2]
    return version, cluster


def grow_disk(disk: Path) -> None:
    subprocess.run(["mount", "-o", f"remount,size={TMPFS_LARGE}", str(disk)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, storage: str) -> Iterator[Path]:
    disk = folder / "disk"
    disk.mkdir(exist_ok=True)
    size = TMPFS_SMALL[storage]
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def check(url: str, setting: Setting, before: set[int], outcome: Outcome) -> None:
    """What every run must end with (see the module's docstring)."""
    trials = read_trials(url)
    numbers = sorted(t.number for t in trials)
    outcome.stored = len(trials)
    outcome.counted = sum(counts_toward_target(t) for t in trials)
    outcome.surplus = sum(bool(t.user_attrs.get("surplus")) for t in trials)
    outcome.interrupted = sum(
        t.state == TrialState.FAIL and not counts_toward_target(t)
        and not t.user_attrs.get("surplus") for t in trials
    )  # fmt: skip
    outcome.queued = sum(t.state == TrialState.WAITING for t in trials)
    now_complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    # Per command: a rerun after a fault may meet batches in flight once more.
    bound = surplus_bound(setting, outcome.storage) * len(outcome.exit_codes)
    for problem, failed in (
        (
            f"{outcome.counted} trials count, not {setting.trials}",
            outcome.counted != setting.trials,
        ),
        ("duplicate or missing trial numbers", numbers != list(range(len(trials)))),
        ("trials left RUNNING", any(t.state == TrialState.RUNNING for t in trials)),
        ("a trial complete at the fault is gone", not before <= now_complete),
        (f"{outcome.surplus} surplus trials, over the bound {bound}", outcome.surplus > bound),
        (f"exit codes {outcome.exit_codes}", outcome.exit_codes[-1] != 0),
        (  # the fault must have struck: the first command stopped by it
            "the fault never struck (its first command exited 0)",
            outcome.scenario in ("sigterm", "full") and outcome.exit_codes[0] == 0,
        ),
    ):
        if failed:
            outcome.problems.append(problem)


def surplus_bound(setting: Setting, storage: str) -> int:
    """The most trials a run may train for nothing (see the module's docstring)."""
    if storage == "journal":
        return setting.workers * setting.batch - 1
    return setting.batch * (setting.workers - 1)


def skip_reason(storage: str, scenario: str, postgres: str | None) -> str:
    """Why ``scenario`` cannot run on ``storage`` here, or "" when it can."""
    if storage == "postgresql" and not postgres:
        return "no PostgreSQL URL (--postgres or HPSEARCH_TEST_POSTGRES)"
    if storage == "postgresql" and (problem := postgres_problem(str(postgres))):
        return f"PostgreSQL unreachable: {mask_secrets(problem)}"
    if scenario == "restart" and (storage != "postgresql" or not shutil.which("pg_ctlcluster")):
        return "a server restart needs PostgreSQL and pg_ctlcluster"
    if scenario == "full" and storage == "postgresql":
        return "a full disk is tried on the file storages"
    if scenario in ("restart", "full") and os.geteuid() != 0:
        return "needs root (a server restart, a tmpfs mount)"
    return ""


@contextlib.contextmanager
def storage_url(folder: Path, storage: str, scenario: str, postgres: str | None) -> Iterator[str]:
    if scenario == "full":
        with small_disk(folder, storage) as disk:
            yield (
                f"sqlite:///{disk / 'load.db'}"
                if storage == "sqlite"
                else (f"journal:///{disk / 'load.log'}")
            )
        return
    with fresh_storage(storage, folder, postgres) as url:
        yield url


def measure(setting: Setting, storage: str, scenario: str, postgres: str | None) -> Outcome:
    """One scenario on one fresh storage, run and checked."""
    outcome = Outcome(storage, scenario, skipped=skip_reason(storage, scenario, postgres))
    if outcome.skipped:
        return outcome
    started = time.perf_counter()
    with storage_url(setting.folder, storage, scenario, postgres) as url:
        before = run_scenario(setting, scenario, url, outcome)
        outcome.wall_s = time.perf_counter() - started
        check(url, setting, before, outcome)
    return outcome


def outcome_row(o: Outcome) -> list:
    if o.skipped:
        return [o.storage, o.scenario, "skipped: " + o.skipped, *[""] * 7]
    share = f"{100 * o.surplus / o.trained:.0f}%" if o.trained else "-"
    return [
        o.storage, o.scenario, "ok" if not o.problems else "FAILED: " + "; ".join(o.problems),
        f"{o.wall_s:.1f}", f"{o.counted / o.wall_s:.2f}" if o.wall_s else "-",
        f"{o.counted}/{o.stored}", f"{o.surplus} ({share})", o.interrupted, o.queued,
        " then ".join(str(c) for c in o.exit_codes),
    ]  # fmt: skip


COLUMNS = [
    "storage", "fault", "checks", "wall s", "trials/s", "counted/stored",
    "surplus (of trained)", "interrupted, retried", "retries left queued", "exit codes",
]  # fmt: skip


def storage_costs(folder: Path, storages: list[str], postgres: str | None, n: int) -> dict:
    """Milliseconds per trivial trial (one ask and tell) of each storage, as opened by
    hpsearch (SQLite tuned, transient faults retried)."""
    costs = {"in-memory": 1000 * trivial_seconds_per_trial(None, n)}
    for kind in storages:
        if skip_reason(kind, "none", postgres):
            continue
        with fresh_storage(kind, folder, postgres) as url:
            costs[kind] = 1000 * trivial_seconds_per_trial(url, n)
    return costs


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--trials", type=int, default=62, help="the study's target")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--storages", default=",".join(STORAGES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--postgres", default=os.environ.get("HPSEARCH_TEST_POSTGRES"))
    parser.add_argument("--code", metavar="DIR", help="run the hpsearch of this checkout")
    parser.add_argument(
        "--tag", help="write load-TAG.md/.json (e.g. the older code's numbers beside today's)"
    )
    add_output_arguments(parser, quick="16 trials, 3 workers x 2, no fault but a SIGKILL")
    return parse_args(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    run = Run(args, "load")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the storage cost: 300 trials each
    if args.quick:
        args.trials, args.workers, args.batch, args.scenarios = 16, 3, 2, "none,kill"
    storages, scenarios = args.storages.split(","), args.scenarios.split(",")
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        setting = Setting(args.workers, args.batch, args.trials, args.epochs, args.code, Path(tmp))
        for storage in storages:
            for scenario in scenarios:
                outcome = measure(setting, storage, scenario, args.postgres)
                print(f"{storage} / {scenario}: {outcome_row(outcome)[2]}", file=sys.stderr)
                outcomes.append(outcome)
        costs = storage_costs(Path(tmp), storages, args.postgres, 50 if args.quick else 300)
    report(run, args, outcomes, costs)


def report(run: Run, args: argparse.Namespace, outcomes: list[Outcome], costs: dict) -> None:
    code = f"the hpsearch of {args.code}" if args.code else "this checkout's hpsearch"
    lines = [
        "# Load and faults: workers x batches x storages",
        "",
        f"Made by `{mask_secrets(run.command)}` with {code}; {run.machine_line()}. "
        f"{args.workers} workers x batches of {args.batch}, target {args.trials} trials "
        f"(digits, MLP 32, {args.epochs} epochs, random sampler), heartbeat 2 s. "
        f"Surplus bound per command: K x (N - 1) = {args.batch * (args.workers - 1)} on "
        f"SQLite and PostgreSQL, N x K - 1 = {args.workers * args.batch - 1} on a journal file.",
        "",
        "## Runs",
        "",
        *markdown_table(COLUMNS, [outcome_row(o) for o in outcomes]),
        "",
        "## Storage cost",
        "",
        *markdown_table(
            ["storage", "ms per trivial trial"], [[k, f"{v:.2f}"] for k, v in costs.items()]
        ),  # fmt: skip
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    name = f"load-{args.tag}" if args.tag else "load"
    run.write(f"{name}.md", text)
    facts = {**run.facts(), "code": args.code, "storage_ms_per_trial": costs}
    facts["command"] = mask_secrets(facts["command"])  # --postgres may hold a password
    run.write(f"{name}.json", json.dumps(
        {**facts, "outcomes": [asdict(o) for o in outcomes]}, indent=1))  # fmt: skip
    run.finish()


if __name__ == "__main__":
    main()
