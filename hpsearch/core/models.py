"""Torch models: a linear/logistic model and an MLP of given depth, width and activation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpsearch._lazy import lazy_import
from hpsearch.errors import HpsearchError, check_choice

if TYPE_CHECKING:
    from torch import nn
else:  # torch starts when a model is built, not when a study file is checked
    nn = lazy_import("torch.nn", globals(), "nn")

# Activation name in a study file -> the torch.nn module class of that name.
ACTIVATIONS: dict[str, str] = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "gelu": "GELU",
    "silu": "SiLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "sigmoid": "Sigmoid",
}

MODEL_KINDS: tuple[str, ...] = ("linear", "mlp")


@dataclass(frozen=True)
class ModelSpec:
    """The architecture of a model.

    Attributes:
        kind: ``"linear"`` (a single affine map: linear/logistic regression) or ``"mlp"``.
        depth: Number of hidden layers of an MLP (ignored for ``"linear"``).
        width: Units in each hidden layer.
        activation: One of :data:`ACTIVATIONS`.
    """

    kind: str = "mlp"
    depth: int = 1
    width: int = 64
    activation: str = "relu"

    def __post_init__(self) -> None:
        check_choice("model", self.kind, MODEL_KINDS)
        check_choice("activation", self.activation, ACTIVATIONS)
        if self.depth < 0 or self.width < 1:
            raise HpsearchError(
                f"depth must be >= 0 and width >= 1, got {self.depth}, {self.width}"
            )


def build_mlp(n_in: int, n_out: int, spec: ModelSpec) -> nn.Sequential:
    """Build ``spec`` as an ``nn.Sequential`` from ``n_in`` inputs to ``n_out`` outputs.

    A ``"linear"`` spec, or an MLP of depth 0, is one ``nn.Linear``; the caller's loss makes it
    linear regression (MSE) or logistic regression (cross-entropy).

    Args:
        n_in: Input features.
        n_out: Outputs (classes, or 1 for a regression target).
        spec: The architecture.

    Returns:
        The module, initialised from torch's global generator (seed it first).
    """
    if spec.kind == "linear" or spec.depth == 0:
        return nn.Sequential(nn.Linear(n_in, n_out))
    layers: list[nn.Module] = []
    width_in = n_in
    for _ in range(spec.depth):
        layers += [nn.Linear(width_in, spec.width), getattr(nn, ACTIVATIONS[spec.activation])()]
        width_in = spec.width
    layers.append(nn.Linear(width_in, n_out))
    return nn.Sequential(*layers)
