from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest

import hpsearch
from hpsearch.cli import main
from tests.conftest import REPO, SMALL_STUDY, error_lines

HPSEARCH = str(Path(sys.executable).parent / "hpsearch")


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``hpsearch ARGS`` as a real process (exit codes, signals, one-line errors)."""
    return subprocess.run(
        [HPSEARCH, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def run_main(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``hpsearch ARGS`` in this process, through the same ``main``: for tests about what a
    command computes, without the ~3 s start-up of a new process."""
    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["hpsearch", *args], code, out.getvalue(), err.getvalue())


def test_run_list_show_with_the_default_storage(tmp_path, study_file) -> None:
    path = study_file(n_trials=3)
    out = run_cli("run", str(path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "hpsearch.db").is_file()  # default: sqlite:///hpsearch.db here
    assert "study 'small': 3/3 trials (3 new, 0 diverged)" in out.stdout
    assert "val_task_loss" in out.stdout and "3/3" in out.stderr  # table and progress bar
    listed = run_main("list", cwd=tmp_path)
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("small"))
    assert row.split()[:6] == ["small", "pareto", "iris", "weight_decay", "3", "0"]
    shown = run_main("show", "small", cwd=tmp_path)
    assert shown.returncode == 0
    header = shown.stdout.splitlines()[0].split()
    (tmp_path / "figs").mkdir()  # a missing folder is refused, never created
    plotted = run_main("show", "small", "--plot", "figs/front.png", cwd=tmp_path)
    assert plotted.returncode == 0 and "wrote figs/front.png" in plotted.stderr
    assert (tmp_path / "figs" / "front.png").stat().st_size > 10_000
    assert header == [
        "trial", "val_task_loss", "val_sq_weight_norm", "val_accuracy", "alpha_range", "alpha", "lr"
    ]  # fmt: skip
    assert shown.stdout.splitlines()[-1].startswith("diagnosis: ")
    again = run_main("run", str(path), "--n-trials", "4", "--no-progress", cwd=tmp_path)
    assert "4/4 trials (1 new" in again.stdout


def test_seed_flag_overrides_the_file(tmp_path, study_file) -> None:
    path = study_file(n_trials=2, mode="scalarized")
    values = []
    for seed in ("5", "5", "6"):
        store = f"sqlite:///{tmp_path / f'seed{len(values)}.db'}"
        out = run_main(
            "run",
            str(path),
            "--seed",
            seed,
            "--storage",
            store,
            "--no-progress",
            "--no-dashboard",
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        trials = optuna.load_study(study_name="small", storage=store).trials
        values.append([(t.params, t.value, t.user_attrs["train_seed"]) for t in trials])
    assert values[0] == values[1] != values[2]
    assert values[0][0][2] == 5
    # --no-dashboard: no note, no figures, no artifact folder.
    rdb = optuna.storages.RDBStorage(store)
    attrs = rdb.get_study_system_attrs(rdb.get_study_id_from_name("small"))
    assert not any(k.startswith("dashboard:") for k in attrs)
    assert not list(tmp_path.glob("*-artifacts"))


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('[study]\nname = "x"\n', "study.dataset: missing (required)"),
        ("[study\n", "invalid TOML"),
        (None, "no such study file"),
    ],
)
def test_a_bad_study_file_is_one_line_exit_2_and_writes_nothing(tmp_path, content, fragment):
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content)
    out = run_cli("run", str(path), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"hpsearch: error: {path}: ") and fragment in out.stderr
    assert not (tmp_path / "hpsearch.db").exists()


def test_a_bad_study_file_leaves_an_existing_storage_untouched(tmp_path, study_file) -> None:
    good = study_file(n_trials=2)
    assert run_cli("run", str(good), "--no-progress", cwd=tmp_path).returncode == 0
    before = (tmp_path / "hpsearch.db").read_bytes()
    bad = study_file(n_trials=2, sampler='"annealing"')
    out = run_cli("run", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "study.sampler: unknown value 'annealing'" in out.stderr
    assert (tmp_path / "hpsearch.db").read_bytes() == before


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, str]:
    """A study file and a storage holding its one-trial study, shared by the error tests."""
    folder = tmp_path_factory.mktemp("stored")
    path = folder / "study.toml"
    path.write_text(
        SMALL_STUDY.format(
            name="small",
            dataset="iris",
            setup="weight_decay",
            mode="pareto",
            objective="",
            sampler='"tpe"',
            n_trials=1,
            seed=0,
            epochs=1,
            extra="",
        )
    )
    store = f"sqlite:///{folder / 'store.db'}"
    assert (
        run_cli(
            "run", str(path), "--storage", store, "--no-progress", "--no-dashboard", cwd=folder
        ).returncode
        == 0
    )
    return path, store


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (
            ["run", "STUDY", "--storage", "sqlite:////no/such/dir/x.db"],
            1,
            "storage 'sqlite:////no/such/dir/x.db': no folder '/no/such/dir'",
        ),
        (["list"], 1, "no database file at 'hpsearch.db'"),
        (["show", "nope", "--storage", "STORE"], 1, "no study 'nope' in"),
        (["run", "STUDY", "--n-trials", "0"], 2, "must be an integer in [1, 1000000]"),
        (["run", "STUDY", "--seed", "x"], 2, "'x' is not an integer"),
        (["dashboard", "--port", "70000"], 2, "must be in [0, 65535]"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, stored, args, code, fragment):
    path, store = stored
    args = [str(path) if a == "STUDY" else store if a == "STORE" else a for a in args]
    out = run_cli(*args, cwd=tmp_path)
    assert out.returncode == code
    assert fragment in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(("hpsearch: error:", "hpsearch "))


