"""K stacked copies of an MLP: forward, hand-derived backward and the task loss's gradient.

Population training (``core.population``) runs K members of one ``nn.Sequential`` of ``nn.Linear``
and elementwise activations as one model whose parameters carry a leading member axis K.
Autograd over such small stacked matmuls spends more time in its engine and in generic kernels
than in arithmetic, and a Linear/activation chain has short, well-known derivatives, so they
are written out here; that also skips the input gradient nobody needs and lets the caller
choose where the gradients are written.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from hpsearch.core.models import ACTIVATIONS

_aten = torch.ops.aten
# Every activation a study file may name has its backward written below.
_ACTIVATIONS = tuple(getattr(nn, name) for name in ACTIVATIONS.values())
# Activations whose derivative needs only their output: run in place on the linear layer's
# fresh output, their gradients computed in place too. A population step is bound by memory
# traffic more than by arithmetic (its matmuls are small), and every new K × B × width tensor
# is one more pass out of cache: in place, ReLU's forward and backward took a third of the time.
_IN_PLACE = {nn.ReLU: torch.relu_, nn.Tanh: torch.tanh_, nn.Sigmoid: torch.sigmoid_}


def stacked_supported(module: nn.Module) -> bool:
    """Whether :func:`stacked_forward` and :func:`stacked_backward` can run ``module``."""
    return isinstance(module, nn.Sequential) and all(
        (isinstance(layer, nn.Linear) and layer.bias is not None) or type(layer) in _ACTIVATIONS
        for layer in module
    )


def stacked_forward(
    module: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor
) -> list[torch.Tensor]:
    """Run K stacked copies of ``module``.

    Args:
        module: The layout (its own parameters are not used); see :func:`stacked_supported`.
        params: Its parameters by name, each with a leading member axis K.
        x: Inputs, ``B × d`` (one batch shared by all members) or ``K × B × d``.

    Returns:
        The tape: the input of every layer, then the output (``K × B × out``) last. A ReLU,
        Tanh or Sigmoid after a linear layer runs in place: its input entry holds its output.
    """
    k = next(iter(params.values())).shape[0]
    # A shared batch is broadcast without a copy. (One wide B × d @ d × K·out matmul for the
    # first layer was measured slower: its K × B × out view is strided for what follows.)
    h = x.expand(k, *x.shape) if x.dim() == 2 else x
    tape = [h]
    for i, layer in enumerate(cast(nn.Sequential, module)):
        if isinstance(layer, nn.Linear):
            w, b = params[f"{i}.weight"], params[f"{i}.bias"]
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        elif (
            type(layer) in _IN_PLACE
            and i > 0
            and isinstance(cast(nn.Sequential, module)[i - 1], nn.Linear)
        ):
            # The input is the linear layer's output, made for this step and needed by nobody
            # else: the backward of these activations reads their output only.
            h = _IN_PLACE[type(layer)](h)
        else:
            h = layer(h)
        tape.append(h)
    return tape


def _activation_grad(
    layer: nn.Module, grad: torch.Tensor, inp: torch.Tensor, out: torch.Tensor, owned: bool
) -> torch.Tensor:
    # ``owned``: ``grad`` was made by stacked_backward itself and may be overwritten.
    if isinstance(layer, nn.ReLU):
        if owned:
            return _aten.threshold_backward.grad_input(grad, out, 0, grad_input=grad)
        return _aten.threshold_backward(grad, out, 0)
    if isinstance(layer, nn.Tanh):
        if owned:
            return _aten.tanh_backward.grad_input(grad, out, grad_input=grad)
        return _aten.tanh_backward(grad, out)
    if isinstance(layer, nn.Sigmoid):
        if owned:
            return _aten.sigmoid_backward.grad_input(grad, out, grad_input=grad)
        return _aten.sigmoid_backward(grad, out)
    if isinstance(layer, nn.GELU):
        return _aten.gelu_backward(grad, inp, approximate=layer.approximate)
    if isinstance(layer, nn.SiLU):
        return _aten.silu_backward(grad, inp)
    if isinstance(layer, nn.ELU):
        return _aten.elu_backward(grad, layer.alpha, 1, 1, False, inp)
    if isinstance(layer, nn.LeakyReLU):
        return _aten.leaky_relu_backward(grad, inp, layer.negative_slope, False)
    raise TypeError(f"no stacked gradient for {type(layer).__name__}")


def stacked_backward(
    module: nn.Module,
    params: dict[str, torch.Tensor],
    tape: list[torch.Tensor],
    grad_out: torch.Tensor,
    out: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Gradients of every member's parameters, given the gradient at the outputs.

    Args:
        module: The layout run by :func:`stacked_forward`.
        params: The stacked parameters.
        tape: What :func:`stacked_forward` returned.
        grad_out: ``K × B × out``: the gradient of each member's loss at its outputs.
        out: Contiguous tensors shaped like ``params`` to write the gradients into (views of
            one flat buffer, say), or None for new ones.

    Returns:
        ``{name: K × …}``, one gradient per parameter (``out`` itself when given).
    """
    grads: dict[str, torch.Tensor] = (
        out if out is not None else {n: torch.empty_like(p) for n, p in params.items()}
    )
    grad, owned = grad_out, False
    layers = cast(nn.Sequential, module)
    for i in reversed(range(len(layers))):
        layer, inp = layers[i], tape[i]
        if isinstance(layer, nn.Linear):
            torch.bmm(grad.transpose(1, 2), inp, out=grads[f"{i}.weight"])
            torch.sum(grad, 1, out=grads[f"{i}.bias"])
            if i > 0:
                grad, owned = torch.bmm(grad, params[f"{i}.weight"]), True
        else:
            grad = _activation_grad(layer, grad, inp, tape[i + 1], owned)
    return grads


