"""``init_seed``: the initial weights' seed, apart from the batch order's (fixed, searched, or
one per trial), in both training paths and through a study."""

from __future__ import annotations

import optuna
import pytest
import torch

import hpsearch
from hpsearch import ModelSpec, TrainConfig, load_dataset, load_study_file, train
from hpsearch.core.population import train_population
from hpsearch.study.config import trial_init_seed

SPEC = ModelSpec(kind="mlp", depth=1, width=8)


def _initial_weights(config: TrainConfig) -> torch.Tensor:
    """The first layer's weights before any step: a run of zero learning rate would still
    step (Adam's bias), so read them off a fresh model seeded as training seeds it."""
    setup = hpsearch.get_setup("weight_decay")()
    data = setup.prepare(load_dataset("iris"))
    torch.manual_seed(config.weights_seed)
    return next(setup.build_model(data, SPEC).parameters()).detach().clone()


def test_init_seed_sets_the_weights_and_leaves_the_batch_order() -> None:
    setup = hpsearch.get_setup("weight_decay")()
    data = load_dataset("iris")
    base = TrainConfig(lr=0.01, epochs=3, batch_size=16, seed=3)

    def run(**kw: object) -> list[float]:
        return [
            r.val_loss1
            for r in train(setup, data, SPEC, TrainConfig(**{**vars(base), **kw})).history
        ]

    # None means the run's seed: the same run as init_seed = seed.
    assert run() == run(init_seed=3)
    # Another init seed, same batch order: a run of its own, but not the run of seed 9 (whose
    # batch order differs too).
    assert run(init_seed=9) != run()
    assert run(init_seed=9) != run(seed=9)
    # What it changes is the starting point: seed 3 with init 9 starts where seed 9 starts.
    assert torch.equal(
        _initial_weights(TrainConfig(seed=3, init_seed=9)), _initial_weights(TrainConfig(seed=9))
    )


def test_population_members_with_their_own_init_seed_equal_their_sequential_run() -> None:
    setup = hpsearch.get_setup("weight_decay")()
    data = load_dataset("wine")
    configs = [
        TrainConfig(lr=0.01, alpha=1e-3, epochs=3, batch_size=32, seed=0, init_seed=s)
        for s in (None, 5, 11)
    ]
    results = train_population(setup, data, SPEC, configs)
    finals = []
    for config, result in zip(configs, results, strict=True):
        alone = train(setup, data, SPEC, config)
        assert result.val["loss1"] == pytest.approx(alone.val["loss1"], rel=1e-4, abs=1e-6)
        finals.append(result.val["loss1"])
    assert len(set(finals)) == 3  # three starting points, three runs


@pytest.mark.parametrize("batch", [1, 3])
def test_init_seed_trial_gives_each_trial_its_own_recorded_start(
    study_file, storage, batch
) -> None:
    path = study_file(n_trials=6, extra='init_seed = "trial"')
    config = load_study_file(path)
    assert config.params["init_seed"].value == "trial"
    hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False, batch=batch))
    trials = optuna.load_study(study_name="small", storage=storage).trials
    seeds = [t.user_attrs["init_seed"] for t in trials]
    assert seeds == [trial_init_seed(0, t.number) for t in trials]
    assert len(set(seeds)) == 6 and all(t.user_attrs["train_seed"] == 0 for t in trials)
    # A trial is reproduced from what it recorded: its parameters and both seeds.
    t = trials[4]
    train_config, model, _ = config.resolve(t.params, trial_number=t.number)
    assert train_config.init_seed == seeds[4]
    again = train(hpsearch.get_setup("weight_decay")(), config.load_data(), model, train_config)
    assert again.val["loss1"] == pytest.approx(t.user_attrs["val_loss1"], rel=1e-4, abs=1e-6)


def test_trial_init_seeds_of_neighbouring_studies_do_not_overlap() -> None:
    a = {trial_init_seed(0, n) for n in range(200)}
    b = {trial_init_seed(1, n) for n in range(200)}
    assert len(a) == 200 and not a & b


def test_a_searched_init_seed_is_a_parameter_of_the_trial(study_file, storage) -> None:
    path = study_file(n_trials=4, extra='init_seed = { type = "int", low = 0, high = 3 }')
    hpsearch.run_study(load_study_file(path), storage, hpsearch.RunOptions(progress=False))
    trials = optuna.load_study(study_name="small", storage=storage).trials
    assert all(t.user_attrs["init_seed"] == t.params["init_seed"] for t in trials)


@pytest.mark.parametrize("value", ['"first"', "-1", "1.5", "true"])
def test_a_wrong_init_seed_names_what_is_allowed(study_file, value) -> None:
    path = study_file(extra=f"init_seed = {value}")
    with pytest.raises(hpsearch.StudyFileError) as info:
        load_study_file(path)
    assert info.value.key == "params.init_seed"
    assert "an integer in [0, 4294967295] or 'trial'" in str(info.value)
