"""Population training: K configurations of one setup trained together as one batched model.

The members' parameters are stacked along a leading axis (all of them in one flat tensor) and
every step computes all K gradients in one call, then updates all members with one batched
optimizer step whose learning rate, momentum, α, flood level, Chebyshev weight, MDMM budget and
multiplier are per-member tensors. A setup with ``batched_loss_grads`` (weight_decay, sparsity)
computes the gradients itself with the hand-derived stacked MLP of ``core.stacked``; any other goes
through ``torch.func.vmap`` over its own ``losses``. Each member sees exactly
the initialisation and batch order that :func:`hpsearch.train` gives the same config, so its
result equals the sequential one within float tolerance (setups that sample inside the model,
like ``beta_vae``, draw different noise). Like the sequential core, nothing here knows Optuna.
"""

from __future__ import annotations

import ctypes
import inspect
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.func import grad, vmap
from torch.nn.utils.stateless import _reparametrize_module

from hpsearch._compat import fused_adam_update
from hpsearch.core.data import Dataset
from hpsearch.core.knobs import OPTIMIZERS, TrainConfig
from hpsearch.core.models import ModelSpec
from hpsearch.core.setups import BatchedSetup, Setup
from hpsearch.core.stacked import stacked_supported
from hpsearch.core.train import (
    EpochRecord,
    Knobs,
    TrainResult,
    flooded_loss,
    inner_loss,
    knob_columns,
    train_members,
)
from hpsearch.errors import HpsearchError

# Configs that differ in any of these cannot share one batched model and optimizer: they step
# together, take the same number of optimizer steps (backstitch's ascent step is one), and
# flood the same thing (the batch mean, or each sample's loss).
GROUP_KEYS: tuple[str, ...] = (
    "optimizer",
    "method",
    "normalize",
    "epochs",
    "batch_size",
    "flood_mode",
    "backstitched",
    "backstitch_interval",
)


def _keep_freed_memory() -> None:
    """Stop glibc from handing each freed tensor of 1 MB and more back to the kernel.

    A population step allocates several K × B × width tensors (1 MB at K = B = width = 64);
    glibc serves these with fresh mmaps by default, and the page faults of touching new pages
    cost as much as the arithmetic: raising its mmap and trim thresholds made population
    training 1.1–1.3× faster and a validation pass 1.8× faster on the benchmark machine. The
    process keeps up to 256 MB of freed memory for reuse instead. No-op elsewhere than glibc.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 256 << 20)


_MALLOC_TUNED = False


def population_groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can be trained as one population.

    Returns:
        Groups of indices, in order of first appearance.
    """
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(getattr(c, k) for k in GROUP_KEYS), []).append(i)
    return list(groups.values())


