from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

import hpsearch
from hpsearch import HpsearchError, RunOptions, load_study_file, run_study
from hpsearch.study import storage as storage_module


def _trials(storage: str, name: str = "small") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


@pytest.mark.parametrize("mode", ["pareto", "scalarized"])
def test_every_trial_records_both_losses_and_the_metric(study_file, storage, mode) -> None:
    config = load_study_file(study_file(mode=mode))
    summary = run_study(config, storage, RunOptions(progress=False))
    assert (summary.counted_before, summary.counted_after, summary.target) == (0, 4, 4)
    study = optuna.load_study(study_name="small", storage=storage)
    assert len(study.directions) == (2 if mode == "pareto" else 1)
    assert study.metric_names == (
        ["val_task_loss", "val_sq_weight_norm"] if mode == "pareto" else ["val_task_loss"]
    )
    attrs = study.user_attrs["hpsearch"]
    assert attrs["loss_names"] == ["task_loss", "sq_weight_norm"]
    assert attrs["metric_name"] == "accuracy" and attrs["identity"]["mode"] == mode
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        u = t.user_attrs
        for key in ("val_loss1", "val_loss2", "val_metric", "test_metric", "train_loss1"):
            assert math.isfinite(u[key])
        assert len(u["history"]["val_loss1"]) == u["epochs_run"] == 3
        expected = [u["val_loss1"], u["val_loss2"]] if mode == "pareto" else [u["val_loss1"]]
        assert t.values == pytest.approx(expected)
        assert set(t.params) == {"alpha", "lr"}


@pytest.mark.parametrize(
    "objective, check",
    [
        ('objective = "loss2"', lambda t: t.values[0] == t.user_attrs["val_loss2"]),
        ('objective = "metric"', lambda t: t.values[0] == t.user_attrs["val_metric"]),
        (
            'objective = "weighted"\nobjective_weights = [1.0, 0.5]',
            lambda t: (
                t.values[0]
                == pytest.approx(t.user_attrs["val_loss1"] + 0.5 * t.user_attrs["val_loss2"])
            ),
        ),
    ],
)
def test_scalarized_objectives(study_file, storage, objective, check) -> None:
    run_study(
        load_study_file(study_file(mode="scalarized", objective=objective, n_trials=2)),
        storage,
        RunOptions(progress=False),
    )
    assert all(check(t) for t in _trials(storage))


def test_rerun_continues_to_the_target_and_never_overshoots(study_file, storage) -> None:
    config = load_study_file(study_file(n_trials=3))
    run_study(config, storage, RunOptions(progress=False))
    first = [t.params for t in _trials(storage)]
    again = run_study(config, storage, RunOptions(progress=False))
    assert (again.counted_before, again.counted_after) == (3, 3)
    assert len(_trials(storage)) == 3
    more = run_study(config, storage, RunOptions(n_trials=5, progress=False))
    trials = _trials(storage)
    assert (more.counted_before, more.counted_after, len(trials)) == (3, 5, 5)
    assert [t.params for t in trials[:3]] == first  # the stored trials were kept as they were
    # The continued run does not replay the first run's draws.
    assert all(t.params != p for t in trials[3:] for p in first)


@pytest.mark.parametrize(
    "sampler",
    ['"tpe"', '{ name = "nsgaii", population_size = 2 }', '{ name = "gp", n_startup_trials = 2 }'],
)
def test_same_file_and_seed_give_the_same_trials(study_file, tmp_path, sampler) -> None:
    path = study_file(n_trials=4, sampler=sampler)
    runs = []
    for i in range(2):
        store = f"sqlite:///{tmp_path / f'r{i}.db'}"
        run_study(load_study_file(path), store, RunOptions(progress=False))
        runs.append([(t.params, t.values, t.user_attrs["val_metric"]) for t in _trials(store)])
    assert runs[0] == runs[1]
    store = f"sqlite:///{tmp_path / 'other.db'}"
    run_study(load_study_file(path), store, RunOptions(seed=1, progress=False))
    assert [t.params for t in _trials(store)] != [r[0] for r in runs[0]]


