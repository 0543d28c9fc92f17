"""``hpsearch fill``: a follow-up study that aims Chebyshev w or MDMM ε into the stretches of a
front that linear α skipped, and the front before and after.

The follow-up study is an ordinary hpsearch study (its own name; the original's setup, data,
model, budget and seed, so the same initialization), in pareto mode, whose inner method is
``chebyshev`` (w searched, ``normalize = "none"`` with the ideal point the diagnosis used) or
``mdmm`` (ε searched). Its trials are queued with chosen knob values, in rounds: first half of
them spread evenly inside each stretch, in proportion to the stretch's length, then the
holes of the joint front that lose the most hypervolume, inside a stretch
or not; the other searched parameters take the values of the run
that reached the stretch's nearer end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from hpsearch.core.knobs import AIMING_KNOBS
from hpsearch.core.setups import get_setup
from hpsearch.errors import HpsearchError, StudyFileError, did_you_mean
from hpsearch.results.aim import (
    check_fill_method,
    end_params,
    knob_range,
    spread_aims,
)
from hpsearch.results.analysis import (
    FrontAnalysis,
    Normalization,
    Stretch,
    chebyshev_weight,
    feasible_pareto_mask,
)
from hpsearch.results.compare import Comparison, compare_points, wall_seconds
from hpsearch.results.points import StudyPoints, points_of_study
from hpsearch.results.report import load_stored_study
from hpsearch.study import keys
from hpsearch.study.config import CORE_PARAMS, StudyConfig, load_study_file
from hpsearch.study.runner import (
    Publisher,
    RunOptions,
    _describe_difference,
    create_or_load_study,
    run_study,
)
from hpsearch.study.storage import HEARTBEAT_SECONDS, open_storage
from hpsearch.study.validation import ParamSpec

_KNOB = AIMING_KNOBS


@dataclass(frozen=True)
class FillPlan:
    """What a fill study runs.

    Attributes:
        config: The follow-up study's definition (its knob searched over the stretches' range).
        stretches: The stretches aimed at, as the original study's analysis found them.
        bases: Per stretch, the other searched parameters' values (those of the run that
            reached the stretch's nearer end).
        first: Parameter values of the first round's trials, evenly spread in each stretch.
    """

    config: StudyConfig
    stretches: list[Stretch]
    bases: list[dict[str, Any]]
    first: list[dict[str, Any]]

    @property
    def knob(self) -> str:
        return _KNOB[self.config.params["method"].value]


@dataclass(frozen=True)
class FillResult:
    """The original study and its follow-up in one objective space.

    Attributes:
        plan: What was run.
        comparison: Both studies under one normalization (the joint front's).
    """

    plan: FillPlan
    comparison: Comparison

    @property
    def before(self) -> FrontAnalysis:
        """The original study's front."""
        return self.comparison.studies[0].analysis

    @property
    def after(self) -> FrontAnalysis:
        """The front of both studies together."""
        return self.comparison.union


def original_config(study: optuna.Study, study_file: str | None) -> StudyConfig:
    """The study file of a stored study, checked against the definition stored with it.

    Raises:
        HpsearchError: The file is gone or no longer defines that study.
    """
    study_name = study.study_name
    stored = study.user_attrs.get(keys.STUDY)
    if stored is None:
        raise HpsearchError(
            f"study {study_name!r} was not made by hpsearch, which cannot train its runs: "
            "--plan prints the knob values that aim into its stretches, --enqueue also queues "
            "them into the study for your own training loop"
        )
    path = study_file or stored.get("study_file")
    try:
        config = load_study_file(path)
    except StudyFileError as e:
        raise HpsearchError(
            f"cannot read the study file of {study_name!r} ({e}); give it with --study-file"
        ) from None
    diff = _describe_difference(stored["identity"], config.identity())
    if config.name != study_name or diff:
        raise HpsearchError(
            f"{path} no longer defines study {study_name!r} "
            f"({diff or f'its name is {config.name!r}'}); give the right one with --study-file"
        )
    return config


def plan_follow_up(
    config: StudyConfig,
    points: StudyPoints,
    trial_params: dict[int, dict[str, Any]],
    method: str,
    n_trials: int,
    name: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> FillPlan:
    """The follow-up study of ``config`` and its first round of trials.

    The first round is half of ``n_trials``, spread over the stretches in proportion to the
    length of their chords (normalized units), at least one each, evenly spaced strictly
    inside each stretch's ε or w range; later rounds go where the joint front still loses the
    most hypervolume (:func:`next_targets`).

    Args:
        config: The original study's definition.
        points: Its complete trials.
        trial_params: Trial number → that trial's parameters.
        method: One of :data:`FILL_METHODS`.
        n_trials: Trials of the follow-up in all.
        name: The follow-up study's name (default ``<study>-fill-<method>``).
        overrides: Fixed values for other parameters of the follow-up (``lambda_lr``, say).

    Raises:
        HpsearchError: No stretch to fill, an unknown method, or a bad override.
    """
    check_fill_method(method)
    analysis = points.analyze()
    stretches = list(analysis.stretches)
    if not stretches:
        raise HpsearchError(
            f"study {config.name!r} has no concave stretch or hole to fill: its front is convex "
            "within tolerance, and linear α reaches it"
        )
    if n_trials < len(stretches):
        raise HpsearchError(
            f"--n-trials {n_trials} is fewer than the {len(stretches)} stretches to fill"
        )
    knob = _KNOB[method]
    xy = points.xy
    searched = {k for k, p in config.params.items() if p.searched} - {"alpha", knob}
    others = {k for params in trial_params.values() for k in params} - searched
    bases = [end_params(points, s, trial_params, others) for s in stretches]
    first = [
        {**bases[k], knob: value}
        for k, value in spread_aims(points, analysis, method, (n_trials + 1) // 2)
    ]
    params = _follow_up_params(config, method, stretches, xy[analysis.front])
    _apply_overrides(params, config, knob, overrides or {}, [*bases, *first])
    fill = dataclasses.replace(
        config,
        name=name or f"{config.name}-fill-{method}",
        description=f"Follow-up of {config.name}: {method} aimed into the stretches linear "
        "alpha skipped (hpsearch fill).",
        mode="pareto",
        objective=None,
        objective_weights=None,
        sampler="tpe",
        sampler_options={},
        pruner="none",
        pruner_options={},
        n_trials=n_trials,
        batch=1,
        timeout=None,
        params=params,
    )
    return FillPlan(config=fill, stretches=stretches, bases=bases, first=first)


def _follow_up_params(
    config: StudyConfig, method: str, stretches: list[Stretch], front_xy: np.ndarray
) -> dict[str, ParamSpec]:
    """The follow-up's parameters: the original's, with ``method`` fixed, α off, and the knob
    searched over the range that reaches the whole front (later rounds may aim at any hole of
    the joint front, one linear α skipped by chance too)."""
    knob = _KNOB[method]
    params = dict(config.params)
    params["method"] = ParamSpec("method", "fixed", value=method)
    params["alpha"] = ParamSpec("alpha", "fixed", value=0.0)
    ranges = [knob_range(s, method) for s in stretches]
    if method == "mdmm":
        reach = front_xy[:, 1]
    else:
        reach = np.array([chebyshev_weight(p, stretches[0].w_ideal) for p in front_xy])
    low = min(min(r[0] for r in ranges), float(reach.min()))
    high = max(max(r[1] for r in ranges), float(reach.max()))
    params[knob] = ParamSpec(knob, "float", low=low, high=high)
    if method == "chebyshev":
        ideal = stretches[0].w_ideal
        params["normalize"] = ParamSpec("normalize", "fixed", value="none")
        params["ideal1"] = ParamSpec("ideal1", "fixed", value=ideal[0])
        params["ideal2"] = ParamSpec("ideal2", "fixed", value=ideal[1])
    return params


def _apply_overrides(
    params: dict[str, ParamSpec],
    config: StudyConfig,
    knob: str,
    overrides: dict[str, Any],
    queued: list[dict[str, Any]],
) -> None:
    """Fix the parameters ``--set`` gives (checked against their domains), in ``params`` and
    out of every queued trial's values."""
    domains = {**CORE_PARAMS, **get_setup(config.setup).options}
    for key, value in overrides.items():
        if key not in domains or key in ("method", "alpha", knob):
            allowed = sorted(set(domains) - {"method", "alpha", knob})
            raise HpsearchError(
                f"--set {key}: not a parameter to fix here; allowed: {allowed}"
                + did_you_mean(key, allowed)
            )
        if not domains[key].contains(value):
            raise HpsearchError(f"--set {key}={value!r}: allowed {domains[key].allowed()}")
        params[key] = ParamSpec(key, "fixed", value=value)
        for values in queued:
            values.pop(key, None)


# Where in a hole the next trial aims, as a fraction of its chord: the middle first; a hole
# whose middle was tried already (a run that did not land there) gets a quarter, and so on.
_AIM_FRACTIONS = (0.5, 0.25, 0.75, 0.125, 0.875, 0.375, 0.625)


def next_targets(
    plan: FillPlan, xy: np.ndarray, counted: np.ndarray, tried: list[float], k: int
) -> list[dict[str, Any]]:
    """Knob values for the ``k`` holes of the joint front that lose the most hypervolume.

    A hole's loss is the area of the rectangle its two ends span (normalized units), four
    times what a point on its chord's middle adds. Holes beyond the knob's range are skipped.

    Args:
        plan: The fill plan.
        xy: Every trial of the original and the follow-up, raw (L1, L2).
        counted: Which of them count on the front.
        tried: Knob values already queued (a hole gets a new aim, not the same again).
        k: Trials to plan.

    Returns:
        Up to ``k`` parameter dicts, the costliest hole first.
    """
    method = plan.config.params["method"].value
    spec = plan.config.params[plan.knob]
    norm = Normalization.from_fronts([xy[counted]])
    front = np.flatnonzero(feasible_pareto_mask(xy, counted))
    front = front[np.argsort(xy[front, 0])]
    ranges = [knob_range(s, method) for s in plan.stretches]
    holes = []
    for a, b in zip(front[:-1], front[1:], strict=True):
        p, q = xy[a], xy[b]
        # A point on the chord's middle adds a quarter of the rectangle the two neighbours
        # span: the hole that loses the most hypervolume first (a long but nearly flat hole
        # loses little).
        gain = float(np.prod(np.abs(norm.apply(q) - norm.apply(p))))
        holes.append((gain, p, q))
    holes.sort(key=lambda h: -h[0])
    out: list[dict[str, Any]] = []
    tol = 1e-6 * max(abs(r[1] - r[0]) for r in ranges)
    for _, p, q in holes:
        for f in _AIM_FRACTIONS:
            aim = p + f * (q - p)
            value = aim[1] if method == "mdmm" else chebyshev_weight(aim, plan.stretches[0].w_ideal)
            if not spec.bounds[0] < value < spec.bounds[1]:
                break  # beyond the front's ends: nothing to aim at
            # The other parameters: those of the stretch the aim is in, else the nearest one.
            nearest = min(
                range(len(ranges)),
                key=lambda i: max(ranges[i][0] - value, value - ranges[i][1], 0.0),
            )
            if all(abs(value - t) > tol for t in tried):
                out.append({**plan.bases[nearest], plan.knob: float(value)})
                tried.append(float(value))
                break
        if len(out) == k:
            break
    return out


def run_fill(
    storage: str,
    study_name: str,
    method: str = "chebyshev",
    n_trials: int = 30,
    study_file: str | None = None,
    name: str | None = None,
    reference_raw: tuple[float, float] | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    publish: Publisher | None = None,
    on_start: Callable[[StudyConfig], int | None] | None = None,
) -> FillResult:
    """Diagnose a stored study, run the follow-up study that fills its stretches, compare.

    Rounds: the first half of the trials evenly inside the stretches (:func:`plan_follow_up`), then
    rounds of half the remaining ones aimed at the holes of the joint front that lose the most
    hypervolume (:func:`next_targets`). A rerun continues the follow-up where it stopped.

    ``on_start(config)`` is called with the follow-up's study file once it is planned, before
    it trains, and returns the torch threads to train with (None: the study file's ``threads``,
    else torch's setting). The CLI chooses them there, from ``--threads`` or the file, and
    says so: nothing is printed before a refusal's one line.

    Returns:
        A :class:`FillResult`.

    Raises:
        HpsearchError: No such study, no stretch to fill, or the study file is missing.
    """
    # Opened once, with the heartbeat of the follow-up's runs (a killed run's trial is retried).
    check_fill_method(method)  # before anything is opened or read
    store = open_storage(storage, must_exist=True, heartbeat=HEARTBEAT_SECONDS)
    original = load_stored_study(store, study_name)  # a one-line error if there is none
    config = original_config(original, study_file)
    points = points_of_study(original)
    trial_params = {t.number: t.params for t in original.get_trials(deepcopy=False)}
    plan = plan_follow_up(config, points, trial_params, method, n_trials, name, overrides)
    threads = on_start(plan.config) if on_start is not None else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    study = create_or_load_study(plan.config, store)
    knob = plan.knob
    tried = [t.params[knob] for t in study.get_trials(deepcopy=False) if knob in t.params]
    if not study.trials:
        for params in plan.first:
            study.enqueue_trial(params)
        tried = [q[knob] for q in plan.first]
    while True:
        options = RunOptions(n_trials=len(tried), threads=threads, progress=progress)
        run_study(plan.config, store, options, publish)
        if len(tried) >= n_trials:
            break
        fill_points = points_of_study(study)
        xy = np.concatenate([points.xy, fill_points.xy])
        counted = np.concatenate([points.counted, fill_points.counted])
        targets = next_targets(plan, xy, counted, tried, max(1, (n_trials - len(tried) + 1) // 2))
        if not targets:
            break  # no hole left inside the stretches
        for params in targets:
            study.enqueue_trial(params)
    comparison = compare_points(
        [
            (points, wall_seconds(original)),
            (points_of_study(study), wall_seconds(study)),
        ],
        reference_raw,
    )
    return FillResult(plan=plan, comparison=comparison)
