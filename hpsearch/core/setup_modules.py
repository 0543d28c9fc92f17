"""The torch modules of the built-in setups (imported when a setup builds its model)."""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import nn

from hpsearch.core.models import ModelSpec, build_mlp


class VAE(nn.Module):
    def __init__(self, n_in: int, latent: int, spec: ModelSpec) -> None:
        super().__init__()
        self.latent = latent
        self.encoder = build_mlp(n_in, 2 * latent, spec)
        self.decoder = build_mlp(latent, n_in, spec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        # Sampling only while training: evaluation decodes the mean, so it is deterministic.
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar


class TwoHeads(nn.Module):
    def __init__(self, n_in: int, n_out_a: int, n_out_b: int, spec: ModelSpec) -> None:
        super().__init__()
        trunk = build_mlp(n_in, 1, spec)
        # Everything but the last Linear is the shared trunk; a linear spec shares nothing.
        self.trunk = nn.Sequential(*list(trunk)[:-1])
        width = cast(nn.Linear, trunk[-1]).in_features
        self.head_a = nn.Linear(width, n_out_a)
        self.head_b = nn.Linear(width, n_out_b)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.head_a(h), self.head_b(h)


class Point(nn.Module):
    """The trained parameters are a point x in R^d; the data is ignored."""

    def __init__(self, dim: int, init_scale: float) -> None:
        super().__init__()
        self.x = nn.Parameter((torch.rand(dim) * 2 - 1) * init_scale)


class CurvePoint(nn.Module):
    """Parameters (u, v): u places the point along the front, v moves it off."""

    def __init__(self, init_scale: float) -> None:
        super().__init__()
        # Away from the ends, where t(u) itself is stationary and no method could move.
        self.u = nn.Parameter((0.25 + 0.5 * torch.rand(())) * math.pi)
        self.v = nn.Parameter((torch.rand(()) * 2 - 1) * init_scale)
