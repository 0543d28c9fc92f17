from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

import hpsearch
import hpsearch.study.batch  # monkeypatched by attribute below: loaded whatever ran first
from hpsearch import DivergedError, ModelSpec, TrainConfig, load_dataset, train
from hpsearch.core.population import population_groups, train_population

SPEC = ModelSpec(kind="mlp", depth=2, width=16)


def _assert_same(seq: hpsearch.TrainResult, pop: hpsearch.TrainResult) -> None:
    for split in ("train", "val", "test"):
        a, b = getattr(seq, split), getattr(pop, split)
        assert set(a) == set(b)
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (split, key)
    assert [r.val_loss1 for r in pop.history] == pytest.approx(
        [r.val_loss1 for r in seq.history], rel=1e-4, abs=1e-6
    )
    assert [r.lr for r in pop.history] == pytest.approx([r.lr for r in seq.history])
    if not any(math.isnan(r.val_metric) for r in pop.history):  # the stacked fast path's
        assert [r.val_metric for r in pop.history] == pytest.approx(
            [r.val_metric for r in seq.history], rel=1e-4, abs=1e-5
        )
    assert set(pop.info) == set(seq.info)
    for key in seq.info:
        assert pop.info[key] == pytest.approx(seq.info[key], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("optimizer", hpsearch.OPTIMIZERS)
# Jacobian descent trains one run at a time; its refusal here is tests/core/test_jd.py's.
@pytest.mark.parametrize("method", [m for m in hpsearch.INNER_METHODS if m != "jd"])
def test_each_member_equals_the_sequential_run(optimizer: str, method: str) -> None:
    setup = hpsearch.get_setup("weight_decay")()
    data = load_dataset("wine")
    configs = [
        TrainConfig(
            optimizer=optimizer,
            method=method,
            lr=lr,
            alpha=alpha,
            flood=flood,
            w=w,
            epsilon=eps,
            damping=1.0,
            lambda_lr=0.1,
            lr_decay=decay,
            seed=seed,
            epochs=4,
            batch_size=32,
        )
        for lr, alpha, flood, w, eps, decay, seed in [
            (0.01, 1e-3, 0.0, 0.3, 10.0, 1.0, 0),
            (0.003, 1e-2, 0.1, 0.7, 20.0, 0.9, 0),
            (0.02, 0.0, 0.05, 0.5, 5.0, 0.8, 1),  # another seed: its own init and batch order
        ]
    ]
    results = train_population(setup, data, SPEC, configs)
    for config, result in zip(configs, results, strict=True):
        _assert_same(train(setup, data, SPEC, config), result)


@pytest.mark.parametrize("setup_name, dataset", [("two_task", "digits"), ("sparsity", "diabetes")])
def test_other_setups_equal_the_sequential_run(setup_name: str, dataset: str) -> None:
    setup = hpsearch.get_setup(setup_name)()
    data = load_dataset(dataset)
    configs = [TrainConfig(lr=lr, alpha=0.1, epochs=2) for lr in (1e-3, 1e-2)]
    for config, result in zip(configs, train_population(setup, data, SPEC, configs), strict=True):
        _assert_same(train(setup, data, SPEC, config), result)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "leaky_relu"])
def test_the_stacked_fast_path_equals_the_sequential_run(activation: str) -> None:
    setup = hpsearch.get_setup("sparsity")()
    data = load_dataset("wine")
    spec = ModelSpec(kind="mlp", depth=2, width=16, activation=activation)
    configs = [TrainConfig(lr=lr, alpha=1e-3, flood=0.05, epochs=3) for lr in (1e-3, 1e-2)]
    results = train_population(setup, data, spec, configs)
    for config, result in zip(configs, results, strict=True):
        seq = train(setup, data, spec, config)
        _assert_same(seq, result)
        # The fast path records the validation metric every epoch, as the sequential run does.
        assert not any(math.isnan(r.val_metric) for r in result.history)


