"""Population training: K configurations of one setup trained together as one batched model.

The members' parameters are stacked along a leading axis and every step computes all K
gradients in one vectorized call (``torch.func.vmap`` over the setup's own ``losses``), then
updates all members with a batched optimizer whose learning rate, momentum, α, flood level,
Chebyshev weight, MDMM budget and multiplier are per-member tensors. Each member sees exactly
the initialisation and batch order that :func:`hpsearch.train` gives the same config, so its
result equals the sequential one within float tolerance (setups that sample inside the model,
like ``beta_vae``, draw different noise). Like the sequential core, nothing here knows Optuna.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.func import grad, vmap
from torch.nn.utils.stateless import _reparametrize_module

from hpsearch._data import Dataset
from hpsearch._errors import DivergedError, HpsearchError
from hpsearch._models import ModelSpec
from hpsearch._setups import Setup
from hpsearch._train import (
    OPTIMIZERS,
    EpochRecord,
    TrainConfig,
    TrainResult,
    divergence,
    inner_loss,
    mdmm_info,
    mdmm_multiplier_step,
)

# Configs that differ in any of these cannot share one batched model and optimizer.
GROUP_KEYS: tuple[str, ...] = ("optimizer", "method", "normalize", "epochs", "batch_size")


def population_groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped so that each group can be trained as one population.

    Returns:
        Groups of indices, in order of first appearance.
    """
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(getattr(c, k) for k in GROUP_KEYS), []).append(i)
    return list(groups.values())


def _column(configs: Sequence[TrainConfig], name: str) -> torch.Tensor:
    return torch.tensor([float(getattr(c, name)) for c in configs])


def _per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1)))


