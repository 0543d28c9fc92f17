"""The samplers and pruners a study file may name, with the options each accepts: one registry
that the study-file check, the runner, the CLI's help and the tests all read.

Adding a sampler is one entry in :data:`SAMPLERS`: its options (validated where the study file
is read) and how to build it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from hpsearch.core.options import Option
from hpsearch.errors import check_choice
from hpsearch.study.halving import Halving

Grid = Callable[[], dict[str, list]]


@dataclass(frozen=True)
class SamplerKind:
    """A sampler a study file may name.

    Attributes:
        make: ``make(options, seed, grid)`` builds it; ``grid()`` gives ``{param: values}`` of
            the searched parameters (only the grid sampler calls it).
        options: The options a study file may give it, with their domains.
    """

    make: Callable[
        [dict[str, Any], int, Callable[[], dict[str, list]]], optuna.samplers.BaseSampler
    ]
    options: dict[str, Option] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerKind:
    """A pruner a study file may name: ``make(options, epochs)`` and its options."""

    make: Callable[[dict[str, Any], int], optuna.pruners.BasePruner]
    options: dict[str, Option] = field(default_factory=dict)


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered: hpsearch
    stops at the study's target itself (never more than the grid, see the study file check),
    and that call raises outside ``study.optimize``, as in population mode's ask/tell."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


_GENETIC = {
    "population_size": Option("int", 50, low=2),
    "mutation_prob": Option("float", None, low=0, high=1),
    "crossover_prob": Option("float", 0.9, low=0, high=1),
}

SAMPLERS: dict[str, SamplerKind] = {
    "tpe": SamplerKind(
        lambda o, seed, grid: optuna.samplers.TPESampler(seed=seed, **o),
        {
            "n_startup_trials": Option("int", 10, low=0),
            "multivariate": Option("categorical", False, choices=(False, True)),
            "n_ei_candidates": Option("int", 24, low=1),
        },
    ),
    "nsgaii": SamplerKind(
        lambda o, seed, grid: optuna.samplers.NSGAIISampler(seed=seed, **o),
        {**_GENETIC, "swapping_prob": Option("float", 0.5, low=0, high=1)},
    ),
    "nsgaiii": SamplerKind(
        lambda o, seed, grid: optuna.samplers.NSGAIIISampler(seed=seed, **o),
        {**_GENETIC, "dividing_parameter": Option("int", 3, low=1)},
    ),
    "gp": SamplerKind(
        lambda o, seed, grid: optuna.samplers.GPSampler(seed=seed, **o),
        {
            "n_startup_trials": Option("int", 10, low=0),
            "deterministic_objective": Option("categorical", False, choices=(False, True)),
        },
    ),
    "random": SamplerKind(lambda o, seed, grid: optuna.samplers.RandomSampler(seed=seed)),
    # Every combination of the searched parameters' values (floats and ints need a step),
    # visited in a seeded order; a rerun skips visited points.
    "grid": SamplerKind(lambda o, seed, grid: _GridSampler(grid(), seed=seed)),
    "qmc": SamplerKind(
        lambda o, seed, grid: optuna.samplers.QMCSampler(seed=seed, **o),
        {
            "qmc_type": Option("categorical", "sobol", choices=("sobol", "halton")),
            "scramble": Option("categorical", False, choices=(False, True)),
        },
    ),
}

PRUNERS: dict[str, PrunerKind] = {
    "none": PrunerKind(lambda o, epochs: optuna.pruners.NopPruner()),
    "median": PrunerKind(
        lambda o, epochs: optuna.pruners.MedianPruner(**o),
        {
            "n_startup_trials": Option("int", 5, low=0),
            "n_warmup_steps": Option("int", 0, low=0),
        },
    ),
    "percentile": PrunerKind(
        lambda o, epochs: optuna.pruners.PercentilePruner(**o),
        {
            "percentile": Option("float", 25.0, low=0, high=100),
            "n_startup_trials": Option("int", 5, low=0),
            "n_warmup_steps": Option("int", 0, low=0),
        },
    ),
    # Hyperband and successive halving count epochs as the resource.
    "hyperband": PrunerKind(
        lambda o, epochs: optuna.pruners.HyperbandPruner(max_resource=epochs, **o),
        {
            "min_resource": Option("int", 1, low=1),
            "reduction_factor": Option("int", 3, low=2),
        },
    ),
    # In population mode (batch > 1) successive halving runs across the batch instead, for
    # one objective or two (hpsearch.study.halving); ``margin`` applies there only.
    "successive_halving": PrunerKind(
        lambda o, epochs: optuna.pruners.SuccessiveHalvingPruner(
            **{k: v for k, v in o.items() if k != "margin"}
        ),
        {
            "min_resource": Option("int", 1, low=1),
            "reduction_factor": Option("int", 4, low=2),
            "margin": Option("float", 0.0, low=0, high=1, help="batch pruning: beaten by how much"),
        },
    ),
}
# The one pruner population mode runs (across the batch, in both modes).
BATCH_PRUNER = "successive_halving"


def make_sampler(
    name: str, options: dict[str, Any], seed: int, grid: Grid
) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` with its (validated) options, seeded with ``seed``."""
    check_choice("sampler", name, SAMPLERS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS[name].make(dict(options), seed, grid)


def batch_halving(pruner: str, pruner_options: dict[str, Any], epochs: int) -> Halving | None:
    """The rule population mode prunes a study's batches by (its pruner, the pruner's options
    and the epochs of a run), or None (no pruning)."""
    if pruner != BATCH_PRUNER:
        return None
    options = {k: o.default for k, o in PRUNERS[BATCH_PRUNER].options.items()}
    options.update(pruner_options)
    return Halving(
        epochs=epochs,
        min_resource=options["min_resource"],
        reduction_factor=options["reduction_factor"],
        margin=options["margin"],
    )


def make_pruner(name: str, options: dict[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    """The pruner ``name`` with its (validated) options; ``epochs`` is the full resource."""
    check_choice("pruner", name, PRUNERS)
    return PRUNERS[name].make(dict(options), epochs)