def test_a_setup_declaring_the_batched_protocol_takes_the_fast_path(monkeypatch) -> None:
    from hpsearch.core.setups import BatchedSetup, WeightDecay

    assert isinstance(hpsearch.get_setup("weight_decay")(), BatchedSetup)
    assert not isinstance(hpsearch.get_setup("beta_vae")(), BatchedSetup)

    def refuse(*args, **kwargs):
        raise RuntimeError("fast path taken")

    # The declared protocol, not vmap, computes the gradients of a weight_decay population.
    monkeypatch.setattr(WeightDecay, "batched_loss_grads", refuse)
    configs = [TrainConfig(lr=1e-2, alpha=1e-3, epochs=1)] * 2
    with pytest.raises(RuntimeError, match="fast path taken"):
        train_population(WeightDecay(), load_dataset("wine"), ModelSpec("mlp"), configs)


def test_a_diverging_member_fails_alone() -> None:
    setup = hpsearch.get_setup("weight_decay")()
    data = load_dataset("diabetes")
    configs = [TrainConfig(optimizer="sgd", lr=lr, epochs=3) for lr in (0.01, 1e8, 0.02)]
    results = train_population(setup, data, SPEC, configs)
    assert isinstance(results[1], DivergedError)
    assert str(results[1]).startswith("diverged: non-finite")
    for i in (0, 2):
        _assert_same(train(setup, data, SPEC, configs[i]), results[i])


class _Stop(Exception):
    pass


@pytest.mark.parametrize("kw", [{}, {"backstitch": 0.3}], ids=["plain", "backstitch"])
def test_a_member_stopped_by_its_callback_stops_alone(kw: dict) -> None:
    # What pruning one trial of a batch needs: the callback's exception is that member's result,
    # raised after the epoch it saw; the other members go on, equal to their sequential runs.
    setup, data = hpsearch.get_setup("weight_decay")(), load_dataset("wine")
    configs = [TrainConfig(lr=lr, alpha=1e-3, epochs=4, **kw) for lr in (0.003, 0.01, 0.02)]
    seen: list[tuple[int, int]] = []

    def on_epoch_end(k: int, record: hpsearch.EpochRecord) -> None:
        seen.append((k, record.epoch))
        if k == 1 and record.epoch == 2:
            raise _Stop("pruned")

    results = train_population(setup, data, SPEC, configs, on_epoch_end)
    assert isinstance(results[1], _Stop)
    assert sorted(e for k, e in seen if k == 1) == [1, 2]
    assert sorted(e for k, e in seen if k == 0) == [1, 2, 3, 4]
    for i in (0, 2):
        _assert_same(train(setup, data, SPEC, configs[i]), results[i])


def test_a_population_whose_members_all_stop_ends_early(monkeypatch) -> None:
    setup, data = hpsearch.get_setup("weight_decay")(), load_dataset("wine")
    configs = [TrainConfig(lr=lr, epochs=50, batch_size=1000) for lr in (0.003, 0.01)]
    epochs: list[int] = []
    steps = []
    loss_grads = type(setup).batched_loss_grads

    def counted(*args, **kwargs):
        steps.append(1)
        return loss_grads(*args, **kwargs)

    monkeypatch.setattr(type(setup), "batched_loss_grads", counted)

    def stop_at_3(k: int, record: hpsearch.EpochRecord) -> None:
        epochs.append(record.epoch)
        if record.epoch == 3:
            raise _Stop

    results = train_population(setup, data, SPEC, configs, stop_at_3)
    assert all(isinstance(r, _Stop) for r in results) and max(epochs) == 3
    assert len(steps) == 3  # one full batch per epoch, no step after the last member stopped


def test_population_groups_split_what_cannot_share_a_batch() -> None:
    configs = [
        TrainConfig(optimizer="adam"),
        TrainConfig(optimizer="sgd"),
        TrainConfig(optimizer="adam", lr=0.1),
        TrainConfig(optimizer="adam", epochs=3),
        TrainConfig(optimizer="adam", method="mdmm"),
    ]
    assert population_groups(configs) == [[0, 2], [1], [3], [4]]
    with pytest.raises(hpsearch.HpsearchError, match="must agree on optimizer"):
        train_population(
            hpsearch.get_setup("weight_decay")(), load_dataset("iris"), SPEC, configs[:2]
        )


