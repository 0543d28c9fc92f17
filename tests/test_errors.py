"""The bottom of the package: one-line errors, exit codes, masked secrets, SIGTERM."""

from __future__ import annotations

import os
import signal
import time

import pytest

from hpsearch.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    HpsearchError,
    mask_secrets,
    run_reporting_errors,
)
from tests.test_cli import run_main


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg://u:p%40ss@127.0.0.1/x", "postgresql+psycopg://u:***@127.0.0.1/x"),
        ("storage 'u:pw@host/db' is not a URL", "storage 'u:***@host/db' is not a URL"),
        (
            "a postgresql://u:p@ss@h/d and mysql://v:w@h2/e",
            "a postgresql://u:***@h/d and mysql://v:***@h2/e",
        ),
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
        ("http://host:8080/x", "http://host:8080/x"),
    ],
)
def test_mask_secrets_hides_every_password_and_nothing_else(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown


def test_an_error_naming_a_url_is_printed_masked(capsys) -> None:
    def fail() -> int:
        raise HpsearchError("cannot open storage 'postgresql://u:s3cret@h/db': refused")

    assert run_reporting_errors(fail) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "s3cret" not in err and "u:***@h/db" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "bad", ["postgresql://u:s3cret@", "u:s3cret@nohost", "postgresql:/u:s3cret@h/x"]
)
def test_a_malformed_storage_url_is_never_echoed_with_its_password(tmp_path, bad: str) -> None:
    out = run_main("list", "--storage", bad, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR and "s3cret" not in out.stdout + out.stderr
    assert out.stderr.count("\n") == 1, out.stderr


def test_the_storage_can_come_from_the_environment(tmp_path, monkeypatch, study_file) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("HPSEARCH_STORAGE", f"sqlite:///{db}")
    out = run_main(
        "run", str(study_file(n_trials=1)), "--no-progress", "--no-dashboard", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert db.is_file() and not (tmp_path / "hpsearch.db").exists()
    assert "small" in run_main("list", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    "signum, code", [(signal.SIGTERM, EXIT_TERMINATED), (signal.SIGINT, EXIT_INTERRUPTED)]
)
def test_sigterm_stops_like_ctrl_c_anywhere_with_its_own_exit_code(capsys, signum, code) -> None:
    def busy() -> int:
        os.kill(os.getpid(), signum)
        time.sleep(5)
        return 0

    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert run_reporting_errors(busy) == code
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run the same command again to continue" in err
    assert ("SIGTERM" in err) == (signum == signal.SIGTERM)
