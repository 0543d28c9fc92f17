"""Setups: the pair of losses a study trades off, the model they train, and the task metric.

A setup is a subclass of :class:`Setup` registered under a name with :func:`register_setup`.
Built in: ``weight_decay``, ``sparsity``, ``beta_vae`` and ``two_task`` on real data, and the
synthetic ``fonseca_fleming`` and ``front_curve`` with known fronts.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

from hpsearch._lazy import lazy_import
from hpsearch.core.data import Dataset, Split
from hpsearch.core.models import ModelSpec, build_mlp
from hpsearch.core.options import Option
from hpsearch.errors import HpsearchError, did_you_mean

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.nn import functional as F

    from hpsearch.core import stacked
else:  # torch starts on first use: declaring, listing and checking setups needs none of it
    torch = lazy_import("torch", globals())
    nn = lazy_import("torch.nn", globals(), "nn")
    F = lazy_import("torch.nn.functional", globals(), "F")
    stacked = lazy_import("hpsearch.core.stacked", globals(), "stacked")


class Setup(ABC):
    """A pair of losses ``(L1, L2)`` on a model, and the task metric.

    Subclasses set the class attributes and implement :meth:`build_model` and :meth:`losses`;
    override :meth:`metrics` when the metric is not accuracy/R² of ``module(x)`` against ``y``,
    and :meth:`prepare` to derive targets or drop features. Options declared in ``options``
    become tunable study-file parameters and arrive as constructor keyword arguments.

    Attributes:
        name: Registry name (set by :func:`register_setup`).
        loss_names: Names of ``L1`` (the task loss, the one flooding applies to) and ``L2``.
        metric_name: Name of the task metric; higher is better.
        options: Setup-specific hyperparameters and their domains.
        needs_data: True for a setup that trains on a dataset, False for an analytic problem
            whose losses depend on the parameters only (trained with ``dataset = "none"``, each
            epoch one step), None (the default) for not declared. A study file that pairs a
            declared setup with the wrong kind of dataset is refused.
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool | None] = None
    loss_names: ClassVar[tuple[str, str]] = ("loss1", "loss2")
    metric_name: ClassVar[str] = "metric"
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            raise HpsearchError(
                f"setup {self.name!r} has no option(s) {sorted(unknown)}; "
                f"allowed: {sorted(self.options) or 'none'}"
                + did_you_mean(min(unknown), self.options)
            )
        self.values: dict[str, Any] = {k: o.default for k, o in self.options.items()}
        self.values.update(options)

    @classmethod
    def check_dataset(cls, name: str) -> None:
        """Raise :class:`HpsearchError` when the setup cannot train on dataset ``name``
        (checked with the study file, before any data is loaded; default: any dataset)."""
        return None

    def prepare(self, data: Dataset) -> Dataset:
        """Return the dataset this setup trains on (default: unchanged)."""
        return data

    def metric_label(self, data: Dataset) -> str:
        """What the metric is on ``data``, for tables and the dashboard (default: metric_name)."""
        return self.metric_name

    @abstractmethod
    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        """Build the model to train, from torch's (already seeded) global generator."""

    @abstractmethod
    def losses(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(L1, L2)`` as scalar tensors, L1 averaged over the batch."""

    def sample_losses(
        self, module: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ℓ, L2)``: the task loss of each row (a vector whose mean is L1) and L2.

        Needed only by per-sample flooding (iFlood, ``flood_mode = "sample"``); a setup that
        does not override it cannot use that mode (see :meth:`has_sample_losses`).
        """
        raise HpsearchError(f"setup {self.name!r} gives no per-sample task loss")

    @classmethod
    def has_sample_losses(cls) -> bool:
        """Whether the setup overrides :meth:`sample_losses` (so iFlood can use it)."""
        return cls.sample_losses is not Setup.sample_losses

    def penalty_by_hand(self, module: nn.Module) -> PenaltyByHand | None:
        """L2 with its gradient written by hand, when L2 is a penalty on ``module``'s
        parameters and L1 the task loss of ``module(x)`` (default: None, autograd for both).

        The sequential run then backpropagates through L1 alone and adds ``c2·∇L2`` itself,
        without the penalty's own autograd graph (benchmarks/population.py's ablation).
        """
        return None

    def metrics(self, module: nn.Module, split: Split) -> dict[str, float]:
        """Task metric(s) on a whole split; must include ``metric_name`` (default: accuracy/R²)."""
        return {self.metric_name: task_metric(module(split.x), split.y)}

    def evaluate(self, module: nn.Module, split: Split) -> dict[str, float]:
        """Both losses and the metric(s) on a whole split, in eval mode, without gradients.

        Returns:
            ``{"loss1": …, "loss2": …, "metric": …}`` plus any extra metrics by name.
        """
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                l1, l2 = self.losses(module, split.x, split.y)
                found = self.metrics(module, split)
        finally:
            module.train(was_training)
        out = {"loss1": float(l1), "loss2": float(l2), "metric": float(found[self.metric_name])}
        out.update({k: float(v) for k, v in found.items() if k != self.metric_name})
        return out


_SETUPS: dict[str, type[Setup]] = {}
_S = TypeVar("_S", bound=type[Setup])


def register_setup(name: str) -> Callable[[_S], _S]:
    """Class decorator that makes a :class:`Setup` available to study files under ``name``.

    Args:
        name: The name a study file uses in ``[study] setup = "…"``.

    Returns:
        The decorator; it returns the class unchanged (with ``name`` set).
    """

    def decorate(cls: _S) -> _S:
        if not (isinstance(cls, type) and issubclass(cls, Setup)):
            raise TypeError(f"register_setup({name!r}) needs a subclass of hpsearch.Setup")
        cls.name = name
        _SETUPS[name] = cls
        return cls

    return decorate


def available_setups() -> tuple[str, ...]:
    """Names of all registered setups."""
    return tuple(sorted(_SETUPS))


def get_setup(name: str) -> type[Setup]:
    """The setup class registered under ``name``.

    Raises:
        HpsearchError: No setup of that name; the message lists the available ones.
    """
    try:
        return _SETUPS[name]
    except KeyError:
        raise HpsearchError(
            f"unknown setup {name!r}; available: {', '.join(available_setups())}"
            + did_you_mean(name, available_setups())
        ) from None


# --- shared pieces -------------------------------------------------------------------------


def task_loss(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for integer labels, MSE for a float target (``out`` of shape n × 1);
    ``reduction="none"`` gives each row's loss."""
    if y.dtype == torch.int64:
        return F.cross_entropy(out, y, reduction=reduction)
    return F.mse_loss(out.squeeze(-1), y, reduction=reduction)


def task_metric(out: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy for integer labels, R² for a float target."""
    if y.dtype == torch.int64:
        return float((out.argmax(-1) == y).float().mean())
    pred = out.squeeze(-1)
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def _weights(module: nn.Module) -> list[torch.Tensor]:
    # Weight matrices only: biases are not penalized, as in the usual weight-decay practice.
    return [p for p in module.parameters() if p.dim() >= 2]


@dataclasses.dataclass(frozen=True)
class PenaltyByHand:
    """L2 as a sum of one term per tensor of ``params``, with its gradient by hand.

    Attributes:
        task_loss: L1, ``task_loss(module, x, y, reduction)``: the batch mean (``"mean"``) or
            each row's loss (``"none"``, for iFlood); the setup's ``losses`` must agree.
        params: The penalized tensors (a model's weight matrices).
        term: One tensor's share of L2, a 0-d tensor.
        add_grad: ``add_grad(grad, w, scale)`` adds ``scale·∂term(w)/∂w`` to ``grad`` in
            place; ``scale`` is a 0-d tensor on ``w``'s device (read without a device sync).
    """

    task_loss: Callable[[nn.Module, torch.Tensor, torch.Tensor, str], torch.Tensor]
    params: list[torch.Tensor]
    term: Callable[[torch.Tensor], torch.Tensor]
    add_grad: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]

    def value(self) -> torch.Tensor:
        """L2 now, without an autograd graph."""
        with torch.no_grad():
            return cast(torch.Tensor, sum(self.term(w) for w in self.params))

    def add_gradient(self, scale: torch.Tensor) -> None:
        """Add ``scale·∇L2`` to the gradients of the trainable ``params`` (a frozen one gets
        none, as from autograd; one that L1 left without a gradient starts at zeros)."""
        with torch.no_grad():
            for w in self.params:
                if not w.requires_grad:
                    continue
                if w.grad is None:
                    w.grad = torch.zeros_like(w)
                self.add_grad(w.grad, w, scale)


def _task_loss_of(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """L1 of the setups whose L1 is the task loss of ``module(x)`` (weight_decay, sparsity)."""
    return task_loss(module(x), y, reduction=reduction)


def _n_outputs(data: Dataset) -> int:
    return data.n_classes if data.task == "classification" else 1


@runtime_checkable
class BatchedSetup(Protocol):
    """What a setup declares to take population mode's fast path: its losses, gradients and
    evaluation for K stacked members at once (derivatives by hand, no autograd or vmap).

    :func:`hpsearch.core.population.train_population` checks ``isinstance(setup,
    BatchedSetup)``; any other setup trains through ``vmap`` over its own ``losses``.
    """

    def batched_losses(
        self, module: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L1, L2)`` of K stacked members, each a K-vector."""
        ...

    def batched_loss_grads(
        self,
        module: nn.Module,
        params: dict[str, torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        coefficients: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        out: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``L1``, ``L2`` (K-vectors) and the gradients of ``c1·L1 + c2·L2`` by name.

        A setup whose method also takes ``sample_flood`` (per-member flood levels of each
        row's task loss, iFlood) trains iFlood members on the fast path too; without it they
        go through ``vmap`` over its ``sample_losses``.
        """
        ...

    def batched_evaluate(
        self, module: nn.Module, params: dict[str, torch.Tensor], split: Split
    ) -> dict[str, torch.Tensor]:
        """``{"loss1", "loss2", "metric"}`` K-vectors of K stacked members on ``split``."""
        ...


# --- built-in setups -----------------------------------------------------------------------


@register_setup("weight_decay")
class WeightDecay(Setup):
    """Task loss (cross-entropy or MSE) vs the squared norm of the weight matrices."""

    # Population fast path (see ``core.population``): K stacked members, derivatives by hand.

    def batched_losses(
        self, module: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L1, L2)`` of K stacked members, each a K-vector."""
        out = stacked.stacked_forward(module, params, x)[-1]
        return stacked.stacked_task_loss(out, y, with_grad=False)[0], self._batched_penalty(params)

    def batched_loss_grads(
        self,
        module: nn.Module,
        params: dict[str, torch.Tensor],
        x: torch.Tensor,
        y: torch.Tensor,
        coefficients: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        out: dict[str, torch.Tensor] | None = None,
        sample_flood: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``(L1, L2)`` of K stacked members and the gradients of ``c1·L1 + c2·L2``.

        Args:
            module: The layout; params carry a leading member axis K.
            params: Stacked parameters by name.
            x: Inputs, shared ``B × d`` or ``K × B × d``.
            y: Targets, ``B`` or ``K × B``.
            coefficients: Maps the K-vectors ``(L1, L2)`` to the K-vectors ``(c1, c2)``: the
                derivatives of each member's scalarized loss with respect to its L1 and L2.
            out: Tensors shaped like ``params`` to write the gradients into, or None.
            sample_flood: Per-member flood levels of each row's task loss (iFlood), or None:
                ``L1`` is then the mean of the flooded rows.

        Returns:
            ``L1``, ``L2`` and ``{name: gradient}``.
        """
        tape = stacked.stacked_forward(module, params, x)
        l1, grad_out = stacked.stacked_task_loss(tape[-1], y, sample_flood=sample_flood)
        l2 = self._batched_penalty(params)
        c1, c2 = coefficients(l1, l2)
        assert grad_out is not None  # asked for with the default with_grad=True
        grad_out.mul_(c1.view(-1, 1, 1))
        grads = stacked.stacked_backward(module, params, tape, grad_out, out)
        for name, w in params.items():
            if w.dim() >= 3:
                self._add_penalty_grad(grads[name], w, c2.view(-1, 1, 1))
        return l1, l2, grads

    def batched_evaluate(
        self, module: nn.Module, params: dict[str, torch.Tensor], split: Split
    ) -> dict[str, torch.Tensor]:
        """:meth:`evaluate` of K stacked members: ``{"loss1", "loss2", "metric"}`` K-vectors."""
        with torch.no_grad():
            out = stacked.stacked_forward(module, params, split.x)[-1]
            loss1 = stacked.stacked_task_loss(out, split.y, with_grad=False)[0]
            if split.y.dtype == torch.int64:
                metric = (out.argmax(-1) == split.y).float().mean(1)
            else:
                ss_res = (out.squeeze(-1) - split.y).pow(2).sum(1)
                ss_tot = float((split.y - split.y.mean()).pow(2).sum())
                metric = 1.0 - ss_res / ss_tot if ss_tot > 0 else torch.zeros_like(ss_res)
            return {"loss1": loss1, "loss2": self._batched_penalty(params), "metric": metric}

    def _batched_penalty(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return cast(torch.Tensor, sum(self._penalty(w) for w in params.values() if w.dim() >= 3))

    @staticmethod
    def _penalty(w: torch.Tensor) -> torch.Tensor:
        # Each member's squared norm as a dot product of its flattened weights with
        # themselves: one pass, no K × out × in temporary (twice as fast as pow then sum).
        flat = w.reshape(w.shape[0], 1, -1)
        return torch.bmm(flat, flat.transpose(1, 2)).view(-1)

    @staticmethod
    def _add_penalty_grad(grad: torch.Tensor, w: torch.Tensor, scale: torch.Tensor) -> None:
        grad.addcmul_(w, scale, value=2.0)  # 2·w·scale, without a 2·scale temporary

    needs_data = True
    loss_names = ("task_loss", "sq_weight_norm")
    metric_name = "score"

    def metric_label(self, data: Dataset) -> str:
        return "accuracy" if data.task == "classification" else "r2"

    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        return build_mlp(data.n_features, _n_outputs(data), spec)

    def losses(self, module, x, y):
        return _task_loss_of(module, x, y), self.penalty(module)

    def evaluate(self, module: nn.Module, split: Split) -> dict[str, float]:
        # Setup.evaluate's figures from one forward pass instead of two (losses, then metrics):
        # validation runs every epoch.
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                out = module(split.x)
                loss1, loss2 = task_loss(out, split.y), self.penalty(module)
                metric = task_metric(out, split.y)
        finally:
            module.train(was_training)
        return {"loss1": float(loss1), "loss2": float(loss2), "metric": metric}

    def sample_losses(self, module, x, y):
        return _task_loss_of(module, x, y, "none"), self.penalty(module)

    def penalty(self, module: nn.Module) -> torch.Tensor:
        """L2: the penalty of the weight matrices (here their squared norm)."""
        return cast(torch.Tensor, sum(self._term(w) for w in _weights(module)))

    @staticmethod
    def _term(w: torch.Tensor) -> torch.Tensor:
        return w.pow(2).sum()

    def penalty_by_hand(self, module: nn.Module) -> PenaltyByHand | None:
        cls = type(self)
        if (cls.losses, cls.sample_losses, cls.penalty) != (
            WeightDecay.losses,
            WeightDecay.sample_losses,
            WeightDecay.penalty,
        ):
            return None  # a subclass that changed what the losses are: autograd for both
        return PenaltyByHand(_task_loss_of, _weights(module), self._term, self._add_penalty_grad)


@register_setup("sparsity")
class Sparsity(WeightDecay):
    """Task loss vs the L1 norm of the weight matrices (a sparsity penalty)."""

    loss_names = ("task_loss", "l1_weight_norm")

    @staticmethod
    def _term(w: torch.Tensor) -> torch.Tensor:
        return w.abs().sum()  # L2: the L1 norm of the weight matrices

    @staticmethod
    def _penalty(w: torch.Tensor) -> torch.Tensor:
        return w.abs().sum((1, 2))

    @staticmethod
    def _add_penalty_grad(grad: torch.Tensor, w: torch.Tensor, scale: torch.Tensor) -> None:
        grad.addcmul_(w.sign(), scale)  # autograd's subgradient of |w|: 0 at 0


@register_setup("beta_vae")
class BetaVAE(Setup):
    """Reconstruction vs KL of a small VAE (β-VAE: α is β).

    Gaussian decoder with unit variance on the standardized features: ``L1`` is
    ``0.5·Σ_j (x_j − x̂_j)²`` and ``L2`` is ``KL(q(z|x) ‖ N(0, I))``, both averaged over rows.
    The metric is the R² of the reconstruction (decoding the posterior mean).
    """

    needs_data = True
    loss_names = ("reconstruction", "kl")
    metric_name = "recon_r2"
    options = {
        "latent_dim": Option("int", 8, low=1, high=256, help="size of the latent code"),
    }

    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        from hpsearch.core.setup_modules import VAE

        return VAE(data.n_features, int(self.values["latent_dim"]), spec)

    def losses(self, module, x, y):
        recon, mu, logvar = module(x)
        rec = 0.5 * (recon - x).pow(2).sum(-1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        return rec, kl

    def metrics(self, module, split):
        recon, _, _ = module(split.x)
        ss_res = float((split.x - recon).pow(2).sum())
        ss_tot = float((split.x - split.x.mean(0)).pow(2).sum())
        return {self.metric_name: 1.0 - ss_res / ss_tot}


# Second label of two_task: for digits the ink (sum of raw pixel values) of the image; for the
# other datasets one feature, removed from the inputs. Either is cut into tertiles of train.
TWO_TASK_AUX: dict[str, str] = {
    "digits": "ink",
    "breast_cancer": "mean texture",
    "wine": "alcohol",
    "iris": "sepal width (cm)",
    "diabetes": "bmi",
}


@register_setup("two_task")
class TwoTask(Setup):
    """A shared MLP trunk with two heads: the dataset's own label vs a derived label.

    Task A is the dataset's target (cross-entropy, or MSE for diabetes). Task B is the tertile
    (3 classes) of a quantity derived from the row: ink of the image for digits, a held-out
    feature for the others (see ``TWO_TASK_AUX``). ``L1``/``L2`` are the two task losses; the
    metric is task A's accuracy/R², and ``metric_b`` is task B's accuracy.
    """

    needs_data = True
    loss_names = ("task_a", "task_b")
    metric_name = "score_a"

    def metric_label(self, data: Dataset) -> str:
        return "accuracy_a" if data.task == "classification" else "r2_a"

    @classmethod
    def check_dataset(cls, name: str) -> None:
        if name not in TWO_TASK_AUX:
            raise HpsearchError(
                f"two_task has no second label for dataset {name!r}; "
                f"available: {', '.join(TWO_TASK_AUX)}"
            )

    def prepare(self, data: Dataset) -> Dataset:
        self.check_dataset(data.name)
        aux = TWO_TASK_AUX[data.name]
        raw = {
            s: getattr(data, s).x * data.feature_scale + data.feature_mean
            for s in ("train", "val", "test")
        }
        if aux == "ink":
            value = {s: r.sum(-1) for s, r in raw.items()}
            keep = torch.arange(data.n_features, device=data.device)
        else:
            col = data.feature_names.index(aux)
            value = {s: r[:, col] for s, r in raw.items()}
            keep = torch.tensor([i for i in range(data.n_features) if i != col], device=data.device)
        edges = torch.quantile(value["train"], torch.tensor([1 / 3, 2 / 3], device=data.device))

        def split(name: str) -> Split:
            old: Split = getattr(data, name)
            label_b = torch.bucketize(value[name].contiguous(), edges).float()
            return Split(x=old.x[:, keep], y=torch.stack([old.y.float(), label_b], dim=-1))

        return dataclasses.replace(
            data,
            train=split("train"),
            val=split("val"),
            test=split("test"),
            feature_names=tuple(data.feature_names[i] for i in keep.tolist()),
            feature_mean=data.feature_mean[keep],
            feature_scale=data.feature_scale[keep],
        )

    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        from hpsearch.core.setup_modules import TwoHeads

        return TwoHeads(data.n_features, _n_outputs(data), 3, spec)

    @staticmethod
    def _targets(y: torch.Tensor, classification: bool) -> tuple[torch.Tensor, torch.Tensor]:
        y_a = y[:, 0].long() if classification else y[:, 0]
        return y_a, y[:, 1].long()

    def losses(self, module, x, y):
        out_a, out_b = module(x)
        y_a, y_b = self._targets(y, out_a.shape[-1] > 1)
        return task_loss(out_a, y_a), F.cross_entropy(out_b, y_b)

    def metrics(self, module, split):
        out_a, out_b = module(split.x)
        y_a, y_b = self._targets(split.y, out_a.shape[-1] > 1)
        return {self.metric_name: task_metric(out_a, y_a), "metric_b": task_metric(out_b, y_b)}


# --- synthetic problems with a known front -------------------------------------------------


@register_setup("fonseca_fleming")
class FonsecaFleming(Setup):
    """Fonseca–Fleming: a classic problem whose Pareto front is concave everywhere.

    ``L1 = 1 − exp(−Σ_i (x_i − 1/√d)²)`` and ``L2 = 1 − exp(−Σ_i (x_i + 1/√d)²)`` over the
    trained point x ∈ R^d (initialised uniformly in [−init_scale, init_scale]^d). The front is
    ``x_1 = … = x_d = t`` for ``t ∈ [−1/√d, 1/√d]``; gradient descent on ``L1 + α·L2`` can only
    reach its two ends. Use it with ``dataset = "none"`` (each epoch is one step). The metric is
    ``−distance`` of x to the Pareto set (0 on the front).
    """

    needs_data = False
    loss_names = ("f1", "f2")
    metric_name = "neg_distance_to_front"
    options = {
        "dim": Option("int", 2, low=1, high=64, help="dimension d of x"),
        "init_scale": Option("float", 1.0, low=0, help="x starts uniform in [-s, s]^d"),
    }

    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        from hpsearch.core.setup_modules import Point

        return Point(int(self.values["dim"]), float(self.values["init_scale"]))

    def losses(self, module, x, y):
        p = module.x
        c = 1.0 / math.sqrt(p.numel())
        f1 = 1 - torch.exp(-((p - c) ** 2).sum())
        f2 = 1 - torch.exp(-((p + c) ** 2).sum())
        return f1, f2

    def metrics(self, module, split):
        p = module.x.detach()
        c = 1.0 / math.sqrt(p.numel())
        t = p.mean().clamp(-c, c)  # nearest point of the Pareto set {x_i = t, |t| <= c}
        return {self.metric_name: -float((p - t).norm())}


# The front shapes of ``front_curve``: L2 as a function g of L1 = t on the front, t in [0, 1].
FRONT_SHAPES: dict[str, Callable[[Any], Any]] = {
    "convex": lambda t: (1 - t) ** 2,
    "convex_cubic": lambda t: (1 - t) ** 3,
    "concave": lambda t: 1 - t**2,
    "mixed": lambda t: _mixed(t),
}


def _mixed(t: Any) -> Any:
    # Convex for t < 1/2, concave after: linear α reaches the first half, then jumps to t = 1.
    # A tensor has its own sin (and keeps its graph); anything else goes through numpy.
    angle = 2 * math.pi * t
    sin = angle.sin() if hasattr(angle, "sin") else np.sin(angle)
    return 1 - t - 0.1 * sin


@register_setup("front_curve")
class FrontCurve(Setup):
    """A synthetic problem whose Pareto front is the curve ``(t, g(t))``, of a chosen shape.

    Over the trained point (u, v): ``t = (1 − cos u) / 2``, ``L1 = t + v²`` and
    ``L2 = g(t) + v²``, with g from :data:`FRONT_SHAPES` (option ``shape``): ``convex``
    ``(1 − t)²``, ``convex_cubic`` ``(1 − t)³``, ``concave`` ``1 − t²``, and ``mixed``
    ``1 − t − 0.1·sin 2πt`` (convex, then concave). The front is ``v = 0``, ``t ∈ [0, 1]``; its
    ends are stationary points (u = 0 and u = π), so descent on L1 + α·L2 over a concave
    stretch stops at one of its ends, as in a real model. u starts uniform in [π/4, 3π/4], v in
    [−init_scale, init_scale]. Use it with ``dataset = "none"`` (each epoch is one step). The
    metric is ``−|v|``, minus the distance to the Pareto set in v.
    """

    needs_data = False
    loss_names = ("f1", "f2")
    metric_name = "neg_distance_to_front"
    options = {
        "shape": Option("categorical", "concave", choices=tuple(FRONT_SHAPES), help="front shape"),
        "init_scale": Option("float", 0.5, low=0, help="v starts uniform in [-s, s]"),
    }

    def build_model(self, data: Dataset, spec: ModelSpec) -> nn.Module:
        from hpsearch.core.setup_modules import CurvePoint

        return CurvePoint(float(self.values["init_scale"]))

    def losses(self, module, x, y):
        t = (1 - torch.cos(module.u)) / 2
        off = module.v**2
        return t + off, FRONT_SHAPES[self.values["shape"]](t) + off

    def metrics(self, module, split):
        return {self.metric_name: -abs(float(module.v.detach()))}


def front_curve(shape: str, n: int = 2001) -> np.ndarray:
    """``n`` points of the true front of ``front_curve`` with that shape, by increasing f1."""
    t = np.linspace(0.0, 1.0, n)
    return np.stack([t, FRONT_SHAPES[shape](t)], axis=1)


def fonseca_fleming_front(n: int = 2001, dim: int = 2) -> np.ndarray:
    """``n`` points of the true Fonseca–Fleming front, by increasing f1 (n × 2)."""
    c = 1.0 / math.sqrt(dim)
    t = np.linspace(c, -c, n)
    f1 = 1 - np.exp(-dim * (t - c) ** 2)
    f2 = 1 - np.exp(-dim * (t + c) ** 2)
    return np.stack([f1, f2], axis=1)
