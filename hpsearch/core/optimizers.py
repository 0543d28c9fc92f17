"""The optimizers of a sequential run: torch's own update functions on state kept here.

``torch.optim.adam.adam``, ``torch.optim.sgd.sgd`` and the others are the functions that
torch.optim's classes call in their ``step``, after gathering each parameter's state. The
classes themselves import ``torch._dynamo`` (``torch.compile``'s graph-break guards) when an
optimizer is built and at its first step: 1.9 s of CPU in every process that trains, as long
as importing torch itself (measured on a 2-core host), for code hpsearch never compiles. This
class gathers the state as those classes do and calls the same functions with torch's
defaults: Adam and Adagrad with their fused kernels (what ``Adam(fused=True)`` runs: one pass
over the state; ``benchmarks/population.py``'s ablation measures the gain on a sequential
digits trial), the others with the multi-tensor (foreach) ones. The arithmetic is torch's,
bit for bit: tests/core/test_train.py compares it with torch.optim using the same kernels,
over steps, learning-rate changes and parameter groups.

It has the part of ``torch.optim.Optimizer``'s interface that training uses: ``param_groups``
(each a dict with ``"params"`` and ``"lr"``), ``add_param_group``, ``zero_grad``, ``step``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch
from torch.optim.adagrad import adagrad
from torch.optim.adam import adam
from torch.optim.rmsprop import rmsprop
from torch.optim.sgd import sgd

from hpsearch.core.knobs import OPTIMIZERS
from hpsearch.errors import check_choice


def _scalar_dtype() -> torch.dtype:
    # The dtype torch.optim gives a step counter (torch.optim.optimizer._get_scalar_dtype).
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _step_counter() -> torch.Tensor:
    return torch.tensor(0.0, dtype=_scalar_dtype(), device="cpu")


def _fused_step_counter(p: torch.Tensor) -> torch.Tensor:
    # What torch.optim gives a fused kernel: a float32 count on the parameter's device.
    return torch.zeros((), dtype=torch.float32, device=p.device)


def fused_adagrad_runs_on(device: torch.device) -> bool:
    """Whether Adagrad takes its fused kernel on ``device``: torch wrote it for the CPU (Adam's
    runs on CUDA too); elsewhere the foreach one, with its step count on the CPU."""
    return device.type == "cpu"


def _zeros(p: torch.Tensor) -> torch.Tensor:
    # Adagrad's sum starts at initial_accumulator_value, 0 by default: zeros too.
    return torch.zeros_like(p, memory_format=torch.preserve_format)


class Optimizer:
    """One of :data:`hpsearch.OPTIMIZERS` over ``params``, with torch's defaults for all but
    the learning rate (and the momentum of ``momentum`` and ``nesterov``).

    Only parameters with a gradient take a step, and each one's state starts at its first
    step, as in torch.optim.
    """

    def __init__(
        self, name: str, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0
    ) -> None:
        check_choice("optimizer", name, OPTIMIZERS)
        self.name = name
        self.momentum = momentum if name in ("momentum", "nesterov") else 0.0
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[torch.Tensor, dict[str, Any]] = {}
        self._update: Callable[[list[torch.Tensor], float], None] = getattr(
            self, f"_{'sgd' if name in ('momentum', 'nesterov') else name}"
        )
        self.add_param_group({"params": list(params), "lr": lr})

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Another group of parameters, with its own ``"lr"``."""
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        self.param_groups.append({**group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def step(self) -> None:
        """One step of every parameter that has a gradient."""
        with torch.no_grad():  # what torch.optim's step does (differentiable=False)
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._update(params, group["lr"])

    def _state(self, p: torch.Tensor, **init: Callable[[], Any]) -> dict[str, Any]:
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {key: make() for key, make in init.items()}
        return state

    def _sgd(self, params: list[torch.Tensor], lr: float) -> None:
        grads = [p.grad for p in params]
        # torch.optim.SGD: a buffer is None until the function's first step makes it.
        buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
        sgd(
            params, grads, buffers,  # type: ignore[arg-type]
            has_sparse_grad=False, foreach=True, fused=False,
            weight_decay=0.0, momentum=self.momentum, lr=lr, dampening=0.0,
            nesterov=self.name == "nesterov", maximize=False,
        )  # fmt: skip
        if self.momentum != 0:
            for p, buffer in zip(params, buffers, strict=True):
                self.state.setdefault(p, {})["momentum_buffer"] = buffer

    def _adam(self, params: list[torch.Tensor], lr: float) -> None:
        states = [
            self._state(
                p,
                step=partial(_fused_step_counter, p),
                exp_avg=partial(_zeros, p),
                exp_avg_sq=partial(_zeros, p),
            )
            for p in params
        ]
        adam(
            params, [p.grad for p in params],  # type: ignore[misc]
            [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
            [s["step"] for s in states],
            foreach=False, capturable=False, differentiable=False, fused=True,
            has_complex=any(torch.is_complex(p) for p in params), decoupled_weight_decay=False,
            amsgrad=False, beta1=0.9, beta2=0.999, lr=lr, weight_decay=0.0, eps=1e-8,
            maximize=False,
        )  # fmt: skip

    def _adagrad(self, params: list[torch.Tensor], lr: float) -> None:
        fused = fused_adagrad_runs_on(params[0].device)
        states = [
            self._state(
                p,
                step=partial(_fused_step_counter, p) if fused else _step_counter,
                sum=partial(_zeros, p),
            )
            for p in params
        ]
        adagrad(
            params, [p.grad for p in params],  # type: ignore[misc]
            [s["sum"] for s in states], [s["step"] for s in states],
            fused=fused, has_sparse_grad=False, foreach=not fused, differentiable=False,
            has_complex=any(torch.is_complex(p) for p in params),
            lr=lr, weight_decay=0.0, lr_decay=0.0, eps=1e-10, maximize=False,
        )  # fmt: skip

    def _rmsprop(self, params: list[torch.Tensor], lr: float) -> None:
        states = [
            self._state(
                p,
                step=_step_counter,
                square_avg=partial(_zeros, p),
            )
            for p in params
        ]
        rmsprop(
            params, [p.grad for p in params],  # type: ignore[misc]
            [s["square_avg"] for s in states], [], [], [s["step"] for s in states],
            foreach=True, maximize=False, differentiable=False, capturable=False,
            has_complex=any(torch.is_complex(p) for p in params),
            lr=lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
        )  # fmt: skip