def stacked_task_loss(
    out: torch.Tensor,
    y: torch.Tensor,
    with_grad: bool = True,
    sample_flood: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The task loss of K members (cross-entropy for integer labels, else MSE) and its gradient.

    Args:
        out: ``K × B × c`` outputs (``c = 1`` for a regression target).
        y: Targets, ``B`` (shared) or ``K × B``.
        with_grad: Also return the gradient.
        sample_flood: Per-member flood levels b (a K-vector) to flood each row's loss with
            before the mean, ``mean_i(|ℓ_i − b| + b)`` (iFlood; a member with b <= 0 is not
            flooded), or None.

    Returns:
        The K batch-mean losses, and the gradient of each at ``out`` (None without
        ``with_grad``).
    """
    k, b = out.shape[:2]
    y = y.expand(k, b) if y.dim() == 1 else y
    if y.dtype != torch.int64:
        diff = out.squeeze(-1) - y
        rows = diff.pow(2)
        loss, sign = _flood_rows(rows, sample_flood)
        if not with_grad:
            return loss, None
        grad = diff.mul_(2.0 / b)
        return loss, (grad if sign is None else grad.mul_(sign)).unsqueeze(-1)
    # Log-sum-exp written out: torch's log_softmax is slow over a last axis of a few classes.
    top = out.amax(-1, keepdim=True)
    exp = (out - top).exp_()
    total = exp.sum(-1, keepdim=True)
    picked = out.gather(2, y.unsqueeze(-1))
    rows = (total.log() + top - picked).squeeze(-1)
    loss, sign = _flood_rows(rows, sample_flood)
    if not with_grad:
        return loss, None
    grad = exp.div_(total)  # softmax
    grad.scatter_add_(2, y.unsqueeze(-1), torch.full((k, b, 1), -1.0, device=out.device))
    grad.div_(b)
    return loss, (grad if sign is None else grad.mul_(sign.unsqueeze(-1)))


def _flood_rows(
    rows: torch.Tensor, flood: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The K means of ``K × B`` row losses, each row flooded at its member's level, and the
    rows' gradient signs (autograd's: ``sign(ℓ − b)``, 0 at the level), or None unflooded."""
    if flood is None:
        return rows.mean(1), None
    level = flood.view(-1, 1)
    on = level > 0
    flooded = torch.where(on, (rows - level).abs() + level, rows)
    sign = torch.where(on, torch.sign(rows - level), torch.ones_like(rows))
    return flooded.mean(1), sign
