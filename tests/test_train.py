from __future__ import annotations

import math

import pytest
import torch

import hpsearch
from hpsearch import DivergedError, HpsearchError, ModelSpec, TrainConfig, load_dataset, train

SPEC = ModelSpec(kind="mlp", depth=1, width=16)


def _run(setup: str = "weight_decay", dataset: str = "iris", **kw) -> hpsearch.TrainResult:
    cfg = TrainConfig(**{"lr": 0.01, "epochs": 5, **kw})
    return train(hpsearch.get_setup(setup)(), load_dataset(dataset), SPEC, cfg)


def test_flooded_loss_flips_the_gradient_below_the_flood_level() -> None:
    for value, b, expected, grad in [(0.5, 0.2, 0.5, 1.0), (0.1, 0.2, 0.3, -1.0)]:
        loss = torch.tensor(value, requires_grad=True)
        out = hpsearch.flooded_loss(loss, b)
        out.backward()
        assert float(out.detach()) == pytest.approx(expected)
        assert float(loss.grad) == grad
    loss = torch.tensor(0.1)
    assert hpsearch.flooded_loss(loss, 0.0) is loss


def test_combined_loss_is_flooded_task_loss_plus_alpha_times_l2() -> None:
    out = hpsearch.combined_loss(torch.tensor(0.1), torch.tensor(3.0), alpha=0.5, flood=0.2)
    assert float(out) == pytest.approx(0.3 + 1.5)


@pytest.mark.parametrize(
    "optimizer, lr",
    [
        ("sgd", 0.1),
        ("momentum", 0.05),
        ("nesterov", 0.05),
        ("adagrad", 0.05),
        ("rmsprop", 0.003),
        ("adam", 0.005),
    ],
)
def test_every_optimizer_trains(optimizer: str, lr: float) -> None:
    result = _run(optimizer=optimizer, lr=lr, epochs=15, dataset="wine")
    first = result.history[0]
    assert result.history[-1].train_objective < 0.7 * first.train_objective
    assert result.val["metric"] >= 0.85


def test_history_has_one_record_per_epoch_and_decays_lr() -> None:
    result = _run(epochs=4, lr=0.1, lr_decay=0.5, optimizer="sgd")
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert [r.lr for r in result.history] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    cols = result.history_columns()
    assert cols["val_loss1"] == pytest.approx([r.val_loss1 for r in result.history], rel=1e-5)
    assert "epoch" not in cols and len(cols["lr"]) == 4
    assert result.val["loss1"] == result.history[-1].val_loss1
    assert set(result.test) >= {"loss1", "loss2", "metric"}


def test_larger_alpha_gives_a_smaller_penalty() -> None:
    norms = [
        _run(alpha=a, epochs=10, optimizer="adam", lr=0.02).val["loss2"] for a in (0.0, 0.01, 0.1)
    ]
    assert norms[0] > norms[1] > norms[2]


def test_flooding_keeps_the_training_loss_near_the_flood_level() -> None:
    free = _run(epochs=40, lr=0.01, dataset="wine")
    flooded = _run(epochs=40, lr=0.01, dataset="wine", flood=0.3)
    assert free.train["loss1"] < 0.1
    assert 0.2 < flooded.train["loss1"] < 0.4


def test_same_seed_same_result_other_seed_other_result() -> None:
    a, b, c = _run(seed=1), _run(seed=1), _run(seed=2)
    assert a.val == b.val and a.history == b.history
    assert a.val["loss1"] != c.val["loss1"]


def test_beta_vae_training_is_reproducible() -> None:
    a = _run("beta_vae", "digits", epochs=2, alpha=1.0)
    b = _run("beta_vae", "digits", epochs=2, alpha=1.0)
    assert a.val == b.val


def test_divergence_raises_with_the_reason() -> None:
    with pytest.raises(DivergedError, match=r"diverged: non-finite .* at epoch 1"):
        _run(optimizer="sgd", lr=1e8, dataset="diabetes", epochs=3)


def test_on_epoch_end_sees_every_epoch_and_can_stop_training() -> None:
    seen = []

    class Stop(Exception):
        pass

    def callback(record: hpsearch.EpochRecord) -> None:
        seen.append(record.epoch)
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(
            hpsearch.get_setup("weight_decay")(),
            load_dataset("iris"),
            SPEC,
            TrainConfig(epochs=5),
            on_epoch_end=callback,
        )
    assert seen == [1, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"momentum": 1.0}, "momentum=1.0"),
        ({"epochs": 0}, "epochs=0"),
    ],
)
def test_bad_train_config(kwargs: dict, match: str) -> None:
    with pytest.raises(HpsearchError, match=match):
        TrainConfig(**kwargs)


def test_losses_are_finite_numbers() -> None:
    result = _run("two_task", "digits", epochs=2, alpha=1.0)
    assert all(math.isfinite(v) for v in result.val.values())
    assert "metric_b" in result.val
