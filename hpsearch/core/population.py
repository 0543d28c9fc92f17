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
import itertools
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.func import grad, vmap

from hpsearch._torch_compat import fused_adam_update, reparametrized
from hpsearch.core.aggregators import POPULATION_REFUSES_JD
from hpsearch.core.data import Dataset, Split
from hpsearch.core.knobs import OPTIMIZERS, TrainConfig
from hpsearch.core.models import ModelSpec
from hpsearch.core.setups import BatchedSetup, Setup
from hpsearch.core.stacked import stacked_supported
from hpsearch.core.train import (
    EpochJudge,
    EpochRecord,
    Knobs,
    Refill,
    TrainResult,
    build_on_cpu,
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
    "aggregator",
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

    def __init__(self, shapes: dict[str, torch.Size]) -> None:
        self.shapes = shapes
        self.sizes = [math.prod(shape) for shape in shapes.values()]
        self.k = next(iter(shapes.values()))[0]

    @classmethod
    def of(cls, stacked: dict[str, torch.Tensor]) -> _FlatLayout:
        return cls({name: t.shape for name, t in stacked.items()})

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: K × shape}`` views into ``flat``."""
        blocks = flat.split(self.sizes)
        pairs = zip(self.shapes.items(), blocks, strict=True)
        return {name: b.view(shape) for (name, shape), b in pairs}

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """One flat tensor from ``{name: K × shape}`` (a copy)."""
        return torch.cat([tensors[name].reshape(-1) for name in self.shapes])

    def spread(self, per_member: torch.Tensor, device: torch.device) -> torch.Tensor:
        """A per-member K-vector repeated over every element of that member, on ``device``."""
        per_member = per_member.to(device)
        if self.k == 0:
            return per_member.new_zeros(0)
        return torch.cat([per_member.repeat_interleave(n // self.k) for n in self.sizes])

    def regrouped(self, keep: Sequence[int], n_new: int) -> _FlatLayout:
        """The layout of members ``keep`` followed by ``n_new`` new ones."""
        k = len(keep) + n_new
        return _FlatLayout({name: torch.Size((k, *s[1:])) for name, s in self.shapes.items()})

    def regroup(
        self,
        flat: torch.Tensor,
        keep: Sequence[int],
        new: dict[str, torch.Tensor] | int,
    ) -> torch.Tensor:
        """``flat`` with members ``keep`` only, then the new members' blocks ``new``
        (``{name: n × shape}``), or that many members of zeros."""
        index = torch.tensor(list(keep), dtype=torch.long, device=flat.device)
        blocks = []
        for name, block in self.views(flat).items():
            extra = (
                new[name].to(flat.device)
                if isinstance(new, dict)
                else block.new_zeros((new, *block.shape[1:]))
            )
            blocks.append(torch.cat([block.index_select(0, index), extra]).reshape(-1))
        return torch.cat(blocks)


@dataclass
class _BatchedOptimizer:
    """The optimizers of :data:`OPTIMIZERS` on one flat tensor of all members' parameters,
    with torch's defaults and update order, and per-member learning rate, momentum and step
    count (members that joined later have taken fewer steps)."""

    name: str
    layout: _FlatLayout
    flat: torch.Tensor
    lr: torch.Tensor
    momentum: torch.Tensor
    backstitch: torch.Tensor | None = None  # per-member α_b of backstitched members

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise HpsearchError(f"unknown optimizer {self.name!r}")
        # Every buffer starts at zero, as torch's do (momentum's first step, 0·μ + g, is the
        # clone of g that torch takes): a member that joins later starts from zeros too.
        names = {"momentum": ["buf"], "nesterov": ["buf"], "adagrad": ["sum"],
                 "rmsprop": ["sq"], "adam": ["m", "v"]}.get(self.name, [])  # fmt: skip
        self.state: dict[str, torch.Tensor] = {n: torch.zeros_like(self.flat) for n in names}
        self.member_steps = [0] * self.layout.k  # non-increasing: newer members come last
        self._configure()

    def _configure(self) -> None:
        self.set_lr(self.lr)
        self._momentum = self.layout.spread(self.momentum, self.flat.device)
        self._update = torch.empty_like(self.flat) if self.name == "adam" else None

    def set_lr(self, lr: torch.Tensor) -> None:
        """New per-member learning rates (decay)."""
        self.lr = lr
        self._lr = self.layout.spread(lr, self.flat.device)
        if self.backstitch is not None:
            # Backstitch's two steps (see TrainConfig.backstitch): an ascent at -α_b·η, then
            # a descent at (1 + α_b)·η; scaled in double, as the sequential run scales its
            # param group's learning rate.
            rate, scale = lr.double(), self.backstitch.double()
            self._ascent = self.layout.spread((-scale * rate).float(), self.flat.device)
            self._descent = self.layout.spread(((1.0 + scale) * rate).float(), self.flat.device)

    def regroup(
        self,
        layout: _FlatLayout,
        flat: torch.Tensor,
        keep: Sequence[int],
        n_new: int,
        lr: torch.Tensor,
        momentum: torch.Tensor,
        backstitch: torch.Tensor | None,
    ) -> None:
        """Members ``keep`` with their state, then ``n_new`` new ones with zero state;
        ``flat`` (laid out by ``layout``) holds the regrouped parameters, and ``lr``,
        ``momentum`` and ``backstitch`` every member's values."""
        self.state = {n: self.layout.regroup(b, keep, n_new) for n, b in self.state.items()}
        self.member_steps = [self.member_steps[k] for k in keep] + [0] * n_new
        self.layout, self.flat = layout, flat
        self.lr, self.momentum, self.backstitch = lr, momentum, backstitch
        self._configure()

    def step(self, grad: torch.Tensor, phase: str = "plain") -> None:
        """One update of every member; ``grad`` is flat, laid out like the parameters.

        ``phase``: ``"plain"``, or backstitch's ``"ascent"`` or ``"descent"`` step (their
        scaled learning rates).
        """
        self.member_steps = [t + 1 for t in self.member_steps]
        p, st = self.flat, self.state
        lr = self._lr if phase == "plain" else self._ascent if phase == "ascent" else self._descent
        if self.name == "sgd":
            p.addcmul_(grad, lr, value=-1.0)
        elif self.name in ("momentum", "nesterov"):
            step = st["buf"].mul_(self._momentum).add_(grad)
            if self.name == "nesterov":
                step = torch.addcmul(grad, step, self._momentum)
            p.addcmul_(step, lr, value=-1.0)
        elif self.name == "adagrad":
            st["sum"].addcmul_(grad, grad)
            p.addcdiv_(grad * lr, st["sum"].sqrt().add_(1e-10), value=-1.0)
        elif self.name == "rmsprop":
            st["sq"].mul_(0.99).addcmul_(grad, grad, value=0.01)
            p.addcdiv_(grad * lr, st["sq"].sqrt().add_(1e-8), value=-1.0)
        else:  # adam, as torch.optim.Adam computes it
            # torch's fused Adam kernel (what Adam(fused=True) runs) takes one learning rate:
            # run it at lr = 1 on a zeroed buffer to get the update, then scale per member.
            # One pass over the state instead of eight; half the time of the unfused ops.
            assert self._update is not None
            update = self._update.zero_()
            tensors = (update, grad, st["m"], st["v"])
            cohorts = self._cohorts()
            if len(cohorts) == 1:
                fused_adam_update([update], [grad], [st["m"]], [st["v"]], [self.member_steps[0]])
            else:
                # Members that joined at different epochs have their own step count (Adam's
                # bias correction): one tensor per parameter and cohort, each with its count.
                lists: list[list[torch.Tensor]] = [[], [], [], []]
                steps = []
                views = [self.layout.views(t) for t in tensors]
                for first, last in cohorts:
                    for name in self.layout.shapes:
                        for out, view in zip(lists, views, strict=True):
                            out.append(view[name][first:last])
                        steps.append(self.member_steps[first])
                fused_adam_update(lists[0], lists[1], lists[2], lists[3], steps)
            p.addcmul_(update, lr)

    def _cohorts(self) -> list[tuple[int, int]]:
        """Ranges of members with equal step counts (contiguous: newer members come last)."""
        bounds = [0]
        bounds += [k for k in range(1, len(self.member_steps))
                   if self.member_steps[k] != self.member_steps[k - 1]]  # fmt: skip
        bounds.append(len(self.member_steps))
        return list(itertools.pairwise(bounds))


