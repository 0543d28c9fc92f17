"""Training a classifier on a non-differentiable metric: MLE-guided parameter search (MGS).

Seed 004 (Welleck & Cho, "MLE-guided parameter search"; the sampling view of optimization):
to lower a cost ``l(θ)`` without a gradient (1 − accuracy, 1 − macro-F1), sample n candidate
updates from the mixture ``q = λ·N(0, σ²) + (1 − λ)·N(−∇l̃(θ), σ²)``, where l̃ is a
differentiable surrogate (cross-entropy), weight them by

    w_i ∝ exp(−[l(θ + Δ_i) − l(θ)] / α) / q(Δ_i)      (self-normalized, in log space)

and step along ``Σ_i w_i·Δ_i``. As in the authors' code the noise of each parameter tensor is
scaled by its mean |gradient|, the combined update is clipped to norm 1 and handed to AdamW as
the gradient. The n candidates are evaluated as one batch (``torch.func.vmap`` over stacked
parameters). For comparison: plain cross-entropy training, and REINFORCE, which samples
*outputs* instead of parameters (``∇ E_{y~p_θ}[reward]``, with the mean reward as baseline).

Plain functions over tensors and hyperparameters; nothing here knows about Optuna.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from hpsearch._lazy import lazy_import
from hpsearch.core.data import Dataset
from hpsearch.core.models import ModelSpec, build_mlp
from hpsearch.errors import HpsearchError, check_choice, check_fields

if TYPE_CHECKING:
    import torch
    import torch.func
    from torch.nn import functional as F
else:  # torch starts with training, not when an MGS file is checked
    torch = lazy_import("torch", globals())
    F = lazy_import("torch.nn.functional", globals(), "F")

ESTIMATORS: tuple[str, ...] = ("mgs", "reinforce", "cross_entropy")
METRICS: tuple[str, ...] = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class MGSConfig:
    """Hyperparameters of one run.

    Attributes:
        estimator: ``"mgs"``, ``"reinforce"`` or ``"cross_entropy"``.
        metric: The metric to raise: ``"accuracy"`` or ``"macro_f1"`` (the cost is 1 − it).
        lr: AdamW learning rate.
        n: Candidates per step (MGS), or sampled label sets per step (REINFORCE).
        sigma: MGS noise scale σ, relative to each tensor's mean |gradient|.
        alpha: MGS temperature α of the importance weights.
        mix: MGS mixing weight λ of the zero-mean component.
        epochs, batch_size, seed: Budget and seed.
    """

    estimator: str = "mgs"
    metric: str = "accuracy"
    lr: float = 1e-3
    n: int = 4
    sigma: float = 1.0
    alpha: float = 0.01
    mix: float = 0.5
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("estimator", self.estimator, ESTIMATORS)
        check_choice("metric", self.metric, METRICS)
        check_fields(
            self,
            {
                "lr": self.lr > 0,
                "n": self.n >= 1,
                "sigma": self.sigma > 0,
                "alpha": self.alpha > 0,
                "mix": 0 <= self.mix <= 1,
                "epochs": self.epochs >= 1,
                "batch_size": self.batch_size >= 1,
            },
        )


@dataclass(frozen=True)
class MGSResult:
    """What a run reached: the metric on each split, and after each epoch the wall time and
    the validation metric (for metric-against-time curves)."""

    train: float
    val: float
    test: float
    seconds: list[float] = field(default_factory=list)
    val_curve: list[float] = field(default_factory=list)


def metric_value(pred: torch.Tensor, y: torch.Tensor, n_classes: int, metric: str) -> torch.Tensor:
    """Accuracy or macro-F1 of predicted labels; batched over any leading axes of ``pred``.

    Macro-F1 averages the per-class F1 over the classes present in ``y`` or predicted.
    """
    if metric == "accuracy":
        return (pred == y).float().mean(-1)
    one_p = F.one_hot(pred, n_classes).float()
    one_y = F.one_hot(y, n_classes).float().expand_as(one_p)
    tp = (one_p * one_y).sum(-2)
    denom = one_p.sum(-2) + one_y.sum(-2)
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    present = (denom > 0).float()
    return (f1 * present).sum(-1) / present.sum(-1)


def mgs_weights(costs: torch.Tensor, log_q: torch.Tensor, alpha: float) -> torch.Tensor:
    """Self-normalized importance weights ``w_i ∝ exp(−c_i/α) / q_i``, computed in log space.

    Args:
        costs: ``l(θ + Δ_i) − l(θ)`` (or ``l(θ + Δ_i)``: a constant shift cancels), shape n.
        log_q: ``log q(Δ_i)``, shape n.
        alpha: Temperature α.

    Returns:
        Weights summing to 1.
    """
    return torch.softmax(-costs / alpha - log_q, dim=0)


def _gaussian_log_density(
    delta: dict[str, torch.Tensor], mean: dict[str, torch.Tensor], std: dict[str, torch.Tensor]
) -> torch.Tensor:
    """log N(Δ; mean, diag std²) of each of the n candidates (leading axis), summed over every
    parameter element."""
    total = torch.zeros(())
    for name, d in delta.items():
        z = (d - mean[name]) / std[name]
        dims = tuple(range(1, d.dim()))
        total = (
            total
            - 0.5 * z.pow(2).sum(dims)
            - d[0].numel() * (torch.log(std[name]) + 0.5 * math.log(2 * math.pi))
        )
    return total


def mgs_direction(
    params: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    cost_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    config: MGSConfig,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """One MGS update direction ``Σ_i w_i·Δ_i`` (before clipping).

    Args:
        params: Current parameters by name.
        grads: Gradient of the surrogate at ``params``.
        cost_of: Maps stacked candidate parameters (n × shape, by name) to their n costs, in
            one batched evaluation.
        config: σ, α, λ (``mix``) and n.
        generator: Random stream of the candidates.

    Returns:
        The update by name (to be *added* to the parameters).
    """
    n = config.n
    n_zero = round(config.mix * n)  # stratified: that many candidates from the zero component
    std = {k: config.sigma * g.abs().mean().clamp(min=1e-12) for k, g in grads.items()}
    zero_mean = {k: torch.zeros_like(g) for k, g in grads.items()}
    grad_mean = {k: -g for k, g in grads.items()}
    delta = {}
    around_zero = torch.arange(n) < n_zero
    for k, g in grads.items():
        noise = torch.randn((n, *g.shape), generator=generator) * std[k]
        centre = torch.where(around_zero.view(-1, *([1] * g.dim())), 0.0, -g)
        delta[k] = centre + noise
    log_q = torch.logsumexp(
        torch.stack(
            [
                _gaussian_log_density(delta, zero_mean, std) + _log(config.mix),
                _gaussian_log_density(delta, grad_mean, std) + _log(1 - config.mix),
            ]
        ),
        dim=0,
    )
    costs = cost_of({k: params[k].unsqueeze(0) + delta[k] for k in params})
    w = mgs_weights(costs, log_q, config.alpha)
    return {k: torch.tensordot(w, d, dims=1) for k, d in delta.items()}


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


def train_metric(
    data: Dataset, model: ModelSpec, config: MGSConfig, deadline: float | None = None
) -> MGSResult:
    """Train an MLP classifier on ``data`` to raise ``config.metric`` with ``config.estimator``.

    Args:
        data: A classification dataset.
        model: The MLP.
        config: Estimator and its hyperparameters.
        deadline: Stop after the epoch during which ``time.perf_counter()`` passes it.

    Returns:
        The metric on each split, and the validation metric after each epoch with its time.

    Raises:
        HpsearchError: The dataset is not a classification task.
    """
    if data.task != "classification":
        raise HpsearchError(f"MGS trains a classifier; {data.name} is {data.task}")
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    module = build_mlp(data.n_features, data.n_classes, model)
    params = dict(module.named_parameters())
    opt = torch.optim.AdamW(params.values(), lr=config.lr)
    x, y = data.train.x, data.train.y
    k = data.n_classes
    seconds, curve = [], []

    def evaluate(split) -> float:
        with torch.no_grad():
            pred = module(split.x).argmax(-1)
        return float(metric_value(pred, split.y, k, config.metric))

    for _ in range(config.epochs):
        perm = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), config.batch_size):
            idx = perm[s : s + config.batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            if config.estimator == "cross_entropy":
                F.cross_entropy(module(xb), yb).backward()
            elif config.estimator == "reinforce":
                _reinforce_loss(module(xb), yb, k, config, gen).backward()
            else:
                surrogate = F.cross_entropy(module(xb), yb)
                grads = torch.autograd.grad(surrogate, list(params.values()))
                detached = {n: p.detach() for n, p in params.items()}

                def cost_of(stacked: dict[str, torch.Tensor], xb=xb, yb=yb) -> torch.Tensor:
                    return candidate_costs(module, stacked, xb, yb, k, config.metric)

                with torch.no_grad():
                    step = mgs_direction(
                        detached, dict(zip(params, grads, strict=True)), cost_of, config, gen
                    )
                    norm = torch.sqrt(
                        cast(torch.Tensor, sum(v.pow(2).sum() for v in step.values()))
                    )
                    scale = 1.0 / max(float(norm), 1.0)  # clipped to norm 1
                for name, p in params.items():
                    p.grad = -step[name] * scale  # AdamW descends: the gradient is −update
            opt.step()
        seconds.append(time.perf_counter() - start)
        curve.append(evaluate(data.val))
        if deadline is not None and time.perf_counter() > deadline:
            break
    return MGSResult(
        train=evaluate(data.train),
        val=curve[-1],
        test=evaluate(data.test),
        seconds=seconds,
        val_curve=curve,
    )


def candidate_costs(
    module: torch.nn.Module,
    stacked: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    metric: str,
) -> torch.Tensor:
    """``1 − metric`` of n candidate parameter sets (stacked on a leading axis) on ``(x, y)``,
    evaluated as one batched model."""

    def logits_of(candidate: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.func.functional_call(module, candidate, (x,))

    logits = torch.func.vmap(logits_of)(stacked)
    return 1.0 - metric_value(logits.argmax(-1), y, n_classes, metric)


def _reinforce_loss(
    logits: torch.Tensor, y: torch.Tensor, k: int, config: MGSConfig, gen: torch.Generator
) -> torch.Tensor:
    """REINFORCE surrogate: n sampled label sets, reward = the metric of each set, the mean
    reward as baseline; its gradient is the policy-gradient estimate."""
    log_p = torch.log_softmax(logits, -1)
    probs = log_p.exp().detach()
    samples = torch.multinomial(probs, config.n, replacement=True, generator=gen).T  # n × B
    reward = metric_value(samples, y, k, config.metric)  # n
    advantage = reward - reward.mean()
    chosen = log_p.gather(1, samples.T).T  # n × B: log p(ŷ_j,row)
    return -(advantage.unsqueeze(1) * chosen).mean()
