"""The training core: mini-batch training of a setup's model on a scalarization of (L1, L2).

Four inner methods: ``linear`` descends on ``flood(L1) + α·L2``; ``chebyshev`` on
``max(w·(L1 − z1)/s1, (1 − w)·(L2 − z2)/s2)``; ``mdmm`` minimizes L1 subject to L2 <= ε with the
Modified Differential Method of Multipliers; ``jd`` (Jacobian descent, sequential runs only)
steps along an aggregation of the two losses' gradients (:mod:`hpsearch.core.aggregators`).
Plain functions over tensors and hyperparameters; nothing here knows about Optuna.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import torch

from hpsearch.core.aggregators import make_aggregator
from hpsearch.core.data import Dataset
from hpsearch.core.knobs import (
    FEASIBILITY_TOL,
    TrainConfig,
)
from hpsearch.core.models import ModelSpec
from hpsearch.core.optimizers import Optimizer
from hpsearch.core.setups import Setup
from hpsearch.errors import DivergedError


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch produced: the mean trained loss over its batches, validation figures, and
    the wall time since training started (``seconds``)."""

    epoch: int
    lr: float
    train_objective: float
    val_loss1: float
    val_loss2: float
    val_metric: float
    multiplier: float = 0.0
    seconds: float = field(default=0.0, compare=False)  # wall time: not part of the result


@dataclass(frozen=True)
class TrainResult:
    """Final figures of a training run.

    Attributes:
        train, val, test: ``{"loss1", "loss2", "metric", …extra metrics}`` on each split.
        history: One :class:`EpochRecord` per epoch run.
        seconds: Wall time of the run.
        info: What the inner method ended with: Chebyshev scales ``scale1``/``scale2``; MDMM
            multiplier ``multiplier``, ``constraint_violation`` (validation L2 − ε) and
            ``feasible`` (1.0 or 0.0, see :data:`FEASIBILITY_TOL`).
    """

    train: dict[str, float]
    val: dict[str, float]
    test: dict[str, float]
    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0
    info: dict[str, float] = field(default_factory=dict)

    def history_columns(self) -> dict[str, list[float]]:
        """The history as :func:`history_columns`."""
        return history_columns(self.history)


def history_columns(history: Sequence[EpochRecord]) -> dict[str, list[float]]:
    """A history as one list per field, epoch ``i + 1`` at index ``i``, values rounded to 6
    significant digits (compact enough to store on every trial)."""
    names = [f.name for f in fields(EpochRecord) if f.name != "epoch"]
    cols: dict[str, list[float]] = {name: [] for name in names} if history else {}
    for rec in history:
        for name in names:
            cols[name].append(float(f"{getattr(rec, name):.6g}"))
    return cols


def flooded_loss(loss: torch.Tensor, flood: float | torch.Tensor) -> torch.Tensor:
    """Flooding (Ishida et al., 2020): ``|loss − b| + b``; the loss itself when b <= 0.

    Below the flood level the gradient's sign flips, so the training loss hovers around b.
    ``flood`` may be a tensor of per-member levels (population training), elementwise.
    """
    if isinstance(flood, torch.Tensor):
        return torch.where(flood > 0, (loss - flood).abs() + flood, loss)
    return (loss - flood).abs() + flood if flood > 0 else loss


