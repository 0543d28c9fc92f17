"""Jacobian descent's aggregators: how ``method = "jd"`` turns the two losses' gradients into
the one step it takes.

Linear α, Chebyshev and MDMM combine the *losses* and descend on one number. Jacobian descent
(Quinton & Rey, 2024) keeps the two gradients apart, as the rows of a 2 × n Jacobian, and an
aggregator maps them to one direction: MGDA's minimum-norm point of their convex hull,
PCGrad's projections that remove the conflicting parts, UPGrad's projections onto the cone
where neither loss rises, and so on. The aggregators are torchjd's (an optional dependency,
``pip install "hpsearch[jd]"``); this table says which of them a study may name, with what
fixed options, and which take preference weights, which hpsearch sets from ``w`` (weight of
L1; L2 gets ``1 − w``) so that an outer search or ``hpsearch fill`` can aim with them.

Declarations only, no torch: study files are checked against :data:`AGGREGATORS` without
importing torch or torchjd.

Left out on purpose: ``Mean``, ``Sum`` and ``Constant`` (a fixed weighting of the gradients
is ``linear`` α); ``Krum`` and ``TrimmedMean`` (robust averages of many rows, meaningless for
two); ``GradDrop`` and ``Random``, which draw from torch's global random generator, so a
seeded run would not repeat; ``FairGrad``, ``GradVac``, ``ExcessMTL`` and ``PCD``, each with a
knob of its own that the studies would have to search as well; ``NashMTL``, whose solver, where
it fails (on Fonseca–Fleming at x = (−0.6, 0.1), for one), falls back without a word to the
plain sum of the gradients, at 20 ms a step.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from hpsearch.errors import HpsearchError

# What a user without the extra is told, in one line.
INSTALL_HINT = 'method = "jd" needs torchjd, which is not installed: pip install "hpsearch[jd]"'
# Jacobian descent needs each member's two gradients apart, which population mode's batched
# backward (one gradient of the members' summed objectives) does not give.
POPULATION_REFUSES_JD = (
    'method = "jd" trains one trial at a time: set batch = 1 (population batches train '
    "linear, chebyshev and mdmm)"
)


@dataclass(frozen=True)
class AggregatorSpec:
    """One torchjd aggregator as a study may name it.

    Attributes:
        torchjd_name: Its class in ``torchjd.aggregation``.
        aims: Whether it takes preference weights (``pref_vector``), set from ``w``.
        options: Fixed constructor arguments.
        about: One line for the docs.
    """

    torchjd_name: str
    aims: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    about: str = ""


AGGREGATORS: dict[str, AggregatorSpec] = {
    "upgrad": AggregatorSpec(
        "UPGrad", aims=True, about="each gradient projected onto the cone where no loss rises"
    ),
    "dualproj": AggregatorSpec(
        "DualProj", aims=True, about="the weighted mean projected onto that cone"
    ),
    "aligned_mtl": AggregatorSpec(
        "AlignedMTL", aims=True, about="the gradients' condition number made 1 (Senushkin 2023)"
    ),
    "config": AggregatorSpec(
        "ConFIG", aims=True, about="the direction whose angles to both follow w (Liu 2025)"
    ),
    "mgda": AggregatorSpec("MGDA", about="minimum-norm point of the hull (Désidéri 2012)"),
    "pcgrad": AggregatorSpec("PCGrad", about="conflicting parts projected away (Yu 2020)"),
    "imtl_g": AggregatorSpec("IMTLG", about="equal projections onto each gradient (Liu 2021)"),
    "cagrad": AggregatorSpec(
        "CAGrad",
        options={"c": 0.4},
        about="best worst case within 0.4·‖mean‖ of the mean (Liu 2021)",
    ),
}
AGGREGATOR_NAMES: tuple[str, ...] = tuple(AGGREGATORS)
# The aggregators an outer search or `hpsearch fill` can aim through ``w``.
AIMING_AGGREGATORS: tuple[str, ...] = tuple(n for n, s in AGGREGATORS.items() if s.aims)


def torchjd_installed() -> bool:
    """Whether the optional dependency is there (without importing it)."""
    return importlib.util.find_spec("torchjd") is not None


def make_aggregator(name: str, w: float, device: Any = "cpu") -> Any:
    """A new torchjd aggregator, one per run (some keep state between steps).

    Args:
        name: One of :data:`AGGREGATOR_NAMES`.
        w: Preference weight of L1 (L2 gets ``1 − w``), for those that aim.
        device: Where the Jacobians it gets lie (its preference weights go there).
    """
    import torch

    spec = AGGREGATORS[name]
    try:
        aggregation = importlib.import_module("torchjd.aggregation")
    except ImportError:
        raise HpsearchError(INSTALL_HINT) from None
    options = dict(spec.options)
    if spec.aims:
        options["pref_vector"] = torch.tensor([w, 1.0 - w], device=device)
    return getattr(aggregation, spec.torchjd_name)(**options)
