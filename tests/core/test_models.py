from __future__ import annotations

import pytest
import torch
from torch import nn

from hpsearch import ACTIVATIONS, HpsearchError, ModelSpec, build_mlp


def test_linear_model_is_one_affine_map() -> None:
    model = build_mlp(5, 3, ModelSpec(kind="linear", depth=4))
    assert len(model) == 1 and isinstance(model[0], nn.Linear)
    assert model(torch.zeros(2, 5)).shape == (2, 3)


@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_mlp_depth_width_activation(depth: int, activation: str) -> None:
    model = build_mlp(7, 2, ModelSpec(kind="mlp", depth=depth, width=11, activation=activation))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    acts = [m for m in model if isinstance(m, getattr(torch.nn, ACTIVATIONS[activation]))]
    assert len(linears) == depth + 1 and len(acts) == depth
    assert all(lin.out_features == 11 for lin in linears[:-1])
    assert model(torch.randn(4, 7)).shape == (4, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "cnn"}, "unknown model 'cnn'; allowed: linear, mlp"),
        ({"activation": "swish"}, "unknown activation 'swish'; allowed: relu"),
        ({"width": 0}, "width >= 1"),
    ],
)
def test_bad_specs(kwargs: dict, match: str) -> None:
    with pytest.raises(HpsearchError, match=match):
        ModelSpec(**kwargs)
