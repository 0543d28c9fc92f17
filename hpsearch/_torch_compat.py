"""Every use of a private torch API, in one place, importable without Optuna (the training
core uses them; :mod:`hpsearch._compat` holds Optuna's).

Each name is a thin wrapper with a contract test (``tests/test_compat.py``) against the
installed torch, so that a release that moves one breaks one test and one edit.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch.nn.utils.stateless import _reparametrize_module

__all__ = ["fused_adam_update", "reparametrized"]


def reparametrized(
    module: torch.nn.Module, params: dict[str, torch.Tensor]
) -> AbstractContextManager[None]:
    """``module`` computing with ``params`` (by name) in place of its own parameters, inside
    the context (what ``torch.func.functional_call`` does, as a context for ``vmap``)."""
    return _reparametrize_module(module, params)


def fused_adam_update(
    updates: list[torch.Tensor],
    grads: list[torch.Tensor],
    ms: list[torch.Tensor],
    vs: list[torch.Tensor],
    steps: list[int],
) -> None:
    """One step of Adam (β 0.9, 0.999, ε 1e-8, no weight decay) at lr 1 on each of ``updates``,
    zeroed buffers, moving the moments ``ms`` and ``vs`` in place: torch's fused kernel, what
    ``torch.optim.Adam(fused=True)`` runs. Each tensor has its own step count (its bias
    correction), ``steps[i]`` for tensor ``i``. ``updates`` then hold minus the step."""
    torch._fused_adam_(
        updates,
        grads,
        ms,
        vs,
        [],
        # Made on the device (torch.tensor from a number would copy it there: a sync per step).
        [torch.full((), float(step), device=updates[0].device) for step in steps],
        lr=1.0,
        beta1=0.9,
        beta2=0.999,
        weight_decay=0.0,
        eps=1e-8,
        amsgrad=False,
        maximize=False,
    )
