"""Chebyshev and MDMM as small objects for your own training loop.

Each turns the two losses of a step into the one your loop calls ``backward()`` on, with the
same arithmetic hpsearch's own runs use (:func:`hpsearch.core.train.inner_loss`)::

    combine = hpsearch.Chebyshev(w=0.3)              # or hpsearch.MDMM(epsilon=0.2)
    loss = combine(loss1, loss2)                     # MDMM also moves its multiplier λ here
    loss.backward(); optimizer.step()

Unlike ``L1 + α·L2``, both can reach the points of a concave stretch of the front:
Chebyshev by its weight ``w`` of L1, MDMM by its budget ``ε`` on L2. ``hpsearch fill --plan``
(:func:`hpsearch.plan_fill`) says which ``w`` or ``ε`` aims into each stretch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hpsearch._lazy import lazy_import
from hpsearch.core.knobs import TRAIN_PARAMS
from hpsearch.errors import HpsearchError

if TYPE_CHECKING:
    import torch
else:  # importing hpsearch for a study's results starts no torch
    torch = lazy_import("torch", globals())


class Chebyshev:
    """Weighted Chebyshev scalarization ``max(w·(L1 − z1)/s1, (1 − w)·(L2 − z2)/s2)``.

    Args:
        w: Weight of L1, in (0, 1); L2 gets ``1 − w``.
        ideal: The ideal point ``z`` (a lower bound of each loss; (0, 0) for losses >= 0).
        scales: The scales ``s`` each loss is divided by (1, 1: the losses' own units, as
            ``hpsearch fill`` aims with ``normalize = "none"``).
    """

    def __init__(
        self,
        w: float,
        ideal: tuple[float, float] = (0.0, 0.0),
        scales: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if not 0 < w < 1:
            raise HpsearchError(f"Chebyshev w={w!r} must be in (0, 1)")
        if not min(scales) > 0:
            raise HpsearchError(f"Chebyshev scales={tuple(scales)!r} must both be > 0")
        self.w = float(w)
        self.ideal = (float(ideal[0]), float(ideal[1]))
        self.scales = (float(scales[0]), float(scales[1]))

    def __call__(self, loss1: torch.Tensor, loss2: torch.Tensor) -> torch.Tensor:
        from hpsearch.core.train import chebyshev_scalarize

        return chebyshev_scalarize(loss1, loss2, self.w, self.ideal, self.scales)

    def __repr__(self) -> str:
        return f"Chebyshev(w={self.w:.4g}, ideal={self.ideal}, scales={self.scales})"


class MDMM:
    """``min L1 subject to L2 <= ε`` by the modified differential method of multipliers.

    Each call returns ``L1 + max(0, λ + c·(L2 − ε))·L2`` (the coefficient held constant in the
    gradient) and then moves the multiplier by ascent, ``λ ← max(0, λ + η_λ·(L2 − ε))``: the
    step hpsearch's runs take (:func:`hpsearch.core.train.mdmm_loss`). Call it once per
    optimizer step.

    Args:
        epsilon: The budget ε on L2 (any finite number: a loss may be negative, as the
            minimized form −value of a maximized objective is).
        damping: The damping ``c`` (default: hpsearch's).
        lambda_lr: The multiplier's step size ``η_λ`` (default: hpsearch's).

    Attributes:
        multiplier: The current λ (a 0-d tensor).
    """

    def __init__(
        self,
        epsilon: float,
        damping: float = TRAIN_PARAMS["damping"].default,
        lambda_lr: float = TRAIN_PARAMS["lambda_lr"].default,
    ) -> None:
        if not (math.isfinite(epsilon) and damping >= 0 and lambda_lr > 0):
            raise HpsearchError(
                f"MDMM needs a finite epsilon, damping >= 0 and lambda_lr > 0; got epsilon="
                f"{epsilon!r}, damping={damping!r}, lambda_lr={lambda_lr!r}"
            )
        self.epsilon = float(epsilon)
        self.damping = float(damping)
        self.lambda_lr = float(lambda_lr)
        self.multiplier = torch.zeros(())

    def __call__(self, loss1: torch.Tensor, loss2: torch.Tensor) -> torch.Tensor:
        from hpsearch.core.train import mdmm_loss, mdmm_multiplier_step

        loss = mdmm_loss(loss1, loss2, self.multiplier, self.epsilon, self.damping)
        self.multiplier = mdmm_multiplier_step(self.multiplier, loss2, self.epsilon, self.lambda_lr)
        return loss

    def __repr__(self) -> str:
        return (
            f"MDMM(epsilon={self.epsilon:.4g}, damping={self.damping:g}, "
            f"lambda_lr={self.lambda_lr:g}, multiplier={float(self.multiplier):.4g})"
        )