class _FlatLayout:
    """All members' parameters in one flat tensor: parameter by parameter, each a contiguous
    ``K × shape`` block. The optimizer then updates everything with a handful of elementwise
    ops on one tensor, however many parameters the model has."""

    def __init__(self, stacked: dict[str, torch.Tensor]) -> None:
        self.shapes = {name: t.shape for name, t in stacked.items()}
        self.sizes = [t.numel() for t in stacked.values()]
        self.k = next(iter(stacked.values())).shape[0]

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: K × shape}`` views into ``flat``."""
        blocks = flat.split(self.sizes)
        pairs = zip(self.shapes.items(), blocks, strict=True)
        return {name: b.view(shape) for (name, shape), b in pairs}

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """One flat tensor from ``{name: K × shape}`` (a copy)."""
        return torch.cat([tensors[name].reshape(-1) for name in self.shapes])

    def spread(self, per_member: torch.Tensor) -> torch.Tensor:
        """A per-member K-vector repeated over every element of that member."""
        return torch.cat([per_member.repeat_interleave(n // self.k) for n in self.sizes])


@dataclass
class _BatchedOptimizer:
    """The optimizers of :data:`OPTIMIZERS` on one flat tensor of all members' parameters,
    with torch's defaults and update order, and per-member learning rate and momentum."""

    name: str
    layout: _FlatLayout
    flat: torch.Tensor
    lr: torch.Tensor
    momentum: torch.Tensor
    backstitch: torch.Tensor | None = None  # per-member α_b of backstitched members

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise HpsearchError(f"unknown optimizer {self.name!r}")
        self.state: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.set_lr(self.lr)
        self._momentum = self.layout.spread(self.momentum)

    def set_lr(self, lr: torch.Tensor) -> None:
        """New per-member learning rates (decay, a frozen member)."""
        self.lr = lr
        self._lr = self.layout.spread(lr)
        if self.backstitch is not None:
            # Backstitch's two steps (see TrainConfig.backstitch): an ascent at -α_b·η, then
            # a descent at (1 + α_b)·η; scaled in double, as the sequential run scales its
            # param group's learning rate.
            rate, scale = lr.double(), self.backstitch.double()
            self._ascent = self.layout.spread((-scale * rate).float())
            self._descent = self.layout.spread(((1.0 + scale) * rate).float())

    def step(self, grad: torch.Tensor, phase: str = "plain") -> None:
        """One update of every member; ``grad`` is flat, laid out like the parameters.

        ``phase``: ``"plain"``, or backstitch's ``"ascent"`` or ``"descent"`` step (their
        scaled learning rates).
        """
        self.steps += 1
        t, p, st = self.steps, self.flat, self.state
        lr = self._lr if phase == "plain" else self._ascent if phase == "ascent" else self._descent
        if self.name == "sgd":
            p.addcmul_(grad, lr, value=-1.0)
        elif self.name in ("momentum", "nesterov"):
            if t == 1:
                st["buf"] = grad.clone()
            else:
                st["buf"].mul_(self._momentum).add_(grad)
            step = st["buf"]
            if self.name == "nesterov":
                step = torch.addcmul(grad, step, self._momentum)
            p.addcmul_(step, lr, value=-1.0)
        elif self.name == "adagrad":
            if t == 1:
                st["sum"] = torch.zeros_like(p)
            st["sum"].addcmul_(grad, grad)
            p.addcdiv_(grad * lr, st["sum"].sqrt().add_(1e-10), value=-1.0)
        elif self.name == "rmsprop":
            if t == 1:
                st["sq"] = torch.zeros_like(p)
            st["sq"].mul_(0.99).addcmul_(grad, grad, value=0.01)
            p.addcdiv_(grad * lr, st["sq"].sqrt().add_(1e-8), value=-1.0)
        else:  # adam, as torch.optim.Adam computes it
            if t == 1:
                st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                self._update = torch.empty_like(p)
            # torch's fused Adam kernel (what Adam(fused=True) runs) takes one learning rate:
            # run it at lr = 1 on a zeroed buffer to get the update, then scale per member.
            # One pass over the state instead of eight; half the time of the unfused ops.
            update = self._update.zero_()
            fused_adam_update(update, grad, st["m"], st["v"], t)
            p.addcmul_(update, lr)

    def reset_member(self, k: int) -> None:
        """Zero member ``k``'s optimizer state (a frozen, diverged member)."""
        for buf in self.state.values():
            for view in self.layout.views(buf).values():
                view[k] = 0.0