def combined_loss(
    loss1: torch.Tensor,
    loss2: torch.Tensor,
    alpha: float | torch.Tensor,
    flood: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """The linear combination a run descends on: ``flood(L1) + α·L2``."""
    return flooded_loss(loss1, flood) + alpha * loss2


def chebyshev_scalarize(
    loss1: torch.Tensor,
    loss2: torch.Tensor,
    w: float | torch.Tensor,
    ideal: tuple[float, float] | tuple[torch.Tensor, torch.Tensor] = (0.0, 0.0),
    scale: tuple[float, float] | tuple[torch.Tensor, torch.Tensor] = (1.0, 1.0),
) -> torch.Tensor:
    """Weighted Chebyshev scalarization ``max(w·(L1 − z1)/s1, (1 − w)·(L2 − z2)/s2)``.

    Unlike ``L1 + α·L2``, every Pareto-optimal point minimizes it for some ``w``, concave
    stretches of the front included.
    """
    term1 = w * (loss1 - ideal[0]) / scale[0]
    term2 = (1.0 - w) * (loss2 - ideal[1]) / scale[1]
    return torch.maximum(term1, term2)


def mdmm_loss(
    loss1: torch.Tensor,
    loss2: torch.Tensor,
    multiplier: torch.Tensor,
    epsilon: float | torch.Tensor,
    damping: float | torch.Tensor,
) -> torch.Tensor:
    """The MDMM descent objective for ``min L1 s.t. L2 <= ε`` (Platt & Barr, 1988).

    Its gradient is ``∇L1 + max(0, λ + c·(L2 − ε))·∇L2``: the augmented Lagrangian of the
    *inequality* ``L2 − ε <= 0``, with the coefficient held constant inside the gradient; the
    caller then moves λ by ascent (:func:`mdmm_multiplier_step`). The clamp at 0 is what makes
    it an inequality: inside the budget (λ = 0, L2 < ε) the unclamped ``c·(L2 − ε)`` is
    negative and would push L2 *up* to ε, turning ``L2 <= ε`` into ``L2 = ε``.
    """
    return loss1 + mdmm_coefficient(loss2, multiplier, epsilon, damping) * loss2


def mdmm_coefficient(
    loss2: torch.Tensor,
    multiplier: torch.Tensor,
    epsilon: float | torch.Tensor,
    damping: float | torch.Tensor,
) -> torch.Tensor:
    """The weight of ``∇L2`` in an MDMM step, ``max(0, λ + c·(L2 − ε))``, as a constant."""
    return torch.clamp(multiplier + damping * (loss2.detach() - epsilon), min=0.0).detach()


def mdmm_multiplier_step(
    multiplier: torch.Tensor,
    loss2: torch.Tensor,
    epsilon: float | torch.Tensor,
    lambda_lr: float | torch.Tensor,
) -> torch.Tensor:
    """Gradient ascent on the multiplier, kept >= 0: ``max(0, λ + η_λ·(L2 − ε))``."""
    return torch.clamp(multiplier + lambda_lr * (loss2.detach() - epsilon), min=0.0)


# The TrainConfig fields the inner scalarization reads at every step, and the state a run adds
# to them (Chebyshev scales measured at the start, the MDMM multiplier). One record of these,
# numbers for one run or per-member tensors for a population, is what ``inner_loss`` takes: a
# new knob is a field of TrainConfig (with its domain in TRAIN_PARAMS), its name here, and its
# use in ``inner_loss``; both training paths pick it up from these names.
SCALARIZATION_FIELDS: tuple[str, ...] = (
    "alpha",
    "flood",
    "w",
    "ideal1",
    "ideal2",
    "epsilon",
    "damping",
)
RUN_STATE: tuple[str, ...] = ("scale1", "scale2", "multiplier")

Knobs = dict[str, Any]
"""``{name: value}`` over SCALARIZATION_FIELDS + RUN_STATE: floats or K-vectors."""


def inner_loss(method: str, loss1: torch.Tensor, loss2: torch.Tensor, knobs: Knobs) -> torch.Tensor:
    """What one step descends on for an inner method of :data:`INNER_METHODS`.

    ``jd`` descends on no one number: it gets the two losses stacked, ``[flood(L1), L2]``,
    whose Jacobian :func:`jd_backward` aggregates.

    Args:
        method: The inner method.
        loss1, loss2: The two losses (scalars, or K-vectors in a population).
        knobs: The step's knobs (:data:`Knobs`): numbers for one run, or tensors of per-member
            values (population training).
    """
    if method == "linear":
        return combined_loss(loss1, loss2, knobs["alpha"], knobs["flood"])
    loss1 = flooded_loss(loss1, knobs["flood"])
    if method == "jd":  # both losses, for their Jacobian (jd_backward)
        return torch.stack([loss1, loss2])
    if method == "chebyshev":
        return chebyshev_scalarize(
            loss1,
            loss2,
            knobs["w"],
            (knobs["ideal1"], knobs["ideal2"]),
            (knobs["scale1"], knobs["scale2"]),
        )
    return mdmm_loss(loss1, loss2, knobs["multiplier"], knobs["epsilon"], knobs["damping"])


def jd_backward(losses: torch.Tensor, params: Sequence[torch.Tensor], aggregator: Any) -> None:
    """Jacobian descent's backward: each loss's gradient over ``params`` as one row of a
    2 × n Jacobian, the aggregator's direction of it left in the parameters' ``grad``.

    Args:
        losses: ``[L1, L2]`` (:func:`inner_loss` of ``"jd"``).
        params: The trained parameters (their ``grad`` is overwritten).
        aggregator: A torchjd aggregator (:func:`hpsearch.core.aggregators.make_aggregator`).
    """
    rows = []
    for i in range(len(losses)):
        grads = torch.autograd.grad(
            losses[i], params, retain_graph=i + 1 < len(losses), allow_unused=True
        )
        # A parameter one loss does not reach (a task head) has a zero gradient in that row.
        rows.append(
            torch.cat([
                (torch.zeros_like(p) if g is None else g).reshape(-1)
                for g, p in zip(grads, params, strict=True)
            ])
        )  # fmt: skip
    direction = aggregator(torch.stack(rows))
    offset = 0
    for p in params:
        p.grad = direction[offset : offset + p.numel()].view_as(p)
        offset += p.numel()


def mdmm_info(val_loss2: float, epsilon: float, multiplier: float) -> dict[str, float]:
    """What an MDMM run ended with: multiplier, constraint violation and feasibility."""
    violation = val_loss2 - epsilon
    return {
        "multiplier": multiplier,
        "constraint_violation": violation,
        "feasible": float(violation <= FEASIBILITY_TOL * max(epsilon, 1e-3)),
    }


def make_optimizer(
    name: str, params: Sequence[torch.Tensor], lr: float, momentum: float
) -> Optimizer:
    """Build one of :data:`OPTIMIZERS` with torch's defaults for everything but lr/momentum
    (:class:`hpsearch.core.optimizers.Optimizer`: torch's update functions, foreach kernels)."""
    return Optimizer(name, params, lr, momentum)


def build_on_cpu(setup: Setup, data: Dataset, model: ModelSpec, seed: int) -> torch.nn.Module:
    """``setup``'s model, initialised on the CPU from torch's generator seeded with ``seed``:
    the same weights whichever device then trains it (a GPU's generator draws others)."""
    torch.manual_seed(seed)
    with torch.device("cpu"):
        return setup.build_model(data, model)


def _step_scaled(opt: Optimizer, factor: float) -> None:
    """One optimizer step with every learning rate multiplied by ``factor`` (may be < 0)."""
    if factor == 1.0:
        opt.step()
        return
    saved = [group["lr"] for group in opt.param_groups]
    for group in opt.param_groups:
        group["lr"] *= factor
    try:
        opt.step()
    finally:
        for group, lr in zip(opt.param_groups, saved, strict=True):
            group["lr"] = lr


def divergence(where: str, values: dict[str, float]) -> DivergedError | None:
    """The error naming the non-finite ``values``, or None when all are finite."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if not bad:
        return None
    shown = ", ".join(f"{k}={v}" for k, v in bad.items())
    return DivergedError(f"diverged: non-finite {shown} {where}")


class Members(Protocol):
    """Models of one setup trained in lock-step by :func:`train_members`: a fixed set (one model,
    or a population), or one whose members change between epochs (population pruning).

    An implementation owns the models, their optimizer and batch order; the skeleton owns what
    every training run shares: the epochs, the inner method's run state (Chebyshev scales, MDMM
    multipliers), learning-rate decay, divergence, the history and the callbacks. Every figure
    crosses this boundary as a vector over the current members, in their order, on ``device``
    (learning rates: on the CPU).
    """

    device: torch.device  # where the models and their data lie; the knobs are put there

    def initial_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L1, L2) of every member's current model on the whole training split, without
        gradients (read for members that have not stepped yet)."""
        ...

    def epoch_batches(self) -> Iterable[Any]:
        """The mini-batches of one epoch, in that epoch's (freshly drawn) order."""
        ...

    def step(self, batch: Any, knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every member on ``batch``, descending on
        :func:`inner_loss` with ``knobs`` (vectors); returns the scalarized loss and L2, both
        detached."""
        ...

    def validate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validation L1, L2 and metric (NaN where not computed every epoch)."""
        ...

    def learning_rates(self) -> torch.Tensor:
        """The learning rate each member steps with now."""
        ...

    def set_learning_rates(self, lr: torch.Tensor) -> None:
        """New per-member learning rates (decay)."""
        ...

    def final_figures(
        self, ks: Sequence[int]
    ) -> list[tuple[dict[str, float], dict[str, float], dict[str, float]]]:
        """The figures on train, validation and test of members ``ks``, now."""
        ...

    def remove(self, keep: Sequence[int]) -> None:
        """Keep only members ``keep`` (increasing), dropping the others and their state."""
        ...

    def can_add(self) -> bool:
        """Whether a new member can start at this epoch boundary (:meth:`add`)."""
        ...

    def add(self, configs: Sequence[TrainConfig]) -> None:
        """New members after the current ones, from scratch: initialisation, batch order and
        optimizer state exactly as a run of each config alone starts."""
        ...


def knob_columns(
    configs: Sequence[TrainConfig],
    names: Iterable[str],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """``{name: K-vector}`` of the configs' values of ``names``, on ``device``."""
    return {
        name: torch.tensor([float(getattr(c, name)) for c in configs], dtype=dtype, device=device)
        for name in names
    }


EpochJudge = Callable[[list[tuple[int, EpochRecord]]], dict[int, Exception]]
"""Called once per epoch with ``(run, record)`` of every run that went on through it; returns
the runs to stop, each with the exception that becomes its result (population pruning)."""
Refill = Callable[[int], Sequence[TrainConfig]]
"""Called at an epoch boundary with the number of free slots; returns at most that many
configs to start now (none: the slots stay free)."""


@dataclass
class _Run:
    """One training run among the members: its config, history and wall-time share."""

    index: int  # its place in train_members' results: the configs, then refills in order
    config: TrainConfig
    started: float
    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0  # its share of the members' wall time, epoch by epoch


def train_members(
    members: Members,
    configs: Sequence[TrainConfig],
    on_epoch_end: Callable[[int, EpochRecord], None] | None = None,
    start: float | None = None,
    *,
    judge: EpochJudge | None = None,
    refill: Refill | None = None,
    on_results: Callable[[list[tuple[int, TrainResult | Exception]]], None] | None = None,
) -> list[TrainResult | Exception]:
    """The epoch skeleton every training run goes through, for one model or a population.

    A run ends when it has trained its epochs, diverged, or was stopped by ``on_epoch_end`` or
    ``judge``; its members' slot is then dropped, and ``refill`` may start new runs in the
    free slots (at most ``len(configs)`` run at once). Runs start at epoch boundaries, so every
    run's epochs line up with the others'.

    Args:
        members: The models, one per config.
        configs: One config per member; they agree on the optimizer, method, normalization,
            epochs and batch size (the members step together), and so must refills.
        on_epoch_end: Called with (run index, its epoch record) after every epoch of a live
            run; an exception it raises stops that run alone and becomes its result (the
            Optuna objective raises ``TrialPruned`` there).
        start: The ``time.perf_counter()`` the run's wall time counts from (default: now).
        judge: Called once per epoch with the live runs' records (see :data:`EpochJudge`).
        refill: New runs for free slots (see :data:`Refill`); their results follow the
            configs' in the order they started.
        on_results: Called with ``(run index, result)`` of the runs that ended, once per epoch
            in which some did (before refill: a refill's sampler sees their results).

    Returns:
        Per run, its :class:`TrainResult`, or the exception that stopped it: the
        :class:`DivergedError` naming its non-finite figures, or what ``on_epoch_end`` or
        ``judge`` gave.
    """
    loop = _EpochLoop(members, configs, start, on_epoch_end, judge, refill, on_results)
    return loop.run()


class _EpochLoop:
    """The state of :func:`train_members` between epochs: the live runs (one per member slot,
    in slot order), their per-member knob columns and run state (MDMM multipliers, Chebyshev
    scales), and the results of the runs that ended."""

    def __init__(
        self,
        members: Members,
        configs: Sequence[TrainConfig],
        start: float | None,
        on_epoch_end: Callable[[int, EpochRecord], None] | None,
        judge: EpochJudge | None,
        refill: Refill | None,
        on_results: Callable[[list[tuple[int, TrainResult | Exception]]], None] | None,
    ) -> None:
        self.members = members
        self.on_epoch_end, self.judge, self.refill, self.on_results = (
            on_epoch_end, judge, refill, on_results,
        )  # fmt: skip
        self.start = time.perf_counter() if start is None else start
        self.method = configs[0].method
        self.chebyshev_initial = self.method == "chebyshev" and configs[0].normalize == "initial"
        self.capacity = len(configs)
        self.runs = [_Run(i, c, self.start) for i, c in enumerate(configs)]
        self.n_runs = len(self.runs)
        self.results: dict[int, TrainResult | Exception] = {}
        self.device = members.device
        self.multiplier = torch.zeros(0, device=self.device)
        self.scale1 = self.scale2 = torch.zeros(0, device=self.device)
        self.columns()
        self.started(len(self.runs))

    def run(self) -> list[TrainResult | Exception]:
        mark = self.start
        while self.runs:
            objective, lr_now, val = self.train_epoch()
            now = time.perf_counter()
            share, mark = (now - mark) / len(self.runs), now
            ended, records = self.epoch_records(objective, lr_now, val, share, now)
            if self.judge is not None and records:
                slot = {self.runs[k].index: k for k, _ in records}
                for index, reason in self.judge(
                    [(self.runs[k].index, r) for k, r in records]
                ).items():
                    ended[slot[index]] = reason
            self.end_runs(ended)
            if self.runs and (self.lr_decay != 1.0).any():
                self.members.set_learning_rates(self.members.learning_rates() * self.lr_decay)
            if self.refill is not None and len(self.runs) < self.capacity:
                self.add_runs()
        return [self.results[i] for i in range(self.n_runs)]

    def columns(self) -> None:
        """The live runs' knobs as per-member columns."""
        cfgs = [run.config for run in self.runs]
        self.lambda_lr = knob_columns(cfgs, ["lambda_lr"], device=self.device)["lambda_lr"]
        # In double on the CPU, like a torch optimizer's learning rate, so decay does not
        # round it (and a GPU without doubles still decays the same).
        self.lr_decay = knob_columns(cfgs, ["lr_decay"], torch.float64)["lr_decay"]
        self.knobs: Knobs = knob_columns(cfgs, SCALARIZATION_FIELDS, device=self.device)

    def started(self, n_new: int) -> None:
        """The run state of the last ``n_new`` members, which have not stepped yet."""
        self.multiplier = torch.cat([self.multiplier, torch.zeros(n_new, device=self.device)])
        new1 = new2 = torch.ones(n_new, device=self.device)
        if self.chebyshev_initial:
            start1, start2 = self.members.initial_losses()
            # Floor the scales: a loss already at its ideal point would otherwise divide by 0.
            new1 = torch.clamp(start1[-n_new:] - self.knobs["ideal1"][-n_new:], min=1e-8)
            new2 = torch.clamp(start2[-n_new:] - self.knobs["ideal2"][-n_new:], min=1e-8)
        self.scale1, self.scale2 = torch.cat([self.scale1, new1]), torch.cat([self.scale2, new2])

    def train_epoch(self) -> tuple[torch.Tensor, list[float], tuple[torch.Tensor, ...]]:
        """One epoch of every live run: the mean train objective per member, the learning
        rates it ran at, and the validation (L1, L2, metric) per member."""
        # Accumulated without .item(): one sync per epoch, and a NaN/inf anywhere stays.
        total = torch.zeros(len(self.runs), device=self.device)
        n_batches = 0
        step_knobs = {**self.knobs, "scale1": self.scale1, "scale2": self.scale2}
        for batch in self.members.epoch_batches():
            loss, loss2 = self.members.step(batch, {**step_knobs, "multiplier": self.multiplier})
            if self.method == "mdmm":
                self.multiplier = mdmm_multiplier_step(
                    self.multiplier, loss2, self.knobs["epsilon"], self.lambda_lr
                )
            total += loss
            n_batches += 1
        lr_now = self.members.learning_rates().tolist()
        return total.double() / n_batches, lr_now, self.members.validate()

    def epoch_records(
        self,
        objective: torch.Tensor,
        lr_now: list[float],
        val: tuple[torch.Tensor, ...],
        share: float,
        now: float,
    ) -> tuple[dict[int, Exception], list[tuple[int, EpochRecord]]]:
        """Each live run's record of the epoch (slot, record), and the slots it ended: those
        that diverged, and those whose ``on_epoch_end`` raised."""
        ended: dict[int, Exception] = {}  # member -> what stopped it
        records: list[tuple[int, EpochRecord]] = []
        val1, val2, val_metric = val
        # One conversion per column, not one per member and field.
        cols = zip(
            lr_now,
            objective.tolist(),
            val1.tolist(),
            val2.tolist(),
            val_metric.tolist(),
            self.multiplier.tolist(),
            strict=True,
        )
        for k, (lr_k, obj_k, v1_k, v2_k, vm_k, lam_k) in enumerate(cols):
            run = self.runs[k]
            run.seconds += share
            epoch = len(run.history) + 1
            error = divergence(
                f"at epoch {epoch}",
                {"train_objective": obj_k, "val_loss1": v1_k, "val_loss2": v2_k},
            )
            if error is not None:
                ended[k] = error
                continue
            record = EpochRecord(
                epoch=epoch,
                lr=lr_k,
                train_objective=obj_k,
                val_loss1=v1_k,
                val_loss2=v2_k,
                val_metric=vm_k,
                multiplier=lam_k,
                seconds=now - run.started,
            )
            run.history.append(record)
            if self.on_epoch_end is not None:
                try:
                    self.on_epoch_end(run.index, record)
                except Exception as e:  # noqa: BLE001 - the run's result, raised by its caller
                    ended[k] = e
                    continue
            records.append((k, record))
        return ended, records

    def end_runs(self, ended: dict[int, Exception]) -> None:
        """Take the results of the runs that were stopped or trained all their epochs, pass
        them on, and drop their slots."""
        done = [
            k
            for k, run in enumerate(self.runs)
            if k not in ended and len(run.history) == run.config.epochs
        ]
        figures = dict(zip(done, self.members.final_figures(done), strict=True)) if done else {}
        ended_now: list[tuple[int, TrainResult | Exception]] = []
        for k, run in enumerate(self.runs):
            result: TrainResult | Exception
            if k in ended:
                result = ended[k]
            elif k in figures:
                result = _result(run, figures[k], float(self.scale1[k]), float(self.scale2[k]),
                                 float(self.multiplier[k]), self.chebyshev_initial)  # fmt: skip
            else:
                continue
            self.results[run.index] = result
            ended_now.append((run.index, result))
        if ended_now and self.on_results is not None:
            self.on_results(ended_now)
        keep = [k for k in range(len(self.runs)) if k not in ended and k not in figures]
        if len(keep) < len(self.runs):
            self.members.remove(keep)
            self.runs = [self.runs[k] for k in keep]
            self.multiplier = self.multiplier[keep]
            self.scale1, self.scale2 = self.scale1[keep], self.scale2[keep]
            self.columns()

    def add_runs(self) -> None:
        """Start the runs ``refill`` gives in the free slots."""
        assert self.refill is not None
        if not self.members.can_add():
            return
        free = self.capacity - len(self.runs)
        new = list(self.refill(free))[:free]
        if new:
            self.members.add(new)
            now = time.perf_counter()
            self.runs += [_Run(self.n_runs + i, c, now) for i, c in enumerate(new)]
            self.n_runs += len(new)
            self.columns()
            self.started(len(new))


def _result(
    run: _Run,
    figures: tuple[dict[str, float], dict[str, float], dict[str, float]],
    scale1: float,
    scale2: float,
    multiplier: float,
    chebyshev_initial: bool,
) -> TrainResult:
    """The result of a run that trained all its epochs."""
    train_figures, val, test = figures
    history = list(run.history)
    history[-1] = replace(history[-1], val_metric=val["metric"])
    info: dict[str, float] = {}
    if chebyshev_initial:
        info.update(scale1=scale1, scale2=scale2)
    if run.config.method == "mdmm":
        info.update(mdmm_info(val["loss2"], run.config.epsilon, multiplier))
    return TrainResult(
        train=train_figures, val=val, test=test, history=history, seconds=run.seconds, info=info
    )


class _SingleModel:
    """One module with its optimizer: the member of a sequential run (K = 1).

    Backstitch and per-sample flooding (iFlood) live here: they need a second gradient on the
    same mini-batch, or per-row losses, which the batched population does not compute.
    """

    def __init__(self, setup: Setup, data: Dataset, model: ModelSpec, config: TrainConfig) -> None:
        self.setup, self.config = setup, config
        self.order = torch.Generator().manual_seed(config.seed)
        self.data = setup.prepare(data)
        self.device = data.device
        self.module = build_on_cpu(setup, self.data, model, config.weights_seed).to(self.device)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.opt = make_optimizer(config.optimizer, self.params, config.lr, config.momentum)
        self.per_sample = config.flood_mode == "sample" and config.flood > 0
        self.aggregator = None
        if config.method == "jd":
            self.aggregator = make_aggregator(config.aggregator, config.w, self.device)
        # Jacobian descent needs ∇L2 as a row of its own: the penalty goes through autograd.
        self.by_hand = setup.penalty_by_hand(self.module) if self.aggregator is None else None
        # Mini-batches so far, over all epochs: the backstitch interval counts these.
        self.steps = 0
        self.val: dict[str, float] = {}
        self.fixed_knobs: Knobs | None = None

    def initial_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            loss1, loss2 = self.setup.losses(self.module, self.data.train.x, self.data.train.y)
        return loss1.reshape(1), loss2.reshape(1)

    def epoch_batches(self) -> Iterator[torch.Tensor]:
        self.module.train()
        n, size = len(self.data.train), self.config.batch_size
        perm = torch.randperm(n, generator=self.order, device="cpu").to(self.device)
        return (perm[s : s + size] for s in range(0, n, size))

    def _losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L1, or each row's task loss under iFlood; L2). A penalty by hand is a leaf here:
        backward leaves its coefficient in its ``grad`` (:meth:`_backward`)."""
        if self.by_hand is not None:
            reduction = "none" if self.per_sample else "mean"
            return self.by_hand.task_loss(self.module, x, y, reduction), (
                self.by_hand.value().requires_grad_()
            )
        if self.per_sample:
            return self.setup.sample_losses(self.module, x, y)
        return self.setup.losses(self.module, x, y)

    def _objective(self, idx: torch.Tensor, knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
        loss1, loss2 = self._losses(self.data.train.x[idx], self.data.train.y[idx])
        if self.per_sample:  # iFlood: flood each row's loss, then average
            loss1 = flooded_loss(loss1, knobs["flood"]).mean()
            knobs = {**knobs, "flood": 0.0}
        return inner_loss(self.config.method, loss1, loss2, knobs), loss2

    def _backward(self, loss: torch.Tensor, loss2: torch.Tensor) -> None:
        self._drop_grads()
        if self.aggregator is not None:
            jd_backward(loss, self.params, self.aggregator)
            return
        loss.backward()
        if self.by_hand is not None and loss2.grad is not None:
            self.by_hand.add_gradient(loss2.grad)  # c2 = ∂loss/∂L2, times ∇L2

    def step(self, batch: torch.Tensor, knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fixed_knobs is None:  # all but the multiplier are constant over a run
            # Plain numbers, as the config holds them: a 0-d tensor would cost flooding's
            # tensor branch and a few autograd ops on every step.
            self.fixed_knobs = {name: float(value[0]) for name, value in knobs.items()}
            self.fixed_knobs.update((n, getattr(self.config, n)) for n in SCALARIZATION_FIELDS)
        if self.config.method == "mdmm":  # the only knob that moves during a run
            knobs = {**self.fixed_knobs, "multiplier": knobs["multiplier"][0]}
        else:
            knobs = self.fixed_knobs
        factor, backstitch = 1.0, self.config.backstitch
        if backstitch > 0 and self.steps % self.config.backstitch_interval == 0:
            # Backstitch: an ascent step of α·η on this mini-batch, then (below) a descent
            # step of (1 + α)·η with the gradient recomputed at the moved parameters.
            self._backward(*self._objective(batch, knobs))
            _step_scaled(self.opt, -backstitch)
            factor = 1.0 + backstitch
        loss, loss2 = self._objective(batch, knobs)
        self._backward(loss, loss2)
        _step_scaled(self.opt, factor)
        self.steps += 1
        # jd records flood(L1) + L2 as its train objective: it descends on no one number.
        return loss.detach().sum().reshape(1), loss2.detach().reshape(1)

    def _drop_grads(self) -> None:
        # What opt.zero_grad(set_to_none=True) does, without its per-call wrappers (profiler
        # hooks, dynamo guard): ~17 µs a step on a small MLP, 2% of a sequential trial.
        for p in self.params:
            p.grad = None

    def validate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.val = self.setup.evaluate(self.module, self.data.val)
        loss1, loss2, metric = (
            torch.tensor([self.val[key]], dtype=torch.float64, device="cpu")
            for key in ("loss1", "loss2", "metric")
        )
        return loss1, loss2, metric

    def learning_rates(self) -> torch.Tensor:
        return torch.tensor([self.opt.param_groups[0]["lr"]], dtype=torch.float64, device="cpu")

    def set_learning_rates(self, lr: torch.Tensor) -> None:
        for group in self.opt.param_groups:
            group["lr"] = float(lr[0])

    def final_figures(
        self, ks: Sequence[int]
    ) -> list[tuple[dict[str, float], dict[str, float], dict[str, float]]]:
        train_figures = self.setup.evaluate(self.module, self.data.train)
        return [(train_figures, self.val, self.setup.evaluate(self.module, self.data.test))]

    def remove(self, keep: Sequence[int]) -> None:
        pass  # a sequential run ends with its only member

    def can_add(self) -> bool:
        return False  # one model, one run

    def add(self, configs: Sequence[TrainConfig]) -> None:
        raise NotImplementedError("a sequential run trains one config")


def train(
    setup: Setup,
    data: Dataset,
    model: ModelSpec,
    config: TrainConfig,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``setup``'s model on ``data`` by mini-batch descent on the config's inner method.

    Args:
        setup: The setup (pair of losses and metric).
        data: The dataset (as loaded; the setup's ``prepare`` is applied here). Training runs
            on its device (:meth:`Dataset.to`); the model is initialised on the CPU, then moved.
        model: Architecture of the model.
        config: Optimizer, learning rate, α, flood level, budget and seed.
        on_epoch_end: Called with each epoch's record; it may raise to stop training (the
            Optuna objective raises ``TrialPruned`` there).

    Returns:
        Final losses and metrics on train/validation/test, and the per-epoch history.

    Raises:
        DivergedError: A loss, or a validation figure, became NaN or infinite.
    """
    start = time.perf_counter()
    member = _SingleModel(setup, data, model, config)
    callback = None if on_epoch_end is None else (lambda _k, record: on_epoch_end(record))
    (result,) = train_members(member, [config], callback, start)
    if isinstance(result, Exception):
        raise result
    return result