@dataclass
class _BatchedOptimizer:
    """The optimizers of :data:`OPTIMIZERS` on stacked parameters, torch's defaults and
    update order, with per-member learning rate and momentum."""

    name: str
    params: dict[str, torch.Tensor]
    lr: torch.Tensor
    momentum: torch.Tensor

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise HpsearchError(f"unknown optimizer {self.name!r}")
        self.state: dict[str, list[torch.Tensor]] = {}
        self.steps = 0

    def step(self, grads: dict[str, torch.Tensor]) -> None:
        """One update of every member; all parameters at once with torch's _foreach ops."""
        self.steps += 1
        t = self.steps
        ps = list(self.params.values())
        gs = [grads[k] for k in self.params]
        lrs = self._broadcast(self.lr)
        st = self.state
        if self.name == "sgd":
            torch._foreach_sub_(ps, torch._foreach_mul(gs, lrs))
        elif self.name in ("momentum", "nesterov"):
            moms = self._broadcast(self.momentum)
            if t == 1:
                st["buf"] = [g.clone() for g in gs]
            else:
                torch._foreach_mul_(st["buf"], moms)
                torch._foreach_add_(st["buf"], gs)
            step = st["buf"]
            if self.name == "nesterov":
                step = torch._foreach_add(gs, torch._foreach_mul(st["buf"], moms))
            torch._foreach_sub_(ps, torch._foreach_mul(step, lrs))
        elif self.name == "adagrad":
            if "sum" not in st:
                st["sum"] = [torch.zeros_like(p) for p in ps]
            torch._foreach_addcmul_(st["sum"], gs, gs)
            denom = torch._foreach_add(torch._foreach_sqrt(st["sum"]), 1e-10)
            torch._foreach_sub_(ps, torch._foreach_div(torch._foreach_mul(gs, lrs), denom))
        elif self.name == "rmsprop":
            if "sq" not in st:
                st["sq"] = [torch.zeros_like(p) for p in ps]
            torch._foreach_mul_(st["sq"], 0.99)
            torch._foreach_addcmul_(st["sq"], gs, gs, value=0.01)
            denom = torch._foreach_add(torch._foreach_sqrt(st["sq"]), 1e-8)
            torch._foreach_sub_(ps, torch._foreach_div(torch._foreach_mul(gs, lrs), denom))
        else:  # adam, as torch.optim.Adam computes it
            if "m" not in st:
                st["m"] = [torch.zeros_like(p) for p in ps]
                st["v"] = [torch.zeros_like(p) for p in ps]
            torch._foreach_lerp_(st["m"], gs, 0.1)
            torch._foreach_mul_(st["v"], 0.999)
            torch._foreach_addcmul_(st["v"], gs, gs, value=0.001)
            denom = torch._foreach_sqrt(st["v"])
            torch._foreach_div_(denom, math.sqrt(1 - 0.999**t))
            torch._foreach_add_(denom, 1e-8)
            step_sizes = torch._foreach_div(lrs, 1 - 0.9**t)
            torch._foreach_sub_(
                ps, torch._foreach_div(torch._foreach_mul(st["m"], step_sizes), denom)
            )

    def _broadcast(self, v: torch.Tensor) -> list[torch.Tensor]:
        return [_per_member(v, p) for p in self.params.values()]

    def reset_member(self, k: int) -> None:
        """Zero member ``k``'s optimizer state (a frozen, diverged member)."""
        for bufs in self.state.values():
            for buf in bufs:
                buf[k] = 0.0


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
        per-epoch losses; its ``val_metric`` is NaN before the last epoch (metrics are
        computed once, at the end, per member).

    Raises:
        HpsearchError: The configs do not form one group.
    """
    if not configs:
        return []
    if len(population_groups(configs)) != 1:
        raise HpsearchError(f"a population must agree on {', '.join(GROUP_KEYS)}")
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
    params = {
        n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]).contiguous()
        for n in names
    }
    x, y = data.train.x, data.train.y
    n = len(data.train)
    orders = [torch.Generator().manual_seed(c.seed) for c in configs]
    shared_order = len({c.seed for c in configs}) == 1

    alpha, flood = _column(configs, "alpha"), _column(configs, "flood")
    w, z1, z2 = _column(configs, "w"), _column(configs, "ideal1"), _column(configs, "ideal2")
    eps, damping = _column(configs, "epsilon"), _column(configs, "damping")
    lambda_lr = _column(configs, "lambda_lr")
    lr_decay = _column(configs, "lr_decay")
    multiplier = torch.zeros(k_members)
    method = first.method

    def member_losses(p, xb, yb):
        with _reparametrize_module(base, p):
            return setup.losses(base, xb, yb)

    # Fast path: a setup that computes all K members' losses itself (stacked matmuls, one
    # autograd graph) saves vmap's per-op overhead; any other setup goes through vmap.
    fast = hasattr(setup, "batched_losses") and isinstance(base, torch.nn.Sequential)

    s1 = s2 = torch.ones(k_members)
    if method == "chebyshev" and first.normalize == "initial":
        with torch.no_grad():
            if fast:
                start1, start2 = setup.batched_losses(base, params, x, y)
            else:
                start1, start2 = vmap(
                    member_losses, in_dims=(0, None, None), randomness="different"
                )(params, x, y)
        s1 = torch.clamp(start1 - z1, min=1e-8)
        s2 = torch.clamp(start2 - z2, min=1e-8)

    def scalarize(l1, l2, a, b, wk, zk1, zk2, sk1, sk2, lam, ek, ck):
        return inner_loss(
            method,
            l1,
            l2,
            alpha=a,
            flood=b,
            w=wk,
            ideal=(zk1, zk2),
            scale=(sk1, sk2),
            multiplier=lam,
            epsilon=ek,
            damping=ck,
        )

    def member_objective(p, xb, yb, *knobs):
        l1, l2 = member_losses(p, xb, yb)
        loss = scalarize(l1, l2, *knobs)
        return loss, (loss.detach(), l2.detach())

    def batched_step(xb, yb, *knobs):
        tensors = list(params.values())
        for t in tensors:
            t.requires_grad_(True)
        l1, l2 = setup.batched_losses(base, params, xb, yb)
        loss = scalarize(l1, l2, *knobs)
        # Members are independent: the gradient of the sum is each member's own gradient.
        grads = torch.autograd.grad(loss.sum(), tensors)
        for t in tensors:
            t.requires_grad_(False)
        return dict(zip(params, grads, strict=True)), (loss.detach(), l2.detach())

    data_dims = None if shared_order else 0
    grad_fn = vmap(
        grad(member_objective, has_aux=True),
        in_dims=(0, data_dims, data_dims, *([0] * 10)),
        randomness="different",
    )
    if fast:

        def eval_fn(p, xv, yv):
            return setup.batched_losses(base, p, xv, yv)

    else:
        eval_fn = vmap(member_losses, in_dims=(0, None, None), randomness="different")
    opt = _BatchedOptimizer(
        first.optimizer, params, _column(configs, "lr"), _column(configs, "momentum")
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
            knobs = (alpha, flood, w, z1, z2, s1, s2, multiplier, eps, damping)
            if fast:
                grads, (loss, l2) = batched_step(x[idx], y[idx], *knobs)
            else:
                grads, (loss, l2) = grad_fn(params, x[idx], y[idx], *knobs)
            with torch.no_grad():
                opt.step(grads)
            if method == "mdmm":
                multiplier = mdmm_multiplier_step(multiplier, l2, eps, lambda_lr)
            total += loss
            n_batches += 1
        lr_now = opt.lr.clone()
        base.eval()
        with torch.no_grad():
            val1, val2 = eval_fn(params, data.val.x, data.val.y)
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
            opt.lr[k] = 0.0
            lambda_lr[k] = 0.0
            multiplier[k] = 0.0
            for p in params.values():
                p[k] = 0.0
            opt.reset_member(k)
        # One conversion per column, not one per member and field.
        columns = zip(
            lr_now.tolist(),
            objective.tolist(),
            val1.tolist(),
            val2.tolist(),
            multiplier.tolist(),
            alive.tolist(),
            strict=True,
        )
        for k, (lr_k, obj_k, v1_k, v2_k, lam_k, alive_k) in enumerate(columns):
            if alive_k:
                histories[k].append(
                    EpochRecord(
                        epoch=epoch + 1,
                        lr=lr_k,
                        train_objective=obj_k,
                        val_loss1=v1_k,
                        val_loss2=v2_k,
                        val_metric=math.nan,
                        multiplier=lam_k,
                    )
                )
        if (lr_decay != 1.0).any():
            opt.lr *= lr_decay
    seconds = time.perf_counter() - start
    results: list[TrainResult | DivergedError] = []
    for k, c in enumerate(configs):
        if failed[k] is not None:
            results.append(failed[k])
            continue
        with torch.no_grad():
            for name, p in base.named_parameters():
                p.copy_(params[name][k])
        val = setup.evaluate(base, data.val)
        last = histories[k][-1]
        histories[k][-1] = EpochRecord(**{**last.__dict__, "val_metric": val["metric"]})
        info: dict[str, float] = {}
        if method == "chebyshev" and c.normalize == "initial":
            info.update(scale1=float(s1[k]), scale2=float(s2[k]))
        if method == "mdmm":
            info.update(mdmm_info(val["loss2"], c.epsilon, float(multiplier[k])))
        results.append(
            TrainResult(
                train=setup.evaluate(base, data.train),
                val=val,
                test=setup.evaluate(base, data.test),
                history=histories[k],
                seconds=seconds / k_members,
                info=info,
            )
        )
    return results