@pytest.mark.parametrize("mode", ["pareto", "scalarized"])
def test_run_study_in_population_mode(study_file, storage, mode) -> None:
    path = study_file(
        mode=mode,
        n_trials=7,
        dataset="diabetes",
        sampler='{ name = "nsgaii", population_size = 3 }',
    )
    # Two optimizers (two groups per batch) and a learning-rate range that partly diverges.
    path.write_text(
        path.read_text()
        .replace(
            'optimizer = "adam"', 'optimizer = { type = "categorical", choices = ["sgd", "adam"] }'
        )
        .replace(
            'lr = { type = "float", low = 1e-3, high = 3e-2',
            'lr = { type = "float", low = 1e-3, high = 1e6',
        )
    )
    summary = hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=3)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert len(trials) == summary.counted_after == 7  # batches of 3, 3, 1: no overshoot
    assert TrialState.RUNNING not in [t.state for t in trials]
    for t in trials:
        if t.state == TrialState.FAIL:
            assert t.user_attrs["fail_reason"].startswith("diverged")
        else:
            assert math.isfinite(t.user_attrs["val_loss2"]) and t.user_attrs["population_size"] >= 1
    assert any(t.state == TrialState.COMPLETE for t in trials)


def test_population_batches_continue_the_samplers_state(study_file, storage) -> None:
    # QMC keeps its position in the sequence in a study system attr: written back after each
    # batch, the second batch continues the sequence instead of repeating the first.
    path = study_file(n_trials=8, sampler='{ name = "qmc", qmc_type = "sobol" }')
    hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=4)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    points = {(t.params["alpha"], t.params["lr"]) for t in trials}
    assert len(trials) == len(points) == 8


def test_population_batches_are_nsga2_generations(study_file, storage) -> None:
    path = study_file(n_trials=6, sampler='{ name = "nsgaii", population_size = 3 }')
    hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=3)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert [t.system_attrs["NSGAIISampler:generation"] for t in trials] == [0, 0, 0, 1, 1, 1]


def test_an_interrupted_batch_keeps_the_groups_already_trained(
    study_file, storage, monkeypatch
) -> None:
    path = study_file(
        n_trials=6,
        extra='optimizer = { type = "categorical", choices = ["sgd", "adam"] }',
    )
    path.write_text(path.read_text().replace('optimizer = "adam"\n', ""))
    config = hpsearch.load_study_file(path)
    real = hpsearch.study.batch.train_population
    calls = []

    def interrupted_after_one_group(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(hpsearch.study.batch, "train_population", interrupted_after_one_group)
    with pytest.raises(KeyboardInterrupt):
        hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=6))
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert len(trials) == 6 and TrialState.RUNNING not in [t.state for t in trials]
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    # The first group is stored; the rest of the batch is FAIL without a reason: not counted.
    assert len({t.params["optimizer"] for t in done}) == 1 and 0 < len(done) < 6
    for t in trials:
        if t.state != TrialState.COMPLETE:
            assert t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs
            assert t.params["optimizer"] != done[0].params["optimizer"]
    monkeypatch.setattr(hpsearch.study.batch, "train_population", real)
    summary = hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=6))
    assert summary.counted_before == len(done) and summary.counted_after == 6


def test_population_mode_on_postgresql(study_file, postgres_url) -> None:
    path = study_file(n_trials=6, sampler='{ name = "nsgaii", population_size = 3 }')
    summary = hpsearch.run_study(
        hpsearch.load_study_file(path), postgres_url, hpsearch.RunOptions(progress=False, batch=3)
    )
    trials = optuna.load_study(study_name="small", storage=postgres_url).trials
    assert summary.counted_after == 6 and [t.number for t in trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE and "val_loss1" in t.user_attrs for t in trials)


_BACKSTITCH = [{"backstitch": 0.3}, {"backstitch": 0.1}, {"backstitch": 0.5, "seed": 4}]
_INTERVAL_2 = [{"backstitch": b, "backstitch_interval": 2} for b in (0.3, 0.2)]
_IFLOOD = [{"flood": b, "flood_mode": "sample"} for b in (1.0, 0.0)] + [
    {"flood": 0.6, "flood_mode": "sample", "seed": 4}
]  # a level of 0: that member is not flooded