class _Population:
    """K members of one group as one batched model: the :class:`Members` of a population."""

    def __init__(
        self, setup: Setup, data: Dataset, model: ModelSpec, configs: Sequence[TrainConfig]
    ) -> None:
        self.setup, self.configs = setup, configs
        self.k = len(configs)
        self.method = configs[0].method
        self.batch_size = configs[0].batch_size
        self.data = setup.prepare(data)
        members = []
        for c in configs:
            torch.manual_seed(c.seed)
            members.append(setup.build_model(self.data, model))
        self.base = base = members[0]
        names = [n for n, _ in base.named_parameters()]
        stacked = {
            n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]) for n in names
        }
        self.layout = _FlatLayout(stacked)
        flat = self.layout.flatten(stacked)
        self.params = self.layout.views(flat)
        self.orders = [torch.Generator().manual_seed(c.seed) for c in configs]
        self.shared_order = len({c.seed for c in configs}) == 1
        # Fast path: a setup that computes all K members' losses and gradients itself (stacked
        # matmuls, derivatives by hand; see ``hpsearch.core.stacked``) skips autograd and vmap's
        # per-op overhead. Any other setup goes through vmap over its own ``losses``.
        self.batched = (
            setup if isinstance(setup, BatchedSetup) and stacked_supported(base) else None
        )
        self.flat_grad = torch.empty_like(flat)  # the fast path writes its gradients here
        self.grad_views = self.layout.views(self.flat_grad)
        data_dims = None if self.shared_order else 0
        self.grad_fn = vmap(
            grad(self._member_objective, has_aux=True),
            in_dims=(0, data_dims, data_dims, 0),  # 0: every knob is a K-vector
            randomness="different",
        )
        self.eval_fn = vmap(self._member_losses, in_dims=(0, None, None), randomness="different")
        first = configs[0]
        # iFlood floods each row's loss before the mean; on the fast path, where the setup's
        # batched_loss_grads takes per-member levels (``sample_flood``), else through vmap.
        self.per_sample = first.flood_mode == "sample"
        if self.per_sample and self.batched is not None:
            takes = inspect.signature(self.batched.batched_loss_grads).parameters
            self.batched = self.batched if "sample_flood" in takes else None
        # Backstitch: every n-th mini-batch first takes an ascent step (0: never).
        self.backstitch_interval = first.backstitch_interval if first.backstitched else 0
        self.steps = 0
        backstitch = knob_columns(configs, ["backstitch"])["backstitch"]
        lr, momentum = knob_columns(configs, ("lr", "momentum")).values()
        self.opt = _BatchedOptimizer(
            first.optimizer, self.layout, flat, lr, momentum,
            backstitch if first.backstitched else None,
        )  # fmt: skip

    def _member_losses(self, p, xb, yb):
        with _reparametrize_module(self.base, p):
            return self.setup.losses(self.base, xb, yb)

    def _member_objective(self, p, xb, yb, knobs):
        if self.per_sample:  # iFlood, as the sequential run computes it
            with _reparametrize_module(self.base, p):
                sample1, loss2 = self.setup.sample_losses(self.base, xb, yb)
            loss1 = flooded_loss(sample1, knobs["flood"]).mean()
            knobs = {**knobs, "flood": torch.zeros_like(knobs["flood"])}
        else:
            loss1, loss2 = self._member_losses(p, xb, yb)
        loss = inner_loss(self.method, loss1, loss2, knobs)
        return loss, (loss.detach(), loss2.detach())

    def initial_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.data.train.x, self.data.train.y
        with torch.no_grad():
            if self.batched is not None:
                return self.batched.batched_losses(self.base, self.params, x, y)
            return self.eval_fn(self.params, x, y)

    def epoch_batches(self) -> Iterator[torch.Tensor]:
        self.base.train()
        n, size = len(self.data.train), self.batch_size
        perms = [torch.randperm(n, generator=g) for g in self.orders]
        for s in range(0, n, size):
            if self.shared_order:
                yield perms[0][s : s + size]
            else:
                yield torch.stack([p[s : s + size] for p in perms])

    def step(self, batch: torch.Tensor, knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.data.train.x[batch], self.data.train.y[batch]
        phase = "plain"
        if self.backstitch_interval and self.steps % self.backstitch_interval == 0:
            # Backstitch, as the sequential run steps: an ascent step, then a descent step
            # with the gradient recomputed at the moved parameters (_BatchedOptimizer.set_lr).
            grad, _, _ = self._gradient(x, y, knobs)
            with torch.no_grad():
                self.opt.step(grad, "ascent")
            phase = "descent"
        grad, loss, loss2 = self._gradient(x, y, knobs)
        with torch.no_grad():
            self.opt.step(grad, phase)
        self.steps += 1
        return loss, loss2

    def _gradient(
        self, x: torch.Tensor, y: torch.Tensor, knobs: Knobs
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every member's flat gradient on one mini-batch, its scalarized loss and its L2."""
        if self.batched is None:
            grads, (loss, loss2) = self.grad_fn(self.params, x, y, knobs)
            return self.layout.flatten(grads), loss, loss2
        scalarized = []
        sample_flood = knobs["flood"] if self.per_sample else None
        if sample_flood is not None:  # flooded per row below: the mean is not flooded again
            knobs = {**knobs, "flood": torch.zeros_like(sample_flood)}

        def coefficients(loss1, loss2):
            # d(scalarized loss)/d(L1, L2) per member, by autograd over K-vectors only, so
            # every inner method and flooding keep their one definition in ``inner_loss``.
            with torch.enable_grad():
                loss1 = loss1.detach().requires_grad_()
                loss2 = loss2.detach().requires_grad_()
                loss = inner_loss(self.method, loss1, loss2, knobs)
                scalarized.append(loss.detach())
                return torch.autograd.grad(loss.sum(), (loss1, loss2))

        extra = {} if sample_flood is None else {"sample_flood": sample_flood}
        _, loss2, _ = self.batched.batched_loss_grads(
            self.base, self.params, x, y, coefficients, self.grad_views, **extra
        )
        return self.flat_grad, scalarized[0], loss2

    def validate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.base.eval()
        with torch.no_grad():
            if self.batched is not None:
                val = self.batched.batched_evaluate(self.base, self.params, self.data.val)
                return val["loss1"], val["loss2"], val["metric"]
            val1, val2 = self.eval_fn(self.params, self.data.val.x, self.data.val.y)
        return val1, val2, torch.full((self.k,), math.nan)

    def learning_rates(self) -> torch.Tensor:
        return self.opt.lr

    def set_learning_rates(self, lr: torch.Tensor) -> None:
        self.opt.set_lr(lr.to(self.opt.lr.dtype))

    def freeze(self, k: int) -> None:
        # Finite zeros and no steps, so a stopped member costs nothing to the others.
        self.opt.set_lr(torch.where(torch.arange(self.k) == k, 0.0, self.opt.lr))
        for p in self.params.values():
            p[k] = 0.0
        self.opt.reset_member(k)

    def final_figures(self, k: int) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        splits = (self.data.train, self.data.val, self.data.test)
        if self.batched is not None:
            if not hasattr(self, "_finals"):
                # All members' figures in three stacked passes instead of 3·K module calls.
                self._finals = [
                    {
                        key: v.tolist()
                        for key, v in self.batched.batched_evaluate(
                            self.base, self.params, split
                        ).items()
                    }
                    for split in splits
                ]
            train_, val, test = ({key: v[k] for key, v in f.items()} for f in self._finals)
            return train_, val, test
        with torch.no_grad():
            for name, p in self.base.named_parameters():
                p.copy_(self.params[name][k])
        train_, val, test = (self.setup.evaluate(self.base, split) for split in splits)
        return train_, val, test


def train_population(
    setup: Setup,
    data: Dataset,
    model: ModelSpec,
    configs: Sequence[TrainConfig],
    on_epoch_end: Callable[[int, EpochRecord], None] | None = None,
) -> list[TrainResult | Exception]:
    """Train every config of one group (see :func:`population_groups`) as one batched model.

    Args:
        setup: The setup; its ``losses`` must be vectorizable by ``torch.func.vmap`` (plain
            tensor code: every built-in setup is).
        data: The dataset.
        model: The architecture, shared by all members.
        configs: One config per member; they must agree on :data:`GROUP_KEYS`.
        on_epoch_end: Called with (member index, epoch record) after each epoch of a live
            member; an exception it raises (``TrialPruned``) stops that member alone.

    Returns:
        Per member, its :class:`TrainResult` or the exception that stopped it: a
        :class:`DivergedError`, or what ``on_epoch_end`` raised. A stopped member is frozen
        and the others go on unaffected. ``history`` holds the
        per-epoch losses, and the validation metric at every epoch on the fast path; through
        vmap the metric is NaN before the last epoch (computed once, at the end, per member).

    Raises:
        HpsearchError: The configs do not form one group.
    """
    if not configs:
        return []
    if len(population_groups(configs)) != 1:
        raise HpsearchError(f"a population must agree on {', '.join(GROUP_KEYS)}")
    _keep_freed_memory()
    start = time.perf_counter()
    members = _Population(setup, data, model, configs)
    return train_members(members, configs, on_epoch_end, start)
