"""Storage faults named plainly: transient ones retried, the rest one line and exit 1, with
nothing left that a rerun cannot recover. Real mounts and a real PostgreSQL restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from hpsearch import counts_toward_target
from hpsearch.errors import storage_fault
from hpsearch.study.storage import is_transient, with_retries
from tests.cli.test_cli import HPSEARCH, run_cli
from tests.conftest import error_lines


def _operational(message: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(message))


def test_transient_faults_are_retried_and_others_are_not() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _operational("connection to server at 127.0.0.1 failed: Connection refused")
        return "ok"

    assert with_retries(flaky, budget=10)() == "ok" and len(calls) == 3

    def full() -> None:
        calls.append(1)
        raise _operational("database or disk is full")

    calls.clear()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        with_retries(full, budget=10)()
    assert len(calls) == 1  # not transient: no retry

    calls.clear()
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        with_retries(lambda: calls.append(1) or flaky_forever(), budget=1.0)()
    assert 0.5 < time.monotonic() - started < 3 and len(calls) >= 2  # bounded


def flaky_forever() -> None:
    raise _operational("server closed the connection unexpectedly")


@pytest.mark.parametrize(
    "message, fault",
    [
        ("database or disk is full", "disk full"),
        ("attempt to write a readonly database", "read-only"),
        ("database disk image is malformed", "corrupt database file"),
        ("file is not a database", "corrupt database file"),
        (
            'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
            "database unreachable",
        ),
        # Permanent refusals, though they too say "connection to server … failed": never
        # retried, never called "busy" (psycopg's real messages).
        (
            'connection to server at "127.0.0.1", port 5432 failed: FATAL:  password '
            'authentication failed for user "hpsearch"',
            "authentication failed (wrong user or password)",
        ),
        (
            'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nope" '
            "does not exist",
            "no such database on the server",
        ),
        (
            'connection to server at "10.0.0.9", port 5432 failed: FATAL:  no pg_hba.conf '
            'entry for host "10.0.0.2"',
            "connection not allowed by the server's pg_hba.conf",
        ),
        ("division by zero", None),
    ],
)
def test_storage_faults_are_named_from_anywhere_in_the_chain(message, fault) -> None:
    try:
        try:
            raise _operational(message)
        except Exception:
            raise AssertionError("Should not reach.")  # noqa: B904 - how Optuna re-raises
    except AssertionError as e:
        assert storage_fault(e) == fault
    assert is_transient(_operational(message)) == (fault == "database unreachable")


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


STUDY = """
[study]
name = "small"
dataset = "iris"
setup = "weight_decay"
mode = "pareto"
n_trials = {n}
sampler = "random"
[budget]
epochs = 1
[params]
alpha = {{ type = "float", low = 1e-4, high = 1.0, log = true }}
"""


def test_a_read_only_disk_is_read_and_named_when_written(tmp_path) -> None:
    study = tmp_path / "s.toml"
    study.write_text(STUDY.format(n=3))
    with _tmpfs(tmp_path / "ro", "4m") as disk:
        storage = f"sqlite:///{disk / 'a.db'}"
        args = ("--storage", storage)
        out = run_cli("run", str(study), *args, "--no-progress", "--no-dashboard", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        _remount(disk, "ro")
        for command in (["list"], ["show", "small"]):
            out = run_cli(*command, *args, cwd=tmp_path)
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() and not out.stderr
        out = run_cli("run", str(study), *args, "--n-trials", "5", "--no-progress", cwd=tmp_path)
        assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
        assert "read-only" in out.stderr and "Traceback" not in out.stderr
        # An output folder on the read-only disk is refused as that, before any work (it
        # used to be blamed on the storage after the table was printed).
        out = run_cli("compare", "small", *args, "--out", str(disk / "cmp"), cwd=tmp_path)
        assert out.returncode == 2 and not out.stdout, out.stderr
        assert "cannot write in" in out.stderr and "storage" not in out.stderr.split(":", 2)[2]


@pytest.mark.parametrize("workers", [1, 3])
def test_a_full_disk_is_named_and_the_same_command_continues_once_there_is_room(
    tmp_path, workers
) -> None:
    study = tmp_path / "s.toml"
    study.write_text(STUDY.format(n=300))
    with _tmpfs(tmp_path / "full", "450k") as disk:
        storage = f"sqlite:///{disk / 'a.db'}"
        cmd = ("run", str(study), "--storage", storage, "--no-progress", "--no-dashboard")
        # Short heartbeats: a trial the full disk left RUNNING goes stale within seconds.
        cmd += ("--workers", str(workers), "--heartbeat", "1")
        out = run_cli(*cmd, cwd=tmp_path)
        assert out.returncode == 1, out.stderr
        assert len(error_lines(out.stderr)) == 1 and "disk full" in out.stderr, out.stderr
        _remount(disk, "size=64m")
        trials = optuna.load_study(study_name="small", storage=storage).trials
        before = sum(counts_toward_target(t) for t in trials)
        assert 0 < before < 300
        # A RUNNING trial whose process filled the disk before its first heartbeat made this
        # rerun wait for ever; it must finish (the timeout fails the test instead).
        out = run_cli(*cmd, "--n-trials", str(before + 3), cwd=tmp_path, timeout=120)
        assert out.returncode == 0, out.stderr
        trials = optuna.load_study(study_name="small", storage=storage).trials
        assert sum(counts_toward_target(t) for t in trials) == before + 3
        assert TrialState.RUNNING not in [t.state for t in trials]


def _pg_cluster() -> tuple[str, str]:
    if os.geteuid() != 0 or shutil.which("pg_lsclusters") is None:
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster (CI has both)")
    version, cluster = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    return version, cluster


@pytest.mark.parametrize("batch", [1, 4], ids=["sequential", "batches of 4"])
def test_workers_ride_out_a_postgresql_restart_and_reach_the_exact_target(
    tmp_path, study_file, postgres_url, batch
) -> None:
    version, cluster = _pg_cluster()
    # Enough batches that the restart falls mid-run however fast a batch trains (with 24
    # trials, 2 batches per worker, all could be stored before the first poll saw one).
    n = 24 if batch == 1 else 72
    path = study_file(n_trials=n, epochs=30, dataset="digits", sampler='"random"')
    cmd = [HPSEARCH, "run", str(path), "--workers", "3", "--batch", str(batch)]
    cmd += ["--no-progress", "--no-dashboard"]
    env = {**os.environ, "HPSEARCH_STORAGE": postgres_url, "HPSEARCH_STORAGE_RETRY_SECONDS": "60"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with contextlib.suppress(KeyError, optuna.exceptions.StorageInternalError):
            trials = optuna.load_study(study_name="small", storage=postgres_url).trials
            if any(t.state == TrialState.COMPLETE for t in trials):
                break
        time.sleep(0.3)
    done_at_restart = sum(counts_toward_target(t) for t in trials)
    subprocess.run(["pg_ctlcluster", version, cluster, "stop", "-m", "fast"], check=True)
    time.sleep(10)  # down long enough for every worker to hit it
    subprocess.run(["pg_ctlcluster", version, cluster, "start"], check=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode() and "Warning" not in err.decode(), err.decode()
    assert done_at_restart < n  # the restart happened mid-run
    trials = optuna.load_study(study_name="small", storage=postgres_url).trials
    assert sum(counts_toward_target(t) for t in trials) == n
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert TrialState.RUNNING not in [t.state for t in trials]


@pytest.mark.parametrize(
    "change, fault",
    [
        ({"password": "not-the-password"}, "authentication failed"),
        ({"database": "no_such_database"}, "no such database"),
    ],
    ids=["wrong password", "no such database"],
)
def test_a_permanent_refusal_fails_at_once_with_its_cause(postgres_url, change, fault) -> None:
    from hpsearch import HpsearchError, open_storage

    wrong = sqlalchemy.engine.make_url(postgres_url).set(**change)
    wrong = wrong.render_as_string(hide_password=False)
    started = time.monotonic()
    with pytest.raises(HpsearchError, match=fault) as info:
        open_storage(wrong)  # the default retry budget is 60 s: none of it may be spent
    assert time.monotonic() - started <= 2.0
    assert "busy" not in str(info.value) and "retrying" not in str(info.value)
    # The same from the command line, a real process: one line, exit 1, no retry notice.
    out = subprocess.run(
        [HPSEARCH, "list"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "HPSEARCH_STORAGE": wrong},
    )  # fmt: skip
    assert out.returncode == 1 and len(error_lines(out.stderr)) == 1, out.stderr
    assert fault in out.stderr and "retrying" not in out.stderr
    assert "not-the-password" not in out.stderr


def test_a_journal_cut_mid_record_by_a_full_disk_is_read_and_continued(tmp_path, capsys) -> None:
    from hpsearch import open_storage

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("x", 0, 1)

    log, raw = tmp_path / "j.log", tmp_path / "raw.log"
    url = f"journal:///{log}"
    optuna.create_study(study_name="j", storage=open_storage(url)).optimize(objective, 3)
    whole = log.read_bytes()
    partial = b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_st'  # the disk filled here
    log.write_bytes(whole + partial)
    raw.write_bytes(whole + partial)
    # Optuna alone appends after the cut record, glued to it: the new trial never reads back.
    with pytest.raises((AttributeError, ValueError)):
        optuna.load_study(study_name="j", storage=_journal(raw)).optimize(objective, 1)
    study = optuna.load_study(study_name="j", storage=open_storage(url))
    assert "cut an incomplete last record (54 bytes" in capsys.readouterr().err
    assert log.read_bytes() == whole and len(study.trials) == 3
    study.optimize(objective, 1)  # appends continue
    reread = optuna.load_study(study_name="j", storage=_journal(log))
    assert [t.number for t in reread.trials] == [0, 1, 2, 3]
    open_storage(url)  # a whole file is left as it is
    assert capsys.readouterr().err == ""


def _journal(path: Path) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))


def test_a_finish_whose_commit_landed_before_the_connection_dropped_is_not_redone(
    tmp_path, monkeypatch
) -> None:
    from hpsearch import open_storage

    real = optuna.storages.RDBStorage.set_trial_state_values
    dropped = []

    def lands_then_drops(self, trial_id, state, values=None):  # noqa: ANN001, ANN202
        done = real(self, trial_id, state, values)
        if not dropped:  # the commit is in; the answer is lost with the connection
            dropped.append(trial_id)
            raise _operational("server closed the connection unexpectedly")
        return done

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", lands_then_drops)
    storage = open_storage(f"sqlite:///{tmp_path / 'f.db'}")
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    assert storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.0])
    assert dropped and study.trials[0].state == TrialState.COMPLETE
    assert study.trials[0].values == [1.0]


def test_only_a_journal_s_incomplete_last_record_is_ever_cut(tmp_path) -> None:
    import io

    from hpsearch import open_storage
    from hpsearch.study.storage import _after_last_newline

    # A record longer than the block read at a time: the cut still ends at its start.
    data = b'{"a":1}\n' + b'{"b":"' + b"x" * 50
    assert _after_last_newline(io.BytesIO(data), len(data), chunk=7) == 8
    assert _after_last_newline(io.BytesIO(b"no newline"), 10, chunk=4) == 0
    # A file that is not a journal (an SQLite file named as one) is never touched.
    other = tmp_path / "study.db"
    other.write_bytes(b"SQLite format 3\x00\n\x00\x01binary")
    with contextlib.suppress(Exception):
        open_storage(f"journal:///{other}")
    assert other.read_bytes() == b"SQLite format 3\x00\n\x00\x01binary"


@pytest.mark.parametrize(
    "message, transient",
    [
        (
            'could not translate host name "db" to address: Temporary failure in name resolution',
            True,
        ),
        ('connection to server at "db" failed: FATAL:  role "nobody" does not exist', False),
    ],
)
def test_what_a_retry_may_get_past(message, transient) -> None:
    assert is_transient(_operational(message)) is transient
    # Optuna's own "does not exist" is no database refusal.
    assert storage_fault(KeyError("Record does not exist.")) is None


def test_a_retried_finish_never_claims_another_process_s_write() -> None:
    from hpsearch.study.storage import _holds

    done = optuna.trial.create_trial(values=[1.0], params={}, distributions={})
    assert _holds(done, TrialState.COMPLETE, [1.0])
    failed = optuna.trial.create_trial(state=TrialState.FAIL, params={}, distributions={})
    assert not _holds(failed, TrialState.FAIL, None)  # another worker may have failed it