class _Population:
    """Members of one group as one batched model: the :class:`Members` of a population."""

    def __init__(
        self, setup: Setup, data: Dataset, model: ModelSpec, configs: Sequence[TrainConfig]
    ) -> None:
        self.setup, self.model = setup, model
        self.metric_every_epoch = False  # the vmap path's metric only at the end, by default
        self.configs = list(configs)
        self.k = len(configs)
        first = configs[0]
        self.method = first.method
        self.batch_size = first.batch_size
        self.data = setup.prepare(data)
        self.device = data.device
        members = self._build(configs)
        stacked = self._stack(members)  # on the CPU, where they were built: then moved once
        self.base = base = members[0].to(self.device)
        self.layout = _FlatLayout.of(stacked)
        flat = self.layout.flatten(stacked).to(self.device)
        self.orders = [torch.Generator().manual_seed(c.seed) for c in configs]
        # The members' batch orders are one when they share a seed and started together.
        self.origins = [(c.seed, 0) for c in configs]
        self.epochs_run = 0
        # Fast path: a setup that computes all K members' losses and gradients itself (stacked
        # matmuls, derivatives by hand; see ``hpsearch.core.stacked``) skips autograd and vmap's
        # per-op overhead. Any other setup goes through vmap over its own ``losses``.
        self.batched = (
            setup if isinstance(setup, BatchedSetup) and stacked_supported(base) else None
        )
        self.eval_fn = vmap(self._member_losses, in_dims=(0, None, None), randomness="different")
        # iFlood floods each row's loss before the mean; on the fast path, where the setup's
        # batched_loss_grads takes per-member levels (``sample_flood``), else through vmap.
        self.per_sample = first.flood_mode == "sample"
        if self.per_sample and self.batched is not None:
            takes = inspect.signature(self.batched.batched_loss_grads).parameters
            self.batched = self.batched if "sample_flood" in takes else None
        # Backstitch: every n-th mini-batch first takes an ascent step (0: never). Members
        # count mini-batches in phase: a new one joins only where the count restarts.
        self.backstitch_interval = first.backstitch_interval if first.backstitched else 0
        self.steps = 0
        lr, momentum, backstitch = self._columns()
        self.opt = _BatchedOptimizer(first.optimizer, self.layout, flat, lr, momentum, backstitch)
        self._configure(flat)

    def _build(self, configs: Sequence[TrainConfig]) -> list[torch.nn.Module]:
        # On the CPU, as a sequential run of each config initialises (train.build_on_cpu).
        return [build_on_cpu(self.setup, self.data, self.model, c.weights_seed) for c in configs]

    def _stack(self, members: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
        names = [n for n, _ in members[0].named_parameters()]
        return {
            n: torch.stack([dict(m.named_parameters())[n].detach() for m in members]) for n in names
        }

    def _columns(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        lr, momentum, backstitch = knob_columns(
            self.configs, ("lr", "momentum", "backstitch")
        ).values()
        return lr, momentum, backstitch if self.backstitch_interval else None

    def _configure(self, flat: torch.Tensor) -> None:
        """What follows from the members and their flat parameters."""
        self.params = self.layout.views(flat)
        self.shared_order = len(set(self.origins)) == 1
        self.flat_grad = torch.empty_like(flat)  # the fast path writes its gradients here
        self.grad_views = self.layout.views(self.flat_grad)
        data_dims = None if self.shared_order else 0
        self.grad_fn = vmap(
            grad(self._member_objective, has_aux=True),
            in_dims=(0, data_dims, data_dims, 0),  # 0: every knob is a K-vector
            randomness="different",
        )

    def remove(self, keep: Sequence[int]) -> None:
        self._regroup(list(keep), [])

    def can_add(self) -> bool:
        interval = self.backstitch_interval
        return not interval or self.k == 0 or self.steps % interval == 0

    def add(self, configs: Sequence[TrainConfig]) -> None:
        self._regroup(list(range(self.k)), list(configs))

    def _regroup(self, keep: list[int], new: list[TrainConfig]) -> None:
        if keep == list(range(self.k)) and not new:
            return
        new_stacked: dict[str, torch.Tensor] | int = len(new)
        if new:
            # Seeding each new member's initialisation must not reseed the draws (dropout,
            # sampling) of the members already training, on the CPU or their GPU.
            gpu = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=gpu):
                new_stacked = self._stack(self._build(new))
        layout = self.layout.regrouped(keep, len(new))
        flat = self.layout.regroup(self.opt.flat, keep, new_stacked)
        self.configs = [self.configs[k] for k in keep] + new
        self.orders = [self.orders[k] for k in keep]
        self.orders += [torch.Generator().manual_seed(c.seed) for c in new]
        self.origins = [self.origins[k] for k in keep]
        self.origins += [(c.seed, self.epochs_run) for c in new]
        if not keep:
            self.steps = 0  # no member left to keep in phase with
        if not self.configs:
            self.k = 0
            return
        lr, momentum, backstitch = self._columns()
        # The kept members step on with their (decayed) rates; the new ones start at theirs.
        index = torch.tensor(keep, dtype=torch.long, device="cpu")
        lr = torch.cat([self.opt.lr.index_select(0, index), lr[len(keep) :]])
        self.opt.regroup(layout, flat, keep, len(new), lr, momentum, backstitch)
        self.layout, self.k = layout, len(self.configs)
        self._configure(flat)

    def _member_losses(self, p, xb, yb):
        with reparametrized(self.base, p):
            return self.setup.losses(self.base, xb, yb)

    def _member_objective(self, p, xb, yb, knobs):
        if self.per_sample:  # iFlood, as the sequential run computes it
            with reparametrized(self.base, p):
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
        self.epochs_run += 1
        n, size = len(self.data.train), self.batch_size
        perms = [torch.randperm(n, generator=g, device="cpu").to(self.device) for g in self.orders]
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
        if not self.metric_every_epoch:
            return val1, val2, torch.full((self.k,), math.nan, device=self.device)
        # Pruning on the metric needs it every epoch: one evaluation per member (vmap cannot
        # batch a setup's own metric code).
        metric = [self._member_figures(k, self.data.val)["metric"] for k in range(self.k)]
        return val1, val2, torch.tensor(metric, dtype=val1.dtype, device=self.device)

    def learning_rates(self) -> torch.Tensor:
        return self.opt.lr

    def set_learning_rates(self, lr: torch.Tensor) -> None:
        self.opt.set_lr(lr.to(self.opt.lr.dtype))

    def final_figures(
        self, ks: Sequence[int]
    ) -> list[tuple[dict[str, float], dict[str, float], dict[str, float]]]:
        splits = (self.data.train, self.data.val, self.data.test)
        if self.batched is not None:
            # The members' figures in three stacked passes instead of 3·len(ks) module calls.
            index = torch.tensor(list(ks), dtype=torch.long, device=self.device)
            params = {n: p.index_select(0, index) for n, p in self.params.items()}
            with torch.no_grad():
                figures = [
                    {key: v.tolist() for key, v in
                     self.batched.batched_evaluate(self.base, params, split).items()}
                    for split in splits
                ]  # fmt: skip
            return [
                tuple({key: v[i] for key, v in f.items()} for f in figures)  # type: ignore[misc]
                for i in range(len(ks))
            ]
        return [
            tuple(self._member_figures(k, split) for split in splits)  # type: ignore[misc]
            for k in ks
        ]

    def _member_figures(self, k: int, split: Split) -> dict[str, float]:
        """The setup's figures (losses, metric) of member ``k`` on ``split``, through the base
        module loaded with that member's parameters."""
        with torch.no_grad():
            for name, p in self.base.named_parameters():
                p.copy_(self.params[name][k])
            return self.setup.evaluate(self.base, split)


def train_population(
    setup: Setup,
    data: Dataset,
    model: ModelSpec,
    configs: Sequence[TrainConfig],
    on_epoch_end: Callable[[int, EpochRecord], None] | None = None,
    *,
    judge: EpochJudge | None = None,
    refill: Refill | None = None,
    on_results: Callable[[list[tuple[int, TrainResult | Exception]]], None] | None = None,
    metric_every_epoch: bool = False,
) -> list[TrainResult | Exception]:
    """Train every config of one group (see :func:`population_groups`) as one batched model.

    Args:
        setup: The setup; its ``losses`` must be vectorizable by ``torch.func.vmap`` (plain
            tensor code: every built-in setup is).
        data: The dataset.
        model: The architecture, shared by all members.
        configs: One config per member; they must agree on :data:`GROUP_KEYS`.
        on_epoch_end: Called with (run index, epoch record) after each epoch of a live
            run; an exception it raises (``TrialPruned``) stops that run alone.
        judge, refill, on_results: Stop runs at an epoch boundary from all live runs' records,
            start new runs in the freed slots (they must agree on :data:`GROUP_KEYS` too), and
            hear of each result as its run ends: see :func:`hpsearch.core.train.train_members`.
            A new run starts exactly as it would alone (initialisation, batch order, optimizer
            state and step count), so it ends as it would alone.

    Returns:
        Per run, the configs' then the refills', its :class:`TrainResult` or the exception
        that stopped it: a :class:`DivergedError`, or what ``on_epoch_end`` or ``judge`` gave.
        A stopped run leaves the batched model and the others go on unaffected. ``history``
        holds the
        per-epoch losses, and the validation metric at every epoch on the fast path; through
        vmap the metric is NaN before the last epoch (computed once, at the end, per member)
        unless ``metric_every_epoch`` (pruning on the metric needs it; it costs one
        evaluation per member and epoch).

    Raises:
        HpsearchError: The configs do not form one group.
    """
    if not configs:
        return []
    if configs[0].method == "jd":
        raise HpsearchError(POPULATION_REFUSES_JD)
    if len(population_groups(configs)) != 1:
        raise HpsearchError(f"a population must agree on {', '.join(GROUP_KEYS)}")
    _keep_freed_memory()
    start = time.perf_counter()
    members = _Population(setup, data, model, configs)
    members.metric_every_epoch = metric_every_epoch
    if refill is not None:

        def checked(free: int) -> Sequence[TrainConfig]:
            new = list(refill(free))
            if new and len(population_groups([configs[0], *new])) != 1:
                raise HpsearchError(f"a refill must agree on {', '.join(GROUP_KEYS)}")
            return new

        return train_members(
            members,
            configs,
            on_epoch_end,
            start,
            judge=judge,
            refill=checked,
            on_results=on_results,
        )
    return train_members(members, configs, on_epoch_end, start, judge=judge, on_results=on_results)