@pytest.mark.parametrize("batch", [1, 3])
def test_a_study_trains_on_the_device_it_names_with_the_same_results(
    study_file, tmp_path, batch
) -> None:
    # The file's device, then --device over it; the CPU named gives what naming none gives.
    runs = []
    for i, (seed, device) in enumerate([("0", None), ('0\ndevice = "auto"', "cpu")]):
        store = f"sqlite:///{tmp_path / f'd{i}.db'}"
        path = study_file(n_trials=3, seed=seed)
        run_study(load_study_file(path), store, RunOptions(progress=False, batch=batch,
                                                           device=device))  # fmt: skip
        trials = _trials(store)
        assert {t.user_attrs["device"] for t in trials} == {"cpu"}
        histories = [{**t.user_attrs["history"], "seconds": None} for t in trials]  # wall time
        runs.append([(t.params, t.values) for t in trials] + histories)
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    "sampler",
    [
        '"tpe"',
        '"random"',
        '{ name = "nsgaii", population_size = 2 }',
        '{ name = "nsgaiii", population_size = 2 }',
        '"qmc"',
        '{ name = "gp", n_startup_trials = 2 }',
    ],
)
@pytest.mark.parametrize("mode", ["pareto", "scalarized"])
def test_every_sampler_runs_in_both_modes(study_file, storage, sampler, mode) -> None:
    config = load_study_file(study_file(sampler=sampler, mode=mode, n_trials=3, epochs=1))
    assert run_study(config, storage, RunOptions(progress=False)).counted_after == 3
    assert all(t.state == TrialState.COMPLETE for t in _trials(storage))


def test_a_diverging_trial_is_stored_as_fail_with_its_reason(study_file, storage) -> None:
    # lr up to 1e8 with plain SGD on diabetes: the large draws diverge, the small ones do not.
    path = study_file(dataset="diabetes", n_trials=8, sampler='"random"')
    path.write_text(
        path.read_text()
        .replace('optimizer = "adam"', 'optimizer = "sgd"')
        .replace(
            'lr = { type = "float", low = 1e-3, high = 3e-2',
            'lr = { type = "float", low = 1e-3, high = 1e8',
        )
    )
    summary = run_study(load_study_file(path), storage, RunOptions(progress=False))
    trials = _trials(storage)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete and summary.failed == len(failed)
    assert all(t.user_attrs["fail_reason"].startswith("diverged: non-finite") for t in failed)
    assert len(trials) == summary.counted_after == 8  # divergence counts; the study went on
    assert {t.user_attrs["device"] for t in trials} == {"cpu"}  # diverged ones included


def test_pruner_prunes_and_pruned_trials_keep_their_losses(study_file, storage) -> None:
    path = study_file(mode="scalarized", n_trials=12, epochs=6, sampler='"random"')
    text = path.read_text().replace(
        "n_trials = 12", 'n_trials = 12\npruner = { name = "median", n_startup_trials = 2 }'
    )
    path.write_text(text)
    run_study(load_study_file(path), storage, RunOptions(progress=False))
    pruned = [t for t in _trials(storage) if t.state == TrialState.PRUNED]
    assert pruned
    assert all(
        math.isfinite(t.user_attrs["val_loss2"]) and t.user_attrs["epochs_run"] < 6 for t in pruned
    )
    assert all(t.user_attrs["device"] == "cpu" for t in pruned)


@pytest.mark.parametrize("pruner", ['"successive_halving"', '{ name = "hyperband" }'])
def test_a_pruner_without_options_takes_its_defaults(study_file, storage, pruner) -> None:
    path = study_file(mode="scalarized", n_trials=3, sampler='"random"')
    path.write_text(path.read_text().replace("n_trials = 3", f"n_trials = 3\npruner = {pruner}"))
    summary = run_study(load_study_file(path), storage, RunOptions(progress=False))
    assert summary.counted_after == 3


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"epochs": 4}, r"budget.epochs \(stored 3, file 4\)"),
        # The search space itself: another range, and a parameter more.
        ({"extra": 'momentum = { type = "float", low = 0.5, high = 0.9 }'}, "momentum"),
        ({"extra": 'flood = { type = "float", low = 0.0, high = 0.2 }'}, "flood"),
    ],
)
def test_a_changed_definition_under_the_same_name_is_refused(
    study_file, storage, change, fragment
) -> None:
    run_study(load_study_file(study_file(n_trials=2)), storage, RunOptions(progress=False))
    changed = load_study_file(study_file(n_trials=2, **change))
    with pytest.raises(HpsearchError, match=fragment) as info:
        run_study(changed, storage, RunOptions(progress=False))
    assert "different definition" in str(info.value) and "new [study] name" in str(info.value)
    assert len(_trials(storage)) == 2