@pytest.mark.parametrize(
    "members", [_BACKSTITCH, _INTERVAL_2, _IFLOOD], ids=["backstitch", "interval-2", "iflood"]
)
@pytest.mark.parametrize(
    "setup_name, dataset, path, optimizer",
    [
        ("weight_decay", "wine", "fast", "sgd"),
        ("weight_decay", "wine", "fast", "momentum"),
        ("weight_decay", "wine", "fast", "adam"),
        ("weight_decay", "wine", "vmap", "adam"),
        ("two_task", "digits", "vmap", "adam"),
    ],
    ids=["fast-sgd", "fast-momentum", "fast-adam", "vmap-adam", "two_task-adam"],
)  # fmt: skip
def test_backstitch_and_iflood_members_equal_the_sequential_run(
    members: list, setup_name: str, dataset: str, path: str, optimizer: str, monkeypatch
) -> None:
    # Batched: each member's two backstitch steps, or its rows flooded at its own level.
    setup, data = hpsearch.get_setup(setup_name)(), load_dataset(dataset)
    if members[0].get("flood_mode") == "sample" and not setup.has_sample_losses():
        pytest.skip(f"{setup_name} has no per-sample losses")
    if path == "vmap":
        monkeypatch.setattr(hpsearch.core.population, "stacked_supported", lambda module: False)
    lrs = (0.003, 0.01, 0.02) if optimizer == "adam" else (0.03, 0.05, 0.1)
    configs = [
        TrainConfig(optimizer=optimizer, lr=lr, alpha=1e-3, epochs=3, batch_size=32, **kw)
        for lr, kw in zip(lrs, members, strict=False)
    ]
    assert len(population_groups(configs)) == 1
    results = train_population(setup, data, SPEC, configs)
    for config, result in zip(configs, results, strict=True):
        _assert_same(train(setup, data, SPEC, config), result)


def test_backstitched_and_plain_members_train_in_separate_groups() -> None:
    # A plain member beside backstitched ones would take their ascent steps (lr 0, but its
    # optimizer state would move): they form groups of their own, as do the floodings.
    configs = [
        TrainConfig(backstitch=0.3),
        TrainConfig(),
        TrainConfig(backstitch=0.1),
        TrainConfig(backstitch=0.1, backstitch_interval=2),
        TrainConfig(flood=0.1, flood_mode="sample"),
        TrainConfig(flood=0.1),
    ]
    assert population_groups(configs) == [[0, 2], [1, 5], [3], [4]]


@pytest.mark.parametrize("batch", [1, 4])
def test_a_grid_study_visits_every_point_once(study_file, storage, batch: int) -> None:
    path = study_file(mode="scalarized", objective='objective = "metric"', n_trials=6)
    path.write_text(
        path.read_text()
        .replace('sampler = "tpe"', 'sampler = "grid"')
        .replace(
            'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
            'flood = { type = "float", low = 0.0, high = 0.5, step = 0.25 }',
        )
        .replace(
            'lr = { type = "float", low = 1e-3, high = 3e-2, log = true }',
            'lr = { type = "categorical", choices = [0.01, 0.03] }',
        )
    )
    config = hpsearch.load_study_file(path)
    summary = hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=batch))
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert summary.counted_after == len(trials) == 6
    assert all(t.state == TrialState.COMPLETE for t in trials)
    points = sorted((t.params["flood"], t.params["lr"]) for t in trials)
    assert points == [(b, lr) for b in (0.0, 0.25, 0.5) for lr in (0.01, 0.03)]
    # The run is seeded: the same file visits the grid in the same order.
    again = hpsearch.run_study(
        config, storage.replace("test.db", "again.db"), hpsearch.RunOptions(progress=False)
    )
    order = [(t.params["flood"], t.params["lr"]) for t in trials]
    redo = optuna.load_study(study_name="small", storage=storage.replace("test.db", "again.db"))
    assert (
        again.counted_after == 6
        and [(t.params["flood"], t.params["lr"]) for t in redo.trials] == order
    )


