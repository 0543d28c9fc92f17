from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hpsearch import ModelSpec
from hpsearch.core.models import ACTIVATIONS, build_mlp
from hpsearch.core.stacked import (
    stacked_backward,
    stacked_forward,
    stacked_supported,
    stacked_task_loss,
)

K, B, D = 3, 5, 4


def _members(activation: str, n_out: int) -> tuple[list[nn.Sequential], dict[str, torch.Tensor]]:
    members = []
    for seed in range(K):
        torch.manual_seed(seed)
        members.append(build_mlp(D, n_out, ModelSpec(depth=2, width=6, activation=activation)))
    names = [n for n, _ in members[0].named_parameters()]
    params = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]) for n in names
    }
    return members, params


@pytest.mark.parametrize("shared", [True, False], ids=["shared-batch", "own-batches"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_and_backward_equal_autograd_per_member(activation: str, shared: bool) -> None:
    members, params = _members(activation, n_out=3)
    torch.manual_seed(10)
    x = torch.randn(B, D) if shared else torch.randn(K, B, D)
    grad_out = torch.randn(K, B, 3)
    tape = stacked_forward(members[0], params, x)
    grads = stacked_backward(members[0], params, tape, grad_out)
    assert set(grads) == set(params)
    for k, member in enumerate(members):
        out = member(x if shared else x[k])
        torch.testing.assert_close(tape[-1][k], out.detach(), rtol=1e-5, atol=1e-6)
        expected = torch.autograd.grad((out * grad_out[k]).sum(), list(member.parameters()))
        for (name, _), g in zip(member.named_parameters(), expected, strict=True):
            torch.testing.assert_close(grads[name][k], g, rtol=1e-5, atol=1e-6, msg=name)


def test_backward_writes_into_the_given_tensors() -> None:
    members, params = _members("relu", n_out=3)
    x = torch.randn(B, D)
    tape = stacked_forward(members[0], params, x)
    out = {n: torch.full_like(p, float("nan")) for n, p in params.items()}
    grads = stacked_backward(members[0], params, tape, torch.ones(K, B, 3), out)
    assert grads is out
    fresh = stacked_backward(members[0], params, tape, torch.ones(K, B, 3))
    for name in params:
        assert torch.equal(out[name], fresh[name])


@pytest.mark.parametrize("shared", [True, False], ids=["shared-targets", "own-targets"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_task_loss_and_its_gradient_equal_torch(task: str, shared: bool) -> None:
    torch.manual_seed(0)
    c = 4 if task == "classification" else 1
    out = torch.randn(K, B, c) * 3
    shape = (B,) if shared else (K, B)
    y = torch.randint(0, c, shape) if task == "classification" else torch.randn(shape)
    loss, grad = stacked_task_loss(out.clone(), y)
    for k in range(K):
        o = out[k].clone().requires_grad_()
        yk = y if shared else y[k]
        expected = F.cross_entropy(o, yk) if task == "classification" else F.mse_loss(o[:, 0], yk)
        (g,) = torch.autograd.grad(expected, o)
        assert float(loss[k]) == pytest.approx(float(expected.detach()), rel=1e-5)
        torch.testing.assert_close(grad[k], g, rtol=1e-5, atol=1e-7)
    assert stacked_task_loss(out, y, with_grad=False)[1] is None


def test_supported_layouts() -> None:
    assert stacked_supported(build_mlp(4, 2, ModelSpec(depth=3, activation="gelu")))
    assert stacked_supported(build_mlp(4, 2, ModelSpec(kind="linear")))
    assert not stacked_supported(nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1)))
    assert not stacked_supported(nn.Sequential(nn.Linear(4, 4, bias=False)))
    assert not stacked_supported(nn.Linear(4, 4))
