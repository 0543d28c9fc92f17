"""Where ``hpsearch fill`` aims its later rounds: the hole of the joint front that loses the
most hypervolume, inside a stretch or not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import hpsearch
from hpsearch.results.analysis import Stretch
from hpsearch.results.fill import FillPlan, next_targets
from hpsearch.study.validation import ParamSpec

REPO = Path(__file__).resolve().parents[2]

# A front from (0, 1) to (1, 0), already its own ideal and nadir. Three holes:
#   (0, 1)–(0.02, 0.30): 0.70 long, spans a rectangle of 0.014;
#   (0.02, 0.30)–(0.32, 0.02): 0.41 long, rectangle 0.084 (a point on its middle adds 0.021);
#   (0.32, 0.02)–(1, 0): 0.68 long, rectangle 0.0136.
FRONT = np.array([[0.0, 1.0], [0.02, 0.30], [0.32, 0.02], [1.0, 0.0]])


def _plan(method: str) -> FillPlan:
    config = hpsearch.load_study_file(REPO / "studies" / "fonseca_fleming-linear-pareto.toml")
    knob = {"mdmm": "epsilon", "chebyshev": "w"}[method]
    params = dict(config.params)
    params["method"] = ParamSpec("method", "fixed", value=method)
    params[knob] = ParamSpec(knob, "float", low=0.0, high=1.0)
    # The only stretch diagnosed is the last hole: the costliest one lies outside it.
    stretch = Stretch(
        start=2, end=3, kind="jump", alpha=1.0, alpha_bracket=(0.9, 1.1),
        epsilon_range=(0.0, 0.02), w_range=(0.0, 0.0588), w_ideal=(0.0, 0.0), evidence=10.0,
    )  # fmt: skip
    config = dataclasses.replace(config, params=params)
    return FillPlan(config=config, stretches=[stretch], bases=[{"lr": 0.1}], first=[])


def test_the_hole_that_loses_most_hypervolume_is_filled_first_even_outside_a_stretch() -> None:
    counted = np.ones(len(FRONT), dtype=bool)
    (target,) = next_targets(_plan("mdmm"), FRONT, counted, [], 1)
    # The middle of the (0.02, 0.30)–(0.32, 0.02) hole, (0.17, 0.16): ε = 0.16.
    assert target == {"lr": 0.1, "epsilon": pytest.approx(0.16)}
    (target,) = next_targets(_plan("chebyshev"), FRONT, counted, [], 1)
    # Chebyshev with ideal (0, 0) reaches (0.17, 0.16) at w = 0.16 / (0.17 + 0.16).
    assert target["w"] == pytest.approx(0.16 / 0.33)


def test_a_hole_aimed_at_already_gets_a_new_aim_then_the_next_hole() -> None:
    counted = np.ones(len(FRONT), dtype=bool)
    tried = [0.16]
    targets = next_targets(_plan("mdmm"), FRONT, counted, tried, 2)
    # A quarter of the way along the same chord: (0.095, 0.23); then the next costliest hole,
    # (0, 1)–(0.02, 0.30), at its middle (0.01, 0.65).
    assert [t["epsilon"] for t in targets] == pytest.approx([0.23, 0.65])
    assert tried == pytest.approx([0.16, 0.23, 0.65])


def test_an_aim_beyond_the_knob_s_range_is_skipped() -> None:
    plan = _plan("mdmm")
    params = dict(plan.config.params)
    params["epsilon"] = ParamSpec("epsilon", "float", low=0.0, high=0.1)
    plan = dataclasses.replace(plan, config=dataclasses.replace(plan.config, params=params))
    targets = next_targets(plan, FRONT, np.ones(len(FRONT), dtype=bool), [], 3)
    assert [t["epsilon"] for t in targets] == pytest.approx([0.01])