def test_mdmm_members_with_a_slack_budget_equal_the_unconstrained_run() -> None:
    # The clamp of MDMM's coefficient lives in one helper that both paths use: a member whose
    # budget is never reached trains exactly as linear α = 0 does, alone or in a population.
    setup = hpsearch.get_setup("weight_decay")()
    data = load_dataset("wine")
    base = dict(optimizer="adam", lr=0.01, epochs=3, batch_size=32, seed=0)
    free = train(setup, data, SPEC, TrainConfig(method="linear", alpha=0.0, **base))
    members = train_population(
        setup, data, SPEC, [TrainConfig(method="mdmm", epsilon=e, **base) for e in (1e6, 1e7)]
    )
    for member in members:
        assert member.val["loss1"] == pytest.approx(free.val["loss1"], rel=1e-4)
        assert member.val["loss2"] == pytest.approx(free.val["loss2"], rel=1e-4)


@pytest.mark.parametrize("kind", ["sqlite"])  # a journal stores each group once trained
def test_a_batch_shows_as_running_while_it_trains(
    study_file, tmp_path, monkeypatch, kind: str
) -> None:
    storage = (
        f"sqlite:///{tmp_path / 'r.db'}" if kind == "sqlite" else f"journal:///{tmp_path / 'r.log'}"
    )
    config = hpsearch.load_study_file(study_file(n_trials=4))
    real = hpsearch.study.batch.train_population
    seen = []

    def look_then_train(*args, **kwargs):
        # What another process (the dashboard) reads while the batch trains.
        other = optuna.load_study(study_name="small", storage=_open(storage))
        seen.append([(t.number, t.state, dict(t.params)) for t in other.trials])
        return real(*args, **kwargs)

    monkeypatch.setattr(hpsearch.study.batch, "train_population", look_then_train)
    hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=4))
    (running,) = seen
    assert [(n, s) for n, s, _ in running] == [(i, TrialState.RUNNING) for i in range(4)]
    assert all({"alpha", "lr"} <= set(params) for _, _, params in running)
    trials = optuna.load_study(study_name="small", storage=_open(storage)).trials
    # The same trials, completed in place: same numbers and params, no second copy.
    assert [(t.number, t.params) for t in trials] == [(n, p) for n, _, p in running]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.user_attrs["population_size"] == 4 for t in trials)


def _open(storage: str):
    return hpsearch.open_storage(storage)


def test_a_dead_workers_batch_goes_stale_and_the_study_completes(study_file, tmp_path) -> None:
    # A batch stored RUNNING by a process that then died (no more heartbeats): the next run
    # fails it as stale instead of letting it hold its slots for ever.
    import time

    from hpsearch.study.persist import start_trials
    from hpsearch.study.storage import GRACE_INTERVALS

    url = f"sqlite:///{tmp_path / 'dead.db'}"
    config = hpsearch.load_study_file(study_file(n_trials=4, epochs=1))
    hpsearch.run_study(
        config, url, hpsearch.RunOptions(n_trials=1, progress=False, batch=1, heartbeat=1)
    )
    study = optuna.load_study(study_name="small", storage=hpsearch.open_storage(url, heartbeat=1))
    asked = optuna.create_study()
    trial = asked.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 3e-2, log=True)})
    trial.set_user_attr("population_size", 3)
    dead = asked._storage.get_trial(trial._trial_id)
    start_trials(study, [dead, dead, dead])
    time.sleep(GRACE_INTERVALS * 1 + 1.5)
    summary = hpsearch.run_study(
        config, url, hpsearch.RunOptions(progress=False, batch=3, heartbeat=1)
    )
    trials = optuna.load_study(study_name="small", storage=url).trials
    assert summary.counted_after == 4 and TrialState.RUNNING not in [t.state for t in trials]
    assert [t.state for t in trials[1:4]] == [TrialState.FAIL] * 3  # the dead batch


def _refill_configs(optimizer: str, method: str) -> tuple[list[TrainConfig], list[TrainConfig]]:
    def config(lr: float, seed: int) -> TrainConfig:
        return TrainConfig(
            optimizer=optimizer, method=method, lr=lr, alpha=1e-3, lr_decay=0.9, seed=seed,
            epsilon=5.0, damping=1.0, lambda_lr=0.1, epochs=4, batch_size=32,
        )  # fmt: skip

    first = [config(0.01, 0), config(0.003, 1), config(0.02, 2)]
    # Seed 0 again: the same seed as a member already running, started at another epoch.
    refills = [config(0.005, 3), config(0.01, 0), config(0.002, 5), config(0.03, 6)]
    return first, refills


