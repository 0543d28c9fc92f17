"""Jacobian descent (``method = "jd"``): each aggregator's step against the combination of the two
gradients computed here by hand, on Fonseca–Fleming's two-parameter point.

The expected directions are written from the methods' definitions (MGDA's minimum-norm point,
PCGrad's projections, …) in float64 with no torchjd code; the gradients too are written out
from the losses' formula, not taken from autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hpsearch
from hpsearch import HpsearchError, ModelSpec, TrainConfig, load_dataset
from hpsearch.core import aggregators
from hpsearch.core.aggregators import AGGREGATOR_NAMES, AIMING_AGGREGATORS, make_aggregator
from hpsearch.core.train import build_on_cpu, jd_backward, train

# The tests that train or aggregate need torchjd (make installs it); the refusals do not.
needs_torchjd = pytest.mark.skipif(
    not aggregators.torchjd_installed(), reason='needs torchjd: pip install -e ".[jd]"'
)

C = 1 / math.sqrt(2)  # Fonseca–Fleming's optimum of each loss sits at ±(C, C)
W = 0.3  # the preference weight of L1 the aiming aggregators are given


def _ff_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """∇(1 − exp(−‖x − c‖²)) and ∇(1 − exp(−‖x + c‖²)), written out."""
    return (
        2 * (x - C) * torch.exp(-((x - C) ** 2).sum()),
        2 * (x + C) * torch.exp(-((x + C) ** 2).sum()),
    )


def _ff_losses(x: torch.Tensor) -> tuple[float, float]:
    return (
        1 - float(torch.exp(-((x - C) ** 2).sum())),
        1 - float(torch.exp(-((x + C) ** 2).sum())),
    )


def _into_cone(v, g1, g2):
    """The point of {u: g1·u >= 0, g2·u >= 0} nearest v (candidates: v, each face, the apex)."""
    if g1 @ v >= 0 and g2 @ v >= 0:
        return v
    faces = [v - (g @ v) / (g @ g) * g for g in (g1, g2)]
    candidates = [u for u in faces if g1 @ u >= -1e-12 and g2 @ u >= -1e-12]
    candidates.append(torch.zeros_like(v))
    return min(candidates, key=lambda u: float((u - v).norm()))


def _upgrad(g1, g2):  # each gradient projected onto the cone, then their weighted mean
    return W * _into_cone(g1, g1, g2) + (1 - W) * _into_cone(g2, g1, g2)


def _dualproj(g1, g2):  # the weighted mean projected onto the cone
    return _into_cone(W * g1 + (1 - W) * g2, g1, g2)


def _mgda(g1, g2):  # the minimum-norm point of the segment [g1, g2]
    lam = float(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)))
    lam = min(max(lam, 0.0), 1.0)
    return lam * g1 + (1 - lam) * g2


def _pcgrad(g1, g2):  # each gradient loses its part along the other when they conflict
    dot = min(0.0, float(g1 @ g2))
    return (g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)


def _imtl_g(g1, g2):  # a convex combination with equal projections on both unit gradients
    d = g1 / g1.norm() - g2 / g2.norm()
    a = -(g2 @ d) / ((g1 - g2) @ d)
    return a * g1 + (1 - a) * g2


def _aligned_mtl(g1, g2):  # every singular value of J set to the smallest: σ_min V Uᵀ w
    u, s, vh = torch.linalg.svd(torch.stack([g1, g2]), full_matrices=False)
    return s.min() * vh.T @ u.T @ torch.tensor([W, 1 - W], dtype=g1.dtype)


def _config(g1, g2):  # the unit direction v with ĝ_i·v ∝ w_i, scaled by Σ g_i·v
    unit = torch.stack([g1 / g1.norm(), g2 / g2.norm()])
    v = torch.linalg.pinv(unit) @ torch.tensor([W, 1 - W], dtype=g1.dtype)
    v = v / v.norm()
    return (g1 @ v + g2 @ v) * v


def _cagrad(g1, g2, c=0.4):  # g0 + c‖g0‖ g_w/‖g_w‖, g_w minimizing g_w·g0 + c‖g0‖‖g_w‖
    g0 = (g1 + g2) / 2
    a = torch.linspace(0, 1, 100_001, dtype=g1.dtype)[:, None]
    gw = a * g1 + (1 - a) * g2
    best = gw[torch.argmin(gw @ g0 + c * g0.norm() * gw.norm(dim=1))]
    return g0 + c * g0.norm() / best.norm() * best


BY_HAND = {
    "upgrad": _upgrad,
    "dualproj": _dualproj,
    "aligned_mtl": _aligned_mtl,
    "config": _config,
    "mgda": _mgda,
    "pcgrad": _pcgrad,
    "imtl_g": _imtl_g,
    "cagrad": _cagrad,
}
# UPGrad and DualProj solve their projection with a regularized Gram matrix (1e-4).
TOLERANCE = {"upgrad": 2e-3, "dualproj": 2e-3, "cagrad": 1e-3}


@needs_torchjd
def test_every_aggregator_has_a_hand_computed_step() -> None:
    assert set(BY_HAND) == set(AGGREGATOR_NAMES)
    assert set(AIMING_AGGREGATORS) == {"upgrad", "dualproj", "aligned_mtl", "config"}


def _point(x: tuple[float, float]) -> torch.nn.Module:
    setup = hpsearch.get_setup("fonseca_fleming")()
    module = build_on_cpu(setup, load_dataset("none"), ModelSpec(), 0)
    with torch.no_grad():
        module.x.copy_(torch.tensor(x))
    return module


# Inside the unit disc the two gradients conflict (g1·g2 < 0); outside they agree.
POINTS = [(0.2, -0.5), (-0.6, 0.1), (0.9, 0.8)]


@needs_torchjd
@pytest.mark.parametrize("x", POINTS)
@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_a_jd_backward_leaves_the_aggregators_direction_in_grad(name: str, x) -> None:
    module = _point(x)
    setup = hpsearch.get_setup("fonseca_fleming")()
    losses = torch.stack(list(setup.losses(module, None, None)))
    jd_backward(losses, [module.x], make_aggregator(name, W))
    g1, g2 = _ff_gradients(torch.tensor(x, dtype=torch.float64))
    expected = BY_HAND[name](g1, g2)
    got = module.x.grad.double()
    assert float((got - expected).norm() / expected.norm()) < TOLERANCE.get(name, 1e-5)


@needs_torchjd
@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_one_epoch_of_jd_training_takes_that_step(name: str) -> None:
    # Through the whole epoch loop: Fonseca–Fleming on no data is one full-batch SGD step an
    # epoch, so after one epoch x = x0 − η·d(x0), and the stored train losses are L(x).
    setup = hpsearch.get_setup("fonseca_fleming")(init_scale=0.5)
    data = load_dataset("none")
    cfg = TrainConfig(method="jd", aggregator=name, w=W, optimizer="sgd", lr=0.5, epochs=1, seed=3)
    x0 = build_on_cpu(setup, data, ModelSpec(), cfg.weights_seed).x.detach().double()
    g1, g2 = _ff_gradients(x0)
    assert g1 @ g2 < 0  # a step where the aggregators differ
    x1 = x0 - 0.5 * BY_HAND[name](g1, g2)
    result = train(setup, data, ModelSpec(), cfg)
    expected = _ff_losses(x1)
    got = (result.train["loss1"], result.train["loss2"])
    assert np.allclose(got, expected, rtol=0, atol=TOLERANCE.get(name, 1e-5))
    assert result.history[0].train_objective == pytest.approx(sum(_ff_losses(x0)), rel=1e-5)


@needs_torchjd
def test_aiming_aggregators_move_with_w_and_the_others_do_not() -> None:
    module = _point((0.2, -0.5))
    setup = hpsearch.get_setup("fonseca_fleming")()
    for name in AGGREGATOR_NAMES:
        steps = []
        for w in (0.2, 0.8):
            losses = torch.stack(list(setup.losses(module, None, None)))
            jd_backward(losses, [module.x], make_aggregator(name, w))
            steps.append(module.x.grad.clone())
        assert (not torch.allclose(*steps)) == (name in AIMING_AGGREGATORS), name


def test_flooding_applies_to_jd_s_first_loss() -> None:
    # Above the flood level the step descends on L1; below it, it ascends (|L1 − b| + b).
    module = _point((0.2, -0.5))
    setup = hpsearch.get_setup("fonseca_fleming")()
    loss1, loss2 = setup.losses(module, None, None)
    from hpsearch.core.train import inner_loss

    level = float(loss1.detach()) + 0.1
    below = inner_loss("jd", loss1, loss2, {"flood": level})
    assert float(below[0].detach()) == pytest.approx(2 * level - float(loss1.detach()))
    assert float(below[1].detach()) == float(loss2.detach())


def test_jd_in_a_population_is_refused_in_one_line() -> None:
    from hpsearch.core.population import train_population

    cfgs = [TrainConfig(method="jd", epochs=1), TrainConfig(method="jd", epochs=1, seed=1)]
    with pytest.raises(HpsearchError, match=r"^method = \"jd\" trains one trial at a time"):
        train_population(
            hpsearch.get_setup("weight_decay")(), load_dataset("iris"), ModelSpec(), cfgs
        )


def test_an_unknown_aggregator_names_the_allowed_ones() -> None:
    with pytest.raises(HpsearchError, match="aggregator.*upgrad"):
        TrainConfig(method="jd", aggregator="nope")


def test_without_torchjd_a_run_says_how_to_install_it(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torchjd", None)  # import torchjd now raises ImportError
    monkeypatch.setitem(sys.modules, "torchjd.aggregation", None)
    monkeypatch.setattr(aggregators, "torchjd_installed", lambda: False)
    with pytest.raises(HpsearchError) as info:
        make_aggregator("upgrad", 0.5)
    assert str(info.value) == aggregators.INSTALL_HINT
    assert 'pip install "hpsearch[jd]"' in aggregators.INSTALL_HINT


def test_fill_refuses_jd_with_why_before_reading_any_study() -> None:
    import optuna

    from hpsearch.core.knobs import JD_CANNOT_AIM

    with pytest.raises(HpsearchError) as info:
        hpsearch.plan_fill(optuna.create_study(), method="jd")
    assert str(info.value) == JD_CANNOT_AIM and "cannot aim" in JD_CANNOT_AIM


@needs_torchjd
def test_backstitch_with_jd_ascends_then_descends_along_the_aggregated_direction() -> None:
    # One full-batch epoch of SGD with backstitch α: x' = x0 + α·η·d(x0) (ascent), then
    # x1 = x' − (1 + α)·η·d(x') with the direction recomputed at x' (MGDA's, by hand).
    setup = hpsearch.get_setup("fonseca_fleming")(init_scale=0.5)
    data = load_dataset("none")
    eta, back = 0.5, 0.3
    cfg = TrainConfig(
        method="jd", aggregator="mgda", optimizer="sgd", lr=eta, epochs=1, seed=2,
        backstitch=back,
    )  # fmt: skip
    x0 = build_on_cpu(setup, data, ModelSpec(), cfg.weights_seed).x.detach().double()
    x_up = x0 + back * eta * _mgda(*_ff_gradients(x0))
    x1 = x_up - (1 + back) * eta * _mgda(*_ff_gradients(x_up))
    result = train(setup, data, ModelSpec(), cfg)
    got = (result.train["loss1"], result.train["loss2"])
    assert np.allclose(got, _ff_losses(x1), rtol=0, atol=1e-5)
    assert not np.allclose(got, _ff_losses(x0 - eta * _mgda(*_ff_gradients(x0))), atol=1e-4)