def test_a_study_not_made_by_hpsearch_is_refused(study_file, storage) -> None:
    optuna.create_study(study_name="small", storage=storage)
    with pytest.raises(HpsearchError, match="not made by hpsearch"):
        run_study(load_study_file(study_file()), storage, RunOptions(progress=False))


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("sqlite:////no/such/dir/x.db", "no folder '/no/such/dir'"),
        ("hpsearch.db", "is not a URL"),
        ("nosuchdb://host/x", "cannot open storage 'nosuchdb://host/x'"),
        # The password is not shown.
        ("postgresql://u:pw@127.0.0.1:1/x", r"cannot open storage 'postgresql://u:\*\*\*@127"),
        ("journal:////no/such/dir/x.log", "no folder '/no/such/dir'"),
        ("journal://x.log", "use journal:///path/to/file.log"),
    ],
)
def test_an_unreachable_storage_is_one_line(study_file, url, fragment) -> None:
    with pytest.raises(HpsearchError, match=fragment) as info:
        run_study(load_study_file(study_file()), url, RunOptions(progress=False))
    assert "\n" not in str(info.value) and ":pw@" not in str(info.value)


def test_counts_toward_target_policy() -> None:
    def trial(state, **attrs):
        return optuna.trial.create_trial(
            state=state, values=[1.0] if state == TrialState.COMPLETE else None, user_attrs=attrs
        )

    assert hpsearch.counts_toward_target(trial(TrialState.COMPLETE))
    assert hpsearch.counts_toward_target(trial(TrialState.PRUNED))
    assert hpsearch.counts_toward_target(trial(TrialState.FAIL, fail_reason="diverged: x"))
    assert not hpsearch.counts_toward_target(trial(TrialState.FAIL))


def test_timeout_stops_starting_trials(study_file, storage) -> None:
    config = load_study_file(study_file(n_trials=1000, epochs=5, dataset="digits"))
    summary = run_study(config, storage, RunOptions(timeout=1.0, progress=False))
    assert 1 <= summary.counted_after < 1000
    assert len(_trials(storage)) == summary.counted_after


def test_sqlite_storage_uses_wal(study_file, tmp_path) -> None:
    import sqlite3

    path = tmp_path / "wal.db"
    run_study(
        load_study_file(study_file(n_trials=1)), f"sqlite:///{path}", RunOptions(progress=False)
    )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "error",
    [
        "(sqlite3.OperationalError) table studies already exists",
        "(sqlite3.IntegrityError) UNIQUE constraint failed: version_info.version_info_id",
        '(psycopg.errors.DuplicateTable) relation "studies" already exists',
    ],
)
def test_opening_a_new_database_retries_when_another_process_creates_its_tables(
    tmp_path, monkeypatch, error
) -> None:
    # Workers started together on a new database race to create its tables; the loser must
    # try again (and find them), not exit with "cannot open storage".
    real = storage_module._open_rdb
    calls = []

    def racing(url, heartbeat):
        calls.append(url)
        if len(calls) == 1:
            raise RuntimeError(error)
        return real(url, heartbeat)

    monkeypatch.setattr(storage_module, "_open_rdb", racing)
    storage = storage_module.open_storage(f"sqlite:///{tmp_path / 'new.db'}")
    assert len(calls) == 2 and optuna.get_all_study_names(storage) == []


def test_a_storage_error_that_is_no_race_is_not_retried(tmp_path, monkeypatch) -> None:
    calls = []

    def broken(url, heartbeat):
        calls.append(url)
        raise RuntimeError("(sqlite3.OperationalError) disk I/O error")

    monkeypatch.setattr(storage_module, "_open_rdb", broken)
    with pytest.raises(HpsearchError, match="cannot open storage .*disk I/O error"):
        storage_module.open_storage(f"sqlite:///{tmp_path / 'new.db'}")
    assert len(calls) == 1