@pytest.mark.parametrize(
    "setup_name, optimizer, method",
    [
        ("weight_decay", "adam", "linear"),  # Adam's step counts differ between cohorts
        ("weight_decay", "nesterov", "mdmm"),  # momentum buffers and multipliers start at 0
        ("two_task", "adam", "chebyshev"),  # through vmap; scales from the new members' start
    ],
)
def test_runs_that_refill_freed_slots_equal_their_sequential_run(
    setup_name: str, optimizer: str, method: str
) -> None:
    setup = hpsearch.get_setup(setup_name)()
    data = load_dataset("wine")
    first, refills = _refill_configs(optimizer, method)
    queue = list(refills)
    ended: list[list[int]] = []

    def judge(records):  # run 1 stops after epoch 2, run 4 (the second refill) after epoch 1
        return {i: _Stop() for i, r in records if (i, r.epoch) in ((1, 2), (4, 1))}

    def refill(free: int) -> list[TrainConfig]:
        taken, queue[:] = queue[:free], queue[free:]
        return taken

    results = train_population(
        setup, data, SPEC, first, judge=judge, refill=refill,
        on_results=lambda runs: ended.append([i for i, _ in runs]),
    )  # fmt: skip
    assert len(results) == 7 and not queue
    # Epoch 2 stops run 1: run 3 takes its slot; epoch 4 ends runs 0 and 2: runs 4 and 5;
    # epoch 5 stops run 4 (its first): run 6; then runs 3, 5 and 6 end at their 4th epoch.
    assert ended == [[1], [0, 2], [4], [3], [5], [6]]
    assert isinstance(results[1], _Stop) and isinstance(results[4], _Stop)
    for config, result in zip(first + refills, results, strict=True):
        if not isinstance(result, _Stop):
            assert len(result.history) == 4
            _assert_same(train(setup, data, SPEC, config), result)


def test_a_refill_must_join_the_group() -> None:
    first, _ = _refill_configs("adam", "linear")
    with pytest.raises(hpsearch.HpsearchError, match="a refill must agree on"):
        train_population(
            hpsearch.get_setup("weight_decay")(), load_dataset("wine"), SPEC, first,
            judge=lambda records: {i: _Stop() for i, _ in records if i == 0},
            refill=lambda free: [TrainConfig(optimizer="sgd", epochs=4, batch_size=32)],
        )  # fmt: skip


PRUNING = 'pruner = { name = "successive_halving", min_resource = 1, reduction_factor = 3 }'


def _rung_point(trial, rung: int) -> tuple[float, float]:
    history = trial.user_attrs["history"]
    return history["val_loss1"][rung - 1], history["val_loss2"][rung - 1]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_batch_pruning_stores_pruned_runs_and_refills_their_slots(
    study_file, tmp_path, kind
) -> None:
    storage = _storage(kind, tmp_path)
    path = study_file(n_trials=14, epochs=9, objective=PRUNING, sampler='"random"')
    summary = hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=4)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    # Exactly the target asked, though pruned slots were refilled.
    assert len(trials) == summary.counted_after == 14
    states = [t.state for t in trials]
    assert set(states) == {TrialState.COMPLETE, TrialState.PRUNED}
    for t in trials:
        epochs = t.user_attrs["epochs_run"]
        assert len(t.user_attrs["history"]["val_loss1"]) == epochs
        assert t.user_attrs["val_loss1"] == pytest.approx(
            t.user_attrs["history"]["val_loss1"][-1], rel=1e-5
        )
        assert t.user_attrs["population_size"] == 4
        if t.state == TrialState.COMPLETE:
            assert epochs == 9
            continue
        assert epochs in (1, 3)  # the rungs below 9 epochs
        # Stopped because runs that reached the same rung beat it there (margin 0).
        mine = _rung_point(t, epochs)
        others = [
            _rung_point(o, epochs) for o in trials
            if o is not t and len(o.user_attrs["history"]["val_loss1"]) >= epochs
        ]  # fmt: skip
        assert any(a <= mine[0] and b <= mine[1] and (a, b) != mine for a, b in others)
    # Refilled: a trial asked after the first batch started before that batch's last ended.
    first_done = max(t.datetime_complete for t in trials[:4])
    assert any(t.datetime_start < first_done for t in trials[4:])


