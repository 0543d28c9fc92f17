"""The bottom of the package: one-line errors, exit codes, masked secrets, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import optuna
import pytest

from hpsearch.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    HpsearchError,
    check_choice,
    did_you_mean,
    mask_secrets,
    run_reporting_errors,
)
from tests.cli.test_cli import run_cli, run_main


def torch_sees_a_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


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
    # To the main thread (a signal sent to the process may land in another thread, and the
    # sleep would not be cut short), with Python's own Ctrl-C handler in place whatever an
    # earlier test in this process left there.
    def busy() -> int:
        signal.pthread_kill(threading.main_thread().ident or 0, signum)
        time.sleep(5)
        return 0

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert run_reporting_errors(busy) == code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run the same command again to continue" in err
    assert ("SIGTERM" in err) == (signum == signal.SIGTERM)


# --- "did you mean", missing folders, no side effects ------------------------------------------


@pytest.mark.parametrize(
    "value, allowed, hint",
    [
        ("digit", ("digits", "iris", "none"), "; did you mean 'digits'?"),
        ("sdg", ("sgd", "adam"), "; did you mean 'sgd'?"),  # swapped letters
        ("ReLU", ("relu", "tanh"), "; did you mean 'relu'?"),  # case is ignored
        ("loss", ("loss1", "loss2", "metric"), "; did you mean 'loss1' or 'loss2'?"),  # a tie
        ("mnist", ("digits", "iris", "none"), ""),  # nothing close: nothing suggested
        ("asha", ("none", "median", "hyperband"), ""),
        (3, ("3", "4"), ""),  # not a name
        ("x", (), ""),
    ],
)
def test_did_you_mean_names_the_closest_allowed_name_or_nothing(value, allowed, hint) -> None:
    assert did_you_mean(value, allowed) == hint


def test_check_choice_keeps_the_allowed_names_and_adds_the_one_meant() -> None:
    with pytest.raises(HpsearchError) as info:
        check_choice("activation", "rlu", ("relu", "tanh"))
    assert str(info.value) == "unknown activation 'rlu'; allowed: relu, tanh; did you mean 'relu'?"
    with pytest.raises(HpsearchError) as info:
        check_choice("activation", "softplus", ("relu", "tanh"))
    assert str(info.value) == "unknown activation 'softplus'; allowed: relu, tanh"


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


_DATASETS = "allowed: digits, breast_cancer, wine, iris, diabetes, none"
_STUDY_KEYS = (
    "allowed: name, batch, description, dataset, setup, model, mode, objective, "
    "objective_weights, sampler, pruner, n_trials, seed, timeout, threads, device, imports"
)


@pytest.mark.parametrize(
    "fields, line, meant",
    [
        ({"dataset": "digit"}, f"study.dataset: unknown value 'digit'; {_DATASETS}", "'digits'"),
        ({"dataset": "Iris"}, f"study.dataset: unknown value 'Iris'; {_DATASETS}", "'iris'"),
        ({"dataset": "mnist"}, f"study.dataset: unknown value 'mnist'; {_DATASETS}", None),
        (
            {"sampler": '"tpe"\nn_trial = 3'},
            f"study.n_trial: unknown key; {_STUDY_KEYS}",
            "'n_trials'",
        ),
        ({"sampler": '"tpe"\nzzz = 3'}, f"study.zzz: unknown key; {_STUDY_KEYS}", None),
        ({"sampler": '"tpee"'}, "study.sampler: unknown value 'tpee'; allowed: tpe, ", "'tpe'"),
        (
            {"sampler": '"tpe"\nmodel = "mpl"'},
            "study.model: unknown value 'mpl'; allowed: linear, mlp",
            "'mlp'",
        ),
        (
            {"mode": "paretto"},
            "study.mode: unknown value 'paretto'; allowed: scalarized, pareto",
            "'pareto'",
        ),
        (
            {"mode": "scalarized", "objective": 'objective = "loss"'},
            "allowed: loss1, loss2, metric, weighted",
            "'loss1' or 'loss2'",
        ),
        (
            {"mode": "scalarized", "sampler": '"tpe"\npruner = "medain"'},
            "allowed: none, median, ",
            "'median'",
        ),
        (
            {"setup": "weight_decy"},
            "study.setup: unknown setup 'weight_decy'; available: beta_vae, ",
            "'weight_decay'",
        ),
        ({"setup": "resnet"}, "study.setup: unknown setup 'resnet'; available: beta_vae, ", None),
        (
            {"extra": "lr_decy = 0.1"},
            "params.lr_decy: unknown key; allowed: optimizer, lr, ",
            "'lr_decay'",
        ),
        ({"extra": "dropout = 0.1"}, "params.dropout: unknown key; allowed: optimizer, lr, ", None),
        (
            {"extra": 'activation = "rlu"'},
            "params.activation: 'rlu' (string) is not allowed; must be one of 'relu', 'tanh', "
            "'gelu', 'silu', 'elu', 'leaky_relu', 'sigmoid'",
            "'relu'",
        ),
        (
            {"extra": 'activation = {type = "categorical", choices = ["tanh", "swish"]}'},
            "params.activation.choices: 'swish' (string) is not allowed; must be one of 'relu', ",
            None,
        ),
    ],
)
def test_a_typo_in_a_study_file_names_what_was_meant_and_run_writes_nothing(
    tmp_path, monkeypatch, study_file, fields, line, meant
) -> None:
    monkeypatch.delenv("HPSEARCH_STORAGE", raising=False)  # the default: ./hpsearch.db
    path = study_file(**fields)
    before = _listing(tmp_path)
    out = run_main("run", str(path), "--no-progress", cwd=tmp_path)
    assert out.returncode == EXIT_USAGE and out.stderr.count("\n") == 1, out.stderr
    assert line in out.stderr  # the allowed names are still listed
    if meant is None:  # a far-off word: nothing suggested
        assert "did you mean" not in out.stderr
    else:  # the suggestion ends the line
        assert out.stderr.endswith(f"; did you mean {meant}?\n"), out.stderr
    assert _listing(tmp_path) == before  # no hpsearch.db, no artifacts folder


@pytest.mark.parametrize(
    "args, hint",
    [
        (["rnu", "x.toml"], "invalid choice: 'rnu' (choose from 'run', "),
        (["dashbord"], "invalid choice: 'dashbord' (choose from 'run', "),
        (["fill", "s", "--method", "chebyshv"], "(choose from 'chebyshev', 'mdmm', 'jd')"),
    ],
)
def test_a_mistyped_command_line_choice_names_what_was_meant(tmp_path, args, hint) -> None:
    out = run_main(*args, cwd=tmp_path)
    assert out.returncode == EXIT_USAGE and out.stderr.count("\n") == 1, out.stderr
    meant = {"rnu": "run", "dashbord": "dashboard", "fill": "chebyshev"}[args[0]]
    assert hint in out.stderr and f"; did you mean {meant!r}? (see hpsearch" in out.stderr


@pytest.mark.parametrize("args", [["frobnicate"], ["fill", "s", "--method", "zzzzz"]])
def test_a_far_off_command_line_choice_suggests_nothing(tmp_path, args) -> None:
    out = run_main(*args, cwd=tmp_path)
    assert out.returncode == EXIT_USAGE and "invalid choice" in out.stderr
    assert "did you mean" not in out.stderr


def test_a_mistyped_study_name_names_the_stored_one_meant(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'h.db'}"
    optuna.create_study(study_name="small", storage=storage)
    optuna.create_study(study_name="other", storage=storage)
    out = run_main("show", "smal", "--storage", storage, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR
    assert out.stderr.rstrip().endswith("stored: other, small; did you mean 'small'?")
    out = run_main("show", "zzzz", "--storage", storage, cwd=tmp_path)
    assert out.stderr.rstrip().endswith("stored: other, small")


_MISSING_FOLDER = [
    ["list"],
    ["show", "small"],
    ["compare", "small", "other"],
    ["dashboard", "--port", "0"],
]


@pytest.fixture
def never_serve(monkeypatch) -> None:
    """A dashboard that wrongly starts fails the test at once instead of serving until the
    test's timeout."""
    from hpsearch.results import dashboard

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        raise AssertionError("the dashboard started")

    monkeypatch.setattr(dashboard._ThreadingServer, "serve_forever", serve_forever)


