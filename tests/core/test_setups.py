from __future__ import annotations

import pytest
import torch
from torch import nn

import hpsearch
from hpsearch import HpsearchError, ModelSpec, load_dataset
from hpsearch.core.setups import TWO_TASK_AUX

SPEC = ModelSpec(kind="mlp", depth=1, width=16)


# Every registered setup (read from the registry: a new one is tested without editing this),
# on a classification and a regression dataset, or on no data for an analytic one.
BUILTIN_CASES = [
    (name, dataset)
    for name in hpsearch.available_setups()
    if not name.startswith("test_")  # setups the tests register
    for dataset in (
        ("none",) if hpsearch.get_setup(name).needs_data is False else ("digits", "diabetes")
    )
]


@pytest.mark.parametrize(("name", "dataset"), BUILTIN_CASES)
def test_builtin_setups_give_two_finite_losses_and_a_metric(name: str, dataset: str) -> None:
    setup = hpsearch.get_setup(name)()
    data = setup.prepare(load_dataset(dataset))
    torch.manual_seed(0)
    module = setup.build_model(data, SPEC)
    l1, l2 = setup.losses(module, data.train.x[:32], data.train.y[:32])
    assert l1.dim() == 0 and l2.dim() == 0 and torch.isfinite(l1) and torch.isfinite(l2)
    (l1 + l2).backward()  # both are differentiable
    out = setup.evaluate(module, data.val)
    assert set(out) >= {"loss1", "loss2", "metric"}
    assert out["loss1"] > 0 and out["loss2"] > 0


def test_weight_decay_and_sparsity_penalize_weight_matrices_only() -> None:
    data = load_dataset("iris")
    torch.manual_seed(0)
    wd = hpsearch.get_setup("weight_decay")()
    module = wd.build_model(data, SPEC)
    weights = [module[0].weight.detach(), module[2].weight.detach()]
    with torch.no_grad():
        _, l2 = wd.losses(module, data.train.x, data.train.y)
        _, l1norm = hpsearch.get_setup("sparsity")().losses(module, data.train.x, data.train.y)
    assert float(l2) == pytest.approx(float(sum((w**2).sum() for w in weights)), rel=1e-6)
    assert float(l1norm) == pytest.approx(float(sum(w.abs().sum() for w in weights)), rel=1e-6)


def test_task_loss_and_metric_match_their_definitions() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    assert hpsearch.task_metric(logits, labels) == pytest.approx(2 / 3)
    assert float(hpsearch.task_loss(logits, labels)) == pytest.approx(
        float(nn.functional.cross_entropy(logits, labels))
    )
    y = torch.tensor([1.0, 2.0, 3.0])
    assert hpsearch.task_metric(y.unsqueeze(-1), y) == 1.0
    assert hpsearch.task_metric(torch.full((3, 1), 2.0), y) == pytest.approx(0.0)


def test_beta_vae_kl_is_zero_for_the_prior_and_eval_is_deterministic() -> None:
    setup = hpsearch.get_setup("beta_vae")(latent_dim=3)
    data = load_dataset("digits")
    torch.manual_seed(0)
    vae = setup.build_model(data, SPEC)
    for layer in (vae.encoder[-1],):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        _, kl = setup.losses(vae, data.val.x, data.val.y)
    assert float(kl) == pytest.approx(0.0, abs=1e-7)
    assert setup.evaluate(vae, data.val) == setup.evaluate(vae, data.val)
    with pytest.raises(HpsearchError, match="no option"):
        hpsearch.get_setup("beta_vae")(latent=3)


@pytest.mark.parametrize("dataset", sorted(TWO_TASK_AUX))
def test_two_task_second_label_is_a_train_tertile(dataset: str) -> None:
    setup = hpsearch.get_setup("two_task")()
    raw = load_dataset(dataset)
    data = setup.prepare(raw)
    labels = data.train.y[:, 1].long()
    share = torch.bincount(labels, minlength=3).double() / len(labels)
    assert (share - 1 / 3).abs().max() < 0.06
    if TWO_TASK_AUX[dataset] == "ink":
        assert data.n_features == raw.n_features
    else:  # the held-out feature is no input any more
        assert data.n_features == raw.n_features - 1
        assert TWO_TASK_AUX[dataset] not in data.feature_names
    # Task A keeps the dataset's own label.
    assert torch.equal(data.val.y[:, 0], raw.val.y.float())


def test_unknown_setup_lists_the_registered_ones() -> None:
    with pytest.raises(HpsearchError, match="unknown setup 'gan'; available: ") as info:
        hpsearch.get_setup("gan")
    listed = str(info.value).split("available: ")[1].split(", ")
    assert {"beta_vae", "sparsity", "two_task", "weight_decay"} <= set(listed)


def test_register_a_setup_from_python() -> None:
    @hpsearch.register_setup("test_half_norm")
    class HalfNorm(hpsearch.Setup):
        loss_names = ("task", "half_norm")
        metric_name = "accuracy"

        def build_model(self, data, spec):
            return hpsearch.build_mlp(data.n_features, data.n_classes, spec)

        def losses(self, module, x, y):
            return hpsearch.task_loss(module(x), y), 0.5 * module[0].weight.pow(2).sum()

    assert hpsearch.get_setup("test_half_norm") is HalfNorm
    assert "test_half_norm" in hpsearch.available_setups()
    result = hpsearch.train(
        HalfNorm(),
        load_dataset("iris"),
        ModelSpec("linear"),
        hpsearch.TrainConfig(lr=0.05, epochs=5),
    )
    assert result.val["metric"] > 0.6
    with pytest.raises(TypeError, match="subclass of hpsearch.Setup"):
        hpsearch.register_setup("bad")(object)


def test_the_mixed_front_shape_takes_numbers_arrays_and_tensors() -> None:
    import math

    import numpy as np
    import torch

    from hpsearch.core.setups import FRONT_SHAPES

    expected = 1 - 0.3 - 0.1 * math.sin(2 * math.pi * 0.3)
    mixed = FRONT_SHAPES["mixed"]
    assert float(mixed(0.3)) == pytest.approx(expected)
    assert float(mixed(np.float32(0.3))) == pytest.approx(expected, rel=1e-6)
    assert mixed(np.array([0.3]))[0] == pytest.approx(expected)
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    value = mixed(t)
    value.backward()  # a tensor keeps its graph
    assert float(value.detach()) == pytest.approx(expected) and t.grad is not None


@pytest.mark.parametrize("name", ["weight_decay", "sparsity"])
def test_one_pass_evaluate_gives_the_generic_evaluate_s_figures(name: str) -> None:
    setup = hpsearch.get_setup(name)()
    data = load_dataset("wine")
    torch.manual_seed(0)
    module = setup.build_model(data, ModelSpec(kind="mlp", depth=1, width=8))
    module.train()
    fast = setup.evaluate(module, data.val)
    assert module.training  # the mode is restored
    generic = hpsearch.Setup.evaluate(setup, module, data.val)
    assert fast == pytest.approx(generic, rel=1e-6)
    assert set(fast) == set(generic)
