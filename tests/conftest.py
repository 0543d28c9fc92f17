from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    import psycopg

# An unreachable storage gives up after 1 s instead of 60: tests that ride out a restart set
# their own budget.
os.environ.setdefault("HPSEARCH_STORAGE_RETRY_SECONDS", "1")

# Tiny models on tiny data: one thread is as fast as two and keeps the suite's timings steady.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _thread_environment_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A command run in-process (cli.main) sets OMP_NUM_THREADS for itself and its children:
    # undone after each test, or every later subprocess would inherit it as a user's setting.
    from hpsearch.core import threads

    for name in threads.thread_environment(1):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)
    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.setattr(threads, "_before_apply", None)


# tryfirst: pytest-xdist reads the xdist_group marks in its own hook of the same name (it
# appends "@group" to each node id there); marks added after it would group nothing.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The suite runs in two processes (pytest-xdist, --dist loadgroup): the PostgreSQL tests
    # share one server, which one of them restarts, so they all run in the same process.
    # Those that ask for it by name at run time are the "postgresql" parameters, and one more.
    for item in items:
        uses = "postgres_url" in getattr(item, "fixturenames", ()) or "postgres" in item.nodeid
        if uses or item.name == "test_an_opened_storage_is_named_by_its_url_without_password":
            item.add_marker(pytest.mark.xdist_group("postgresql"))
        elif item.nodeid.startswith("tests/study/test_workers.py"):
            # Several worker processes each: two such tests at once on 2 cores would starve
            # their heartbeats (stale trials failed and retried) and time out.
            item.add_marker(pytest.mark.xdist_group("workers"))


def error_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` but the one a training command starts with (its threads)."""
    return [line for line in stderr.splitlines() if not line.startswith("hpsearch: torch uses")]


REPO = Path(__file__).resolve().parents[1]
# The [study] files of studies/ (the others hold a [playground] or an [mgs] table).
STUDY_FILES = sorted(
    p for p in (REPO / "studies").glob("*.toml") if "study" in tomllib.loads(p.read_text())
)

SMALL_STUDY = """
[study]
name = "{name}"
dataset = "{dataset}"
setup = "{setup}"
mode = "{mode}"
{objective}
sampler = {sampler}
n_trials = {n_trials}
seed = {seed}

[budget]
epochs = {epochs}
batch_size = 64

[params]
alpha = {{ type = "float", low = 1e-4, high = 1.0, log = true }}
lr = {{ type = "float", low = 1e-3, high = 3e-2, log = true }}
optimizer = "adam"
depth = 1
width = 16
{extra}
"""


@pytest.fixture
def study_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a small study file and return its path; keyword arguments fill SMALL_STUDY."""
    count = 0

    def write(**kw: object) -> Path:
        nonlocal count
        count += 1
        values = {
            "name": "small",
            "dataset": "iris",
            "setup": "weight_decay",
            "mode": "pareto",
            "objective": "",
            "sampler": '"tpe"',
            "n_trials": 4,
            "seed": 0,
            "epochs": 3,
            "extra": "",
        }
        values.update(kw)
        if values["mode"] == "scalarized" and not values["objective"]:
            values["objective"] = 'objective = "loss1"'
        path = tmp_path / f"study{count}.toml"
        path.write_text(textwrap.dedent(SMALL_STUDY.format(**values)))
        return path

    return write


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Needs ``HPSEARCH_TEST_POSTGRES`` (the URL ``bash .ci/postgres.sh`` prints, whose role may
    create databases); without it the test is skipped, or fails where
    ``HPSEARCH_REQUIRE_POSTGRES`` is set (CI).
    """
    url = os.environ.get("HPSEARCH_TEST_POSTGRES")
    if not url:
        if os.environ.get("HPSEARCH_REQUIRE_POSTGRES"):
            pytest.fail("HPSEARCH_REQUIRE_POSTGRES is set but HPSEARCH_TEST_POSTGRES is not")
        pytest.skip("no PostgreSQL: set HPSEARCH_TEST_POSTGRES (bash .ci/postgres.sh prints one)")

    name = f"hpsearch_t_{uuid.uuid4().hex[:12]}"
    # One PostgreSQL test at a time across the xdist workers, whatever their groups: one of
    # them stops the server for 10 s, which the others must not meet.
    with open(Path(tempfile.gettempdir()) / "hpsearch-postgres-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with _admin(url) as admin:
            admin.execute(f"create database {name}")
        yield f"{url.rsplit('/', 1)[0]}/{name}"
        # A new connection: a test may have restarted the server meanwhile.
        with _admin(url) as admin:
            admin.execute(f"drop database if exists {name} with (force)")


def _admin(url: str, wait: float = 60) -> psycopg.Connection:
    """A connection to the test server, waiting while it restarts (a test restarts it; the
    tests that use it are grouped on one xdist worker, but setup and teardown must not fail
    on a server still starting)."""
    deadline = time.monotonic() + wait
    import psycopg

    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def fresh_python(code: str) -> str:
    """What ``code`` prints in a new Python process (imports the suite already made do not
    count there), checked to exit 0."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
