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
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.func import grad, vmap
from torch.nn.utils.stateless import _reparametrize_module

from hpsearch._compat import fused_adam_update
from hpsearch.core.data import Dataset
from hpsearch.core.models import ModelSpec
from hpsearch.core.setups import BatchedSetup, Setup
from hpsearch.core.stacked import stacked_supported
from hpsearch.core.train import (
    OPTIMIZERS,
    SCALARIZATION_FIELDS,
    EpochRecord,
    TrainConfig,
    TrainResult,
    divergence,
    inner_loss,
    mdmm_info,
    mdmm_multiplier_step,
    train,
)
from hpsearch.errors import DivergedError, HpsearchError

# Configs that differ in any of these cannot share one batched model and optimizer.
GROUP_KEYS: tuple[str, ...] = ("optimizer", "method", "normalize", "epochs", "batch_size")


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


def batchable(config: TrainConfig) -> bool:
    """Whether ``config`` can train as a member of a batched population (no backstitch, no
    per-sample flooding); other configs are trained one by one by :func:`train_population`."""
    return config.backstitch == 0 and not (config.flood_mode == "sample" and config.flood > 0)


def _train_one(
    setup: Setup, data: Dataset, model: ModelSpec, config: TrainConfig
) -> TrainResult | DivergedError:
    try:
        return train(setup, data, model, config)
    except DivergedError as e:
        return e


def _column(configs: Sequence[TrainConfig], name: str) -> torch.Tensor:
    return torch.tensor([float(getattr(c, name)) for c in configs])


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

    def step(self, grad: torch.Tensor) -> None:
        """One update of every member; ``grad`` is flat, laid out like the parameters."""
        self.steps += 1
        t, p, st, lr = self.steps, self.flat, self.state, self._lr
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


