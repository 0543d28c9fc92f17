"""torch's threads: chosen by hpsearch (cores ÷ workers), overridable, said in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpsearch.core import threads
from hpsearch.core.threads import apply_threads, plan_threads
from tests.test_cli import HPSEARCH, run_cli


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.setattr(threads, "_before_apply", None)


def test_the_cores_are_split_between_the_workers(four_cores) -> None:
    assert plan_threads(1).threads == 4
    assert plan_threads(2).threads == 2
    assert plan_threads(3).threads == 1  # rounded down: never more threads than cores
    assert plan_threads(8).threads == 1  # at least one
    assert "4 usable cores ÷ 2 workers" in plan_threads(2).describe()


def test_busy_cores_change_the_hint_not_the_choice(four_cores, monkeypatch) -> None:
    # The thread count changes float rounding: following the load would make a seeded run
    # depend on what else ran. The line suggests fewer threads instead.
    monkeypatch.setattr(threads, "busy_cores", lambda: 1)
    plan = plan_threads(1)
    assert plan.threads == 4 and "1 of the cores busy with other work: --threads 3" in (
        plan.describe()
    )
    assert "busy" not in plan_threads(1, requested=2).describe()
    monkeypatch.setattr(threads, "busy_cores", lambda: 9)  # overloaded: suggest one thread
    assert "--threads 1 runs faster" in plan_threads(1).describe()


def test_a_request_beats_the_environment_which_beats_the_split(four_cores, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert plan_threads(2).threads == 3
    assert "OMP_NUM_THREADS=3" in plan_threads(2).reason
    assert plan_threads(2, requested=1).threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")  # not a number: ignored
    assert plan_threads(2).threads == 2


def test_what_hpsearch_set_itself_is_not_taken_for_a_users_setting(four_cores, monkeypatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))  # apply_threads writes to it
    apply_threads(4)
    assert plan_threads(2).threads == 2
    # ... and a user's own setting survives a command that overrode it in this process.
    os.environ["OMP_NUM_THREADS"] = "3"
    monkeypatch.setattr(threads, "_applied", None)
    apply_threads(1)  # `--threads 1`
    assert os.environ["OMP_NUM_THREADS"] == "1" and plan_threads(2).threads == 3


def test_busy_cores_are_measured_on_this_process_cores(monkeypatch) -> None:
    # Two CPUs, this process may use only cpu 1; cpu 0 is saturated, cpu 1 half busy.
    samples = iter([{0: (0, 0), 1: (0, 0)}, {0: (100, 100), 1: (50, 100)}])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {1})
    assert threads.busy_cores() == 0  # round(0.5) == 0: half a core is not a busy core
    samples = iter([{0: (0, 0), 1: (0, 0)}, {0: (100, 100), 1: (90, 100)}])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert threads.busy_cores() == 1


def test_usable_cores_follow_the_affinity_not_the_machine() -> None:
    # A scheduler's allocation (taskset, SLURM's cgroup) restricts the affinity.
    code = "from hpsearch.core.threads import usable_cores; print(usable_cores())"
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.skip("taskset is not available")
    assert out.stdout.strip() == "1"


def _probe_run(tmp_path: Path, study: Path, *flags: str, env: dict | None = None) -> str:
    # Runs `hpsearch run` in-process and prints torch's thread count after it.
    code = (
        "import sys, torch; from hpsearch.cli import main; "
        f"code = main({['run', str(study), *flags]!r}); "
        "print('THREADS', torch.get_num_threads(), code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-1] + "\n" + out.stderr


@pytest.mark.parametrize(
    "flags, in_file, expected, reason",
    [
        (["--threads", "1"], None, 1, "--threads 1"),
        ([], 1, 1, "the study file's threads 1"),
        (["--threads", "2"], 1, 2, "--threads 2"),  # the flag beats the file
    ],
)
def test_run_applies_and_states_the_choice(
    tmp_path, study_file, flags, in_file, expected, reason
) -> None:
    extra = f"threads = {in_file}" if in_file else ""
    path = study_file(n_trials=1, epochs=1)
    if extra:  # a [study] key: insert it under the table header
        path.write_text(path.read_text().replace("[study]\n", f"[study]\n{extra}\n", 1))
    env = {"OMP_NUM_THREADS": ""}  # as if unset: no inherited choice
    storage = f"sqlite:///{tmp_path / 't.db'}"
    out = _probe_run(
        tmp_path, path, "--no-progress", "--no-dashboard", "--storage", storage, *flags, env=env
    )
    assert out.startswith(f"THREADS {expected} 0"), out
    # Each trial records its threads: results depend on them.
    (trial,) = optuna.load_study(study_name="small", storage=storage).trials
    assert trial.user_attrs["torch_threads"] == expected
    line = [s for s in out.splitlines() if s.startswith("hpsearch: torch uses")]
    assert len(line) == 1 and f"({reason};" in line[0], out


def test_workers_get_the_cores_split_between_them(tmp_path, study_file, storage) -> None:
    # A module the study file imports records, in every process that loads the file, the
    # threads torch runs with there.
    (tmp_path / "probe.py").write_text(
        "import os, torch\n"
        "with open('threads.txt', 'a') as f:\n"
        "    f.write(f'{os.getpid()} {torch.get_num_threads()}\\n')\n"
    )
    path = study_file(n_trials=2, epochs=1, extra="")
    path.write_text(path.read_text().replace("[study]\n", '[study]\nimports = ["probe.py"]\n', 1))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.Popen(
        [HPSEARCH, "run", str(path), "--workers", "2", "--storage", storage, "--no-progress",
         "--no-dashboard"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    # Each worker runs with the number the launcher's one line states (its value: above).
    stated = re.search(r"torch uses (\d+) threads? in each of 2 workers", stderr)
    assert stated, stderr
    seen = [line.split() for line in (tmp_path / "threads.txt").read_text().splitlines()]
    workers = [int(n) for pid, n in seen if int(pid) != proc.pid]
    assert len(workers) >= 2 and set(workers) == {int(stated[1])}, seen


def test_a_bad_threads_value_is_refused_in_one_line(tmp_path, study_file) -> None:
    path = study_file()
    out = run_cli("run", str(path), "--threads", "0", cwd=tmp_path)
    assert out.returncode == 2 and "--threads" in out.stderr and "[1, 1024]" in out.stderr
    path.write_text(path.read_text().replace("[study]\n", "[study]\nthreads = 0\n", 1))
    out = run_cli("check", str(path), cwd=tmp_path)
    assert out.returncode != 0 and "study.threads" in out.stderr