def test_check_validates_every_shipped_study_file(tmp_path) -> None:
    files = sorted(str(p) for p in (REPO / "studies").glob("*.toml"))
    out = run_cli("check", *files, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.count(": ok (") == len(files)
    (tmp_path / "bad.toml").write_text("[study]\n")
    out = run_cli("check", files[0], str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert out.returncode == 2 and "bad.toml: study.name: missing" in out.stderr


@pytest.mark.parametrize("command", [[], ["run"], ["list"], ["show"], ["dashboard"], ["check"]])
def test_help_everywhere(tmp_path, command) -> None:
    out = run_cli(*command, "--help", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("usage: hpsearch")
    if command == ["run"]:
        assert "--n-trials" in out.stdout and "--timeout" in out.stdout and "--seed" in out.stdout


def test_ctrl_c_keeps_finished_trials_and_the_same_command_continues(tmp_path, study_file):
    path = study_file(n_trials=200, epochs=30, dataset="digits")
    store = tmp_path / "hpsearch.db"
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--no-progress", "--no-dashboard"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and done < 2:
        time.sleep(0.5)
        if store.exists():
            try:
                done = len(
                    optuna.load_study(study_name="small", storage=f"sqlite:///{store}").trials
                )
            except Exception:
                done = 0
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "interrupted; finished trials are stored" in err
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{store}")
    states = [t.state for t in study.trials]
    finished = states.count(optuna.trial.TrialState.COMPLETE)
    assert finished >= 1 and optuna.trial.TrialState.RUNNING not in states
    out = run_cli(
        "run", str(path), "--n-trials", str(finished + 1), "--no-progress", "--no-dashboard",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0 and f"{finished + 1}/{finished + 1} trials (1 new" in out.stdout


def test_dashboard_serves_the_study(tmp_path, study_file) -> None:
    path = study_file(n_trials=2)
    assert run_cli("run", str(path), "--no-progress", cwd=tmp_path).returncode == 0
    port, proc = _start_dashboard(tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        studies = _get_json(f"http://127.0.0.1:{port}/api/studies", proc)
        summary = next(s for s in studies["study_summaries"] if s["study_name"] == "small")
        detail = _get_json(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}", proc)
        assert len(detail["trials"]) == 2
        assert detail["objective_names"] == ["val_task_loss", "val_sq_weight_norm"]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=10).read()
        assert b"<html" in page.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_dashboard_stops_on_a_signal_even_started_with_sigint_ignored(
    tmp_path, study_file, signum
) -> None:
    # A script's background job, or a test runner's worker, starts it with SIGINT ignored:
    # Python then installs no Ctrl-C handler of its own, and the server ran on for ever.
    path = study_file(n_trials=1)
    assert run_cli("run", str(path), "--no-progress", cwd=tmp_path).returncode == 0
    port, proc = _start_dashboard(
        tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    try:
        _get_json(f"http://127.0.0.1:{port}/api/studies", proc)
        proc.send_signal(signum)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def _start_dashboard(cwd: Path, **popen: Any) -> tuple[int, subprocess.Popen]:
    """``hpsearch dashboard`` on a free port in ``cwd``: (port, process)."""
    port = _free_port()
    proc = subprocess.Popen(
        [HPSEARCH, "dashboard", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    return port, proc


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, proc: subprocess.Popen | None) -> dict:
    deadline = time.time() + 60
    while True:
        try:
            return json.loads(urllib.request.urlopen(url, timeout=10).read())
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.time() > deadline:
                raise
            time.sleep(0.3)


def test_show_and_compare_open_the_storage_once(tmp_path, study_file, monkeypatch) -> None:
    from hpsearch.study import storage as storage_module

    storage = f"sqlite:///{tmp_path / 'once.db'}"
    for name in ("a", "b"):
        hpsearch.run_study(
            hpsearch.load_study_file(study_file(name=name, n_trials=2)),
            storage,
            hpsearch.RunOptions(progress=False),
        )
    opened = []
    real = storage_module._open_rdb
    monkeypatch.setattr(storage_module, "_open_rdb", lambda *a: opened.append(a) or real(*a))
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["show", "a", "--storage", storage]) == 0
        assert len(opened) == 1
        assert main(["compare", "a", "b", "--storage", storage, "--out", "cmp"]) == 0
    assert len(opened) == 2  # one more for the second command, none per study
    # A run with the dashboard's note, figures and artifact (published at start, end and as
    # it goes): one open too.
    run = ["run", str(study_file(name="c", n_trials=2)), "--storage", storage, "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(run) == 0
    assert len(opened) == 3
    assert (tmp_path / "once.db-artifacts").is_dir()


def test_the_dashboard_banner_never_shows_the_storage_password(monkeypatch, capsys) -> None:
    from hpsearch.results import dashboard

    class Server:
        server_port = 1234

        def serve_forever(self) -> None:
            raise KeyboardInterrupt

        def server_close(self) -> None:
            pass

    monkeypatch.setattr(dashboard, "make_dashboard_server", lambda *a: Server())
    dashboard.serve_dashboard("postgresql://alice:s3cret@db.example/hp")
    err = capsys.readouterr().err
    assert "s3cret" not in err and "postgresql://alice:***@db.example/hp" in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["show", "small", "--plot", "DIR"], "DIR is a folder; give a file name such as DIR/"),
        (["show", "small", "--plot", "front"], "give a file name ending in .png, got 'front'"),
        (["show", "small", "--plot", "no/such/x.png"], "no folder 'no/such' for no/such/x.png"),
        (["compare", "small", "--out", "FILE"], "FILE is a file, not a folder"),
        (["importance", "small", "--json", "DIR"], "DIR is a folder; give a file name such as"),
        (["importance", "small", "--plot", "x.svg"], "ending in .png, got 'x.svg'"),
        (["fill", "small", "--out", "FILE"], "FILE is a file, not a folder"),
        (["mgs", "studies/mgs-digits.toml", "--out", "FILE"], "FILE is a file, not a folder"),
    ],
)
def test_an_output_path_is_refused_before_any_work(tmp_path, stored, args, fragment) -> None:
    _, store = stored
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_text("mine")
    out = run_main(
        *[a.replace("studies/", f"{REPO}/studies/") for a in args], "--storage", store, cwd=tmp_path
    )
    assert out.returncode == 2 and fragment in out.stderr, out.stderr
    assert out.stdout == "" and len(error_lines(out.stderr)) == 1  # nothing printed first
    assert not (tmp_path / "no").exists() and (tmp_path / "FILE").read_text() == "mine"


def test_a_query_string_in_an_sqlite_url_is_read_by_every_command(tmp_path, stored) -> None:
    _, store = stored
    with_query = f"{store}?timeout=30"
    for command in (["list"], ["show", "small"]):
        out = run_main(*command, "--storage", with_query, cwd=tmp_path)
        assert out.returncode == 0 and out.stdout.strip() and not out.stderr, out.stderr


def test_infinite_values_and_odd_names_read_the_same_in_list_and_show(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'odd.db'}"
    name = "two\nlines\tname"
    study = optuna.create_study(study_name=name, storage=storage, directions=["minimize"] * 2)
    front = [(0.0, 3.0), (1.0, 2.0), (2.0, 1.0), (3.0, 0.0)]
    for values in [*front, (4.0, 4.0), (float("-inf"), 5.0), (float("inf"), 0.5)]:
        study.add_trial(optuna.trial.create_trial(values=list(values), params={}, distributions={}))
    listed = run_main("list", "--storage", storage, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("two")]
    assert row.startswith(r"two\nlines\tname")  # one row, the name escaped
    pareto_at = listed.stdout.splitlines()[0].index("pareto")
    assert row[pareto_at:].split()[0] == "4"  # the -inf trial does not stand for the front
    shown = run_main("show", name, "--storage", storage, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "(2 complete trials left off the front: an infinite or NaN loss)" in shown.stdout
    assert "over 4 Pareto points" in shown.stdout


def test_a_failed_output_write_is_named_as_such_not_as_a_storage_fault(tmp_path) -> None:
    import errno

    from hpsearch.cli._base import writing

    out = tmp_path / "out"
    full = OSError(errno.ENOSPC, "No space left on device", str(out / "compare.png"))
    with (
        pytest.raises(hpsearch.HpsearchError, match=r"cannot write .*out: No space left"),
        writing(out),
    ):
        raise full
    elsewhere = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "s.log"))
    # The storage's file: left to the storage's one line.
    with pytest.raises(OSError), writing(out):
        raise elsewhere