def _storage(kind: str, tmp_path) -> str | optuna.storages.BaseStorage:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'p.db'}"
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(tmp_path / "p.log")))


def test_scalarized_batch_pruning_reports_every_epoch(study_file, storage) -> None:
    path = study_file(
        mode="scalarized", n_trials=9, epochs=9, sampler='"random"',
        objective=f'objective = "loss1"\n{PRUNING}',
    )  # fmt: skip
    hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=3)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert len(trials) == 9
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned
    for t in trials:
        history = t.user_attrs["history"]["val_loss1"]
        reported = [t.intermediate_values[e + 1] for e in range(len(history))]
        assert reported == pytest.approx(history, rel=1e-5)
    for t in pruned:  # Optuna's value of a pruned trial: its last report
        assert t.value == t.intermediate_values[t.user_attrs["epochs_run"]]


@pytest.mark.parametrize(
    "mode, pruner, batch, message",
    [
        ("scalarized", '"median"', 4, "pruner 'median' prunes one trial at a time"),
        ("pareto", '"successive_halving"', 1, "runs across a population batch: set batch > 1"),
        (
            "scalarized",
            '{ name = "successive_halving", margin = 0.1 }',
            1,
            "margin applies to pruning across a population batch only",
        ),
    ],
)
def test_a_pruner_the_mode_cannot_apply_is_refused(
    study_file, storage, mode, pruner, batch, message
) -> None:
    objective = f"pruner = {pruner}" + ('\nobjective = "loss1"' if mode == "scalarized" else "")
    path = study_file(mode=mode, objective=objective)
    with pytest.raises(hpsearch.HpsearchError, match=message):
        hpsearch.run_study(
            hpsearch.load_study_file(path),
            storage,
            hpsearch.RunOptions(progress=False, batch=batch),
        )


def test_batch_pruning_with_two_groups_keeps_each_population_within_the_batch(
    study_file, storage
) -> None:
    # Refills the sampler puts in the other optimizer's group wait for it, take the free
    # slots, and train at most `batch` at once: asked trials never pile up past the batch.
    path = study_file(
        n_trials=16, epochs=9, objective=PRUNING, sampler='"random"',
        extra='optimizer = { type = "categorical", choices = ["sgd", "adam"] }',
    )  # fmt: skip
    path.write_text(path.read_text().replace('optimizer = "adam"\n', ""))
    hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=4)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert len(trials) == 16
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert {t.params["optimizer"] for t in trials} == {"sgd", "adam"}
    assert all(1 <= t.user_attrs["population_size"] <= 4 for t in trials)
    # At no time more than 4 trials asked and not ended (training, or waiting for a group).
    for t in trials:
        outstanding = [
            o for o in trials if o.datetime_start <= t.datetime_start < o.datetime_complete
        ]
        assert len(outstanding) <= 4


def test_batch_pruning_on_the_metric_prunes_on_the_vmap_path(study_file, storage) -> None:
    """two_task has no hand-derived fast path: through vmap its metric used to be NaN before
    the last epoch, so pruning on it stopped nothing."""
    objective = f'objective = "metric"\n{PRUNING}'
    path = study_file(
        mode="scalarized", setup="two_task", dataset="wine", objective=objective,
        n_trials=8, epochs=9, sampler='"random"',
    )  # fmt: skip
    hpsearch.run_study(
        hpsearch.load_study_file(path), storage, hpsearch.RunOptions(progress=False, batch=4)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert TrialState.PRUNED in [t.state for t in trials]
    for t in trials:  # the metric every epoch, so every rung could rank the runs
        metric = t.user_attrs["history"]["val_metric"]
        assert len(metric) == t.user_attrs["epochs_run"] and all(math.isfinite(m) for m in metric)