def train_population(
    setup: Setup, data: Dataset, model: ModelSpec, configs: Sequence[TrainConfig]
) -> list[TrainResult | DivergedError]:
    """Train every config of one group (see :func:`population_groups`) as one batched model.

    Args:
        setup: The setup; its ``losses`` must be vectorizable by ``torch.func.vmap`` (plain
            tensor code: every built-in setup is).
        data: The dataset.
        model: The architecture, shared by all members.
        configs: One config per member; they must agree on :data:`GROUP_KEYS`.

    Returns:
        Per member, its :class:`TrainResult` or the :class:`DivergedError` that stopped it; a
        member that diverges is frozen and the others go on unaffected. ``history`` holds the
        per-epoch losses, and the validation metric at every epoch on the fast path; through
        vmap the metric is NaN before the last epoch (computed once, at the end, per member).

    Raises:
        HpsearchError: The configs do not form one group.
    """
    if not configs:
        return []
    if len(population_groups(configs)) != 1:
        raise HpsearchError(f"a population must agree on {', '.join(GROUP_KEYS)}")
    if any(not batchable(c) for c in configs):
        # Backstitch (two steps per mini-batch) and iFlood (per-row losses) have no batched
        # form yet: such a group trains member by member, with the same results.
        return [_train_one(setup, data, model, c) for c in configs]
    _keep_freed_memory()
    start = time.perf_counter()
    first = configs[0]
    k_members = len(configs)
    data = setup.prepare(data)
    members = []
    for c in configs:
        torch.manual_seed(c.seed)
        members.append(setup.build_model(data, model))
    base = members[0]
    names = [n for n, _ in base.named_parameters()]
    stacked = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]) for n in names
    }
    layout = _FlatLayout(stacked)
    flat = layout.flatten(stacked)
    params = layout.views(flat)
    x, y = data.train.x, data.train.y
    n = len(data.train)
    orders = [torch.Generator().manual_seed(c.seed) for c in configs]
    shared_order = len({c.seed for c in configs}) == 1

    knob_columns = {name: _column(configs, name) for name in SCALARIZATION_FIELDS}
    z1, z2, eps = knob_columns["ideal1"], knob_columns["ideal2"], knob_columns["epsilon"]
    lambda_lr = _column(configs, "lambda_lr")
    lr_decay = _column(configs, "lr_decay")
    multiplier = torch.zeros(k_members)
    method = first.method

    def member_losses(p, xb, yb):
        with _reparametrize_module(base, p):
            return setup.losses(base, xb, yb)

    # Fast path: a setup that computes all K members' losses and gradients itself (stacked
    # matmuls, derivatives by hand; see ``hpsearch.core.stacked``) skips autograd and vmap's per-op
    # overhead. Any other setup goes through vmap over its own ``losses``.
    batched = setup if isinstance(setup, BatchedSetup) and stacked_supported(base) else None
    flat_grad = torch.empty_like(flat)  # the fast path writes its gradients here
    grad_views = layout.views(flat_grad)

    s1 = s2 = torch.ones(k_members)
    if method == "chebyshev" and first.normalize == "initial":
        with torch.no_grad():
            if batched is not None:
                start1, start2 = batched.batched_losses(base, params, x, y)
            else:
                start1, start2 = vmap(
                    member_losses, in_dims=(0, None, None), randomness="different"
                )(params, x, y)
        s1 = torch.clamp(start1 - z1, min=1e-8)
        s2 = torch.clamp(start2 - z2, min=1e-8)

    def scalarize(l1, l2, knobs):
        return inner_loss(method, l1, l2, knobs)

    def member_objective(p, xb, yb, knobs):
        l1, l2 = member_losses(p, xb, yb)
        loss = scalarize(l1, l2, knobs)
        return loss, (loss.detach(), l2.detach())

    def fast_step(xb, yb, knobs):
        scalarized = []

        def coefficients(l1, l2):
            # d(scalarized loss)/d(L1, L2) per member, by autograd over K-vectors only, so
            # every inner method and flooding keep their one definition in ``inner_loss``.
            with torch.enable_grad():
                l1, l2 = l1.detach().requires_grad_(), l2.detach().requires_grad_()
                loss = scalarize(l1, l2, knobs)
                scalarized.append(loss.detach())
                return torch.autograd.grad(loss.sum(), (l1, l2))

        assert batched is not None  # only called on the fast path
        _, l2, _ = batched.batched_loss_grads(base, params, xb, yb, coefficients, grad_views)
        return flat_grad, (scalarized[0], l2)

    data_dims = None if shared_order else 0
    grad_fn = vmap(
        grad(member_objective, has_aux=True),
        in_dims=(0, data_dims, data_dims, 0),  # 0: every knob is a K-vector
        randomness="different",
    )
    eval_fn = vmap(member_losses, in_dims=(0, None, None), randomness="different")
    opt = _BatchedOptimizer(
        first.optimizer, layout, flat, _column(configs, "lr"), _column(configs, "momentum")
    )
    failed: list[DivergedError | None] = [None] * k_members
    alive = torch.ones(k_members, dtype=torch.bool)
    histories: list[list[EpochRecord]] = [[] for _ in configs]
    for epoch in range(first.epochs):
        base.train()
        perms = [torch.randperm(n, generator=g) for g in orders]
        total = torch.zeros(k_members)
        n_batches = 0
        for s in range(0, n, first.batch_size):
            if shared_order:
                idx = perms[0][s : s + first.batch_size]
            else:
                idx = torch.stack([p[s : s + first.batch_size] for p in perms])
            knobs = {**knob_columns, "scale1": s1, "scale2": s2, "multiplier": multiplier}
            if batched is not None:
                step_grad, (loss, l2) = fast_step(x[idx], y[idx], knobs)
            else:
                grads, (loss, l2) = grad_fn(params, x[idx], y[idx], knobs)
                step_grad = layout.flatten(grads)
            with torch.no_grad():
                opt.step(step_grad)
            if method == "mdmm":
                multiplier = mdmm_multiplier_step(multiplier, l2, eps, lambda_lr)
            total += loss
            n_batches += 1
        lr_now = opt.lr.clone()
        base.eval()
        with torch.no_grad():
            if batched is not None:
                val_now = batched.batched_evaluate(base, params, data.val)
                val1, val2, val_metric = val_now["loss1"], val_now["loss2"], val_now["metric"]
            else:
                val1, val2 = eval_fn(params, data.val.x, data.val.y)
                val_metric = torch.full((k_members,), math.nan)
        objective = total / n_batches
        finite = torch.isfinite(objective) & torch.isfinite(val1) & torch.isfinite(val2)
        for k in torch.nonzero(alive & ~finite).flatten().tolist():
            failed[k] = divergence(
                f"at epoch {epoch + 1}",
                {
                    "train_objective": float(objective[k]),
                    "val_loss1": float(val1[k]),
                    "val_loss2": float(val2[k]),
                },
            )
            # Freeze the member: finite zeros and no steps, so it costs nothing to the others.
            alive[k] = False
            opt.set_lr(torch.where(torch.arange(k_members) == k, 0.0, opt.lr))
            lambda_lr[k] = 0.0
            multiplier[k] = 0.0
            for p in params.values():
                p[k] = 0.0
            opt.reset_member(k)
        elapsed = time.perf_counter() - start  # the population's, shared by its members
        # One conversion per column, not one per member and field.
        columns = zip(
            lr_now.tolist(),
            objective.tolist(),
            val1.tolist(),
            val2.tolist(),
            val_metric.tolist(),
            multiplier.tolist(),
            alive.tolist(),
            strict=True,
        )
        for k, (lr_k, obj_k, v1_k, v2_k, vm_k, lam_k, alive_k) in enumerate(columns):
            if alive_k:
                histories[k].append(
                    EpochRecord(
                        epoch=epoch + 1,
                        lr=lr_k,
                        train_objective=obj_k,
                        val_loss1=v1_k,
                        val_loss2=v2_k,
                        val_metric=vm_k,
                        multiplier=lam_k,
                        seconds=elapsed,
                    )
                )
        if (lr_decay != 1.0).any():
            opt.set_lr(opt.lr * lr_decay)
    splits = (data.train, data.val, data.test)
    if batched is not None:
        # All members' final figures in three stacked passes instead of 3·K module calls.
        finals = [
            {key: v.tolist() for key, v in batched.batched_evaluate(base, params, split).items()}
            for split in splits
        ]
    seconds = time.perf_counter() - start
    results: list[TrainResult | DivergedError] = []
    for k, c in enumerate(configs):
        error = failed[k]
        if error is not None:
            results.append(error)
            continue
        if batched is not None:
            train_, val, test = ({key: v[k] for key, v in f.items()} for f in finals)
        else:
            with torch.no_grad():
                for name, p in base.named_parameters():
                    p.copy_(params[name][k])
            train_, val, test = (setup.evaluate(base, split) for split in splits)
        last = histories[k][-1]
        histories[k][-1] = EpochRecord(**{**last.__dict__, "val_metric": val["metric"]})
        info: dict[str, float] = {}
        if method == "chebyshev" and c.normalize == "initial":
            info.update(scale1=float(s1[k]), scale2=float(s2[k]))
        if method == "mdmm":
            info.update(mdmm_info(val["loss2"], c.epsilon, float(multiplier[k])))
        results.append(
            TrainResult(
                train=train_,
                val=val,
                test=test,
                history=histories[k],
                seconds=seconds / k_members,
                info=info,
            )
        )
    return results