@pytest.mark.parametrize("url", ["sqlite:///no/such/dir/x.db", "journal:///no/such/dir/x.log"])
@pytest.mark.parametrize("args", _MISSING_FOLDER, ids=lambda a: a[0])
def test_a_storage_in_a_missing_folder_names_the_folder_and_creates_nothing(
    tmp_path, never_serve, url, args
) -> None:
    before = _listing(tmp_path)
    out = run_main(*args, "--storage", url, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR
    assert out.stderr == f"hpsearch: error: storage {url!r}: no folder 'no/such/dir'\n"
    assert _listing(tmp_path) == before


def test_run_refuses_an_sqlite_file_in_a_missing_folder_in_one_line(tmp_path, study_file) -> None:
    # Like a journal file: refused, not created (a typo in the path would start a new study).
    path = study_file()
    before = _listing(tmp_path)
    out = run_cli("run", str(path), "--no-progress", "--storage", "sqlite:///no/x.db", cwd=tmp_path)
    assert out.returncode == EXIT_ERROR and "Traceback" not in out.stderr, out.stderr
    assert (
        out.stderr.splitlines()[-1]
        == "hpsearch: error: storage 'sqlite:///no/x.db': no folder 'no'"
    )
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("args", _MISSING_FOLDER, ids=lambda a: a[0])
def test_a_read_only_command_on_a_missing_database_leaves_nothing_behind(
    tmp_path, never_serve, args
) -> None:
    out = run_main(*args, "--storage", "sqlite:///missing.db", cwd=tmp_path)
    assert out.returncode == EXIT_ERROR and "no database file at 'missing.db'" in out.stderr
    assert _listing(tmp_path) == []  # no missing.db, no missing.db-artifacts/


def test_a_dashboard_that_cannot_bind_its_port_leaves_no_artifacts_folder(
    tmp_path, never_serve
) -> None:
    storage = f"sqlite:///{tmp_path / 'd.db'}"
    optuna.create_study(study_name="small", storage=storage)
    before = _listing(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = run_main("dashboard", "--storage", storage, "--port", port, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR and "cannot serve the dashboard" in out.stderr
    assert _listing(tmp_path) == before  # no d.db-artifacts/


def test_an_opened_storage_is_named_by_its_url_without_password(tmp_path, request) -> None:
    from hpsearch.study.storage import describe_storage, open_storage

    url = f"sqlite:///{tmp_path / 'named.db'}"
    assert describe_storage(open_storage(url)) == url  # not "the RDBStorage"
    if os.environ.get("HPSEARCH_TEST_POSTGRES"):
        pg = request.getfixturevalue("postgres_url")
        scheme, rest = pg.split("://", 1)
        credentials, where = rest.split("@", 1)
        user = credentials.split(":")[0]
        assert describe_storage(open_storage(pg)) == f"{scheme}://{user}:***@{where}"


@pytest.mark.skipif(torch_sees_a_gpu(), reason="a GPU is here: the refusal cannot be seen")
@pytest.mark.parametrize("where", ["file", "flag", "workers"])
def test_a_device_that_is_not_there_is_refused_in_one_line_before_any_write(
    tmp_path, study_file, where: str
) -> None:
    seed = '0\ndevice = "cuda:1"' if where == "file" else "0"
    args = ["run", str(study_file(seed=seed)), "--storage", "sqlite:///s.db"]
    args += {
        "file": [],
        "flag": ["--device", "cuda"],
        "workers": ["--device", "cuda", "--workers", "2"],
    }[where]
    out = run_main(*args, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR
    assert out.stderr.count("\n") == 1 and "no CUDA device here" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s.db").exists()
    usage = run_main("run", str(study_file()), "--device", "gpu", cwd=tmp_path)
    assert usage.returncode == EXIT_USAGE and "allowed: cpu, cuda, cuda:N, auto" in usage.stderr


JD = 'method = "jd"\naggregator = { type = "categorical", choices = ["upgrad", "mgda"] }'


@pytest.mark.parametrize("where", ["file", "flag"])
def test_jd_in_a_population_batch_is_refused_in_one_line_before_any_write(
    tmp_path, study_file, where: str
) -> None:
    seed = "0\nbatch = 4" if where == "file" else "0"
    args = ["run", str(study_file(seed=seed, extra=JD)), "--storage", "sqlite:///s.db"]
    out = run_main(*args, *(["--batch", "4"] if where == "flag" else []), cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.count("\n") == 1, out.stderr
    assert 'method = "jd" trains one trial at a time: set batch = 1' in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "s.db").exists()


def test_jd_without_torchjd_says_how_to_install_it_and_writes_nothing(
    tmp_path, study_file, monkeypatch
) -> None:
    import importlib.util

    from hpsearch.core import aggregators

    real = importlib.util.find_spec
    monkeypatch.setattr(
        aggregators.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torchjd" else real(name, *a),
    )
    path = str(study_file(extra=JD))
    for command in (["check", path], ["run", path, "--storage", "sqlite:///s.db"]):
        out = run_main(*command, cwd=tmp_path)
        assert out.returncode != 0 and out.stderr.count("\n") == 1, out.stderr
        assert 'needs torchjd, which is not installed: pip install "hpsearch[jd]"' in out.stderr
    assert not (tmp_path / "s.db").exists()
    assert run_main("check", str(study_file()), cwd=tmp_path).returncode == 0  # others run


@pytest.mark.parametrize("plan", [[], ["--plan"]])
def test_fill_with_jd_says_why_it_cannot_aim(tmp_path, plan) -> None:
    out = run_main("fill", "s", "--method", "jd", *plan, cwd=tmp_path)
    assert out.returncode == EXIT_ERROR and out.stderr.count("\n") == 1, out.stderr
    assert "jd (Jacobian descent) cannot aim into a stretch: its preference weight" in out.stderr
    assert not (tmp_path / "hpsearch.db").exists()


def test_a_searched_w_with_only_knobless_aggregators_is_refused(tmp_path, study_file) -> None:
    extra = 'method = "jd"\naggregator = "mgda"\nw = { type = "float", low = 0.1, high = 0.9 }'
    out = run_main("check", str(study_file(extra=extra)), cwd=tmp_path)
    assert out.returncode != 0 and out.stderr.count("\n") == 1, out.stderr
    assert "params.w" in out.stderr and "mgda take(s) no preference weight" in out.stderr
    assert "search init_seed" in out.stderr
    aiming = extra.replace('"mgda"', '{ type = "categorical", choices = ["mgda", "upgrad"] }')
    assert run_main("check", str(study_file(extra=aiming)), cwd=tmp_path).returncode == 0


def test_run_fill_refuses_jd_before_opening_the_storage(tmp_path) -> None:
    from hpsearch.core.knobs import JD_CANNOT_AIM
    from hpsearch.results.fill import run_fill

    missing = f"sqlite:///{tmp_path / 'none.db'}"
    with pytest.raises(HpsearchError) as info:
        run_fill(missing, "no-such-study", "jd")
    assert str(info.value) == JD_CANNOT_AIM and not (tmp_path / "none.db").exists()
