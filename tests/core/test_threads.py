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
from tests.cli.test_cli import HPSEARCH, run_cli


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


def test_the_load_watch_counts_other_work_not_this_process(monkeypatch) -> None:
    # Two usable cores; over 10 s they were busy 15 core-seconds, 6 of them this process's own.
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads.os, "sysconf", lambda name: 100)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    ticks = iter(
        [{0: (0, 0), 1: (0, 0), 2: (0, 0)}, {0: (1000, 1000), 1: (500, 1000), 2: (999, 1000)}]
    )
    own = iter([(1.0, 0.0), (6.0, 1.0)])  # (user, system): 6 s of CPU in between
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(ticks))
    monkeypatch.setattr(threads.os, "times", lambda: os.times_result((*next(own), 0, 0, 0)))
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    watch = threads.LoadWatch()
    # cpu 2 is not ours; 15 - 6 = 9 core-seconds of other work in 10 s: 0.9 of a core.
    assert watch.other_busy_cores() == pytest.approx(0.9)


@pytest.mark.parametrize(
    "other, most, expected", [(0.0, 2, 2), (0.9, 2, 1), (2.0, 2, 1), (0.0, 1, 1)]
)
def test_free_threads_are_the_cores_other_work_leaves(monkeypatch, other, most, expected) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads.LoadWatch, "other_busy_cores", lambda self: other)
    assert threads.LoadWatch().free_threads(most) == expected


def test_only_hpsearch_s_own_choice_follows_the_load(four_cores, monkeypatch) -> None:
    assert threads.follows_load()  # nothing asked for, nothing applied
    plan = plan_threads(1)
    apply_threads(plan.threads, follow_load=plan.chosen)
    assert plan.chosen and threads.follows_load()
    apply_threads(plan_threads(1, 2).threads, follow_load=plan_threads(1, 2).chosen)
    assert not threads.follows_load()  # --threads 2
    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's (or a scheduler's) own setting
    assert not threads.follows_load() and not plan_threads(1).chosen


@pytest.mark.parametrize("setup", ["weight_decay", "two_task"])  # fast path, vmap path
def test_population_results_do_not_depend_on_the_thread_count(setup: str) -> None:
    # What lets population mode follow the load (core/threads.py): 1 and 2 threads agree bit
    # for bit. (One trial at a time they do not: float sums are split between the threads.)
    import numpy as np
    import torch

    from hpsearch import ModelSpec, TrainConfig, get_setup, load_dataset
    from hpsearch.core.population import train_population

    rng = np.random.default_rng(0)
    configs = [
        TrainConfig(lr=float(10 ** rng.uniform(-3, -2)), alpha=float(10 ** rng.uniform(-4, -1)),
                    epochs=2, batch_size=64, optimizer="adam", seed=0)
        for _ in range(8)
    ]  # fmt: skip
    data, spec = load_dataset("digits"), ModelSpec(kind="mlp", depth=2, width=64)
    before = torch.get_num_threads()
    runs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results = train_population(get_setup(setup)(), data, spec, configs)
            # repr: full precision, and NaN (the vmap path's metric before the end) equals NaN.
            runs.append([repr((r.train, r.val, r.test)) for r in results])
    finally:
        torch.set_num_threads(before)
    assert runs[0] == runs[1]


def test_population_batches_take_the_threads_the_load_leaves(
    tmp_path, study_file, storage, monkeypatch
) -> None:
    import torch

    import hpsearch

    config = hpsearch.load_study_file(study_file(n_trials=4, epochs=1))
    monkeypatch.setattr(threads, "_applied", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    asked = []

    def free_threads(self, most: int) -> int:
        asked.append(most)
        return 1

    monkeypatch.setattr(threads.LoadWatch, "free_threads", free_threads)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=2))
        assert asked == [2, 2]  # before each batch, up to the planned threads
        trials = optuna.load_study(study_name="small", storage=storage).trials
        assert [t.user_attrs["torch_threads"] for t in trials] == [1, 1, 1, 1]
        # A number someone asked for is kept.
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        hpsearch.run_study(
            config, storage, hpsearch.RunOptions(n_trials=6, progress=False, batch=2)
        )
        trials = optuna.load_study(study_name="small", storage=storage).trials
        assert [t.user_attrs["torch_threads"] for t in trials[4:]] == [2, 2]
        assert len(asked) == 2
    finally:
        torch.set_num_threads(before)


def test_the_api_run_trains_with_the_files_threads_or_the_options(study_file, storage) -> None:
    import dataclasses

    import torch

    import hpsearch

    config = dataclasses.replace(
        hpsearch.load_study_file(study_file(n_trials=1, epochs=1)), threads=1
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False))
        torch.set_num_threads(2)
        more = hpsearch.RunOptions(n_trials=2, threads=2, progress=False)
        hpsearch.run_study(dataclasses.replace(config, threads=1), storage, more)
        trials = optuna.load_study(study_name="small", storage=storage).trials
        assert [t.user_attrs["torch_threads"] for t in trials] == [1, 2]  # options beat file
        with pytest.raises(hpsearch.HpsearchError, match="use run_workers"):
            hpsearch.run_study(config, storage, hpsearch.RunOptions(workers=2))
    finally:
        torch.set_num_threads(before)
