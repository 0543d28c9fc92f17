"""Which searched hyperparameter matters most: Optuna's fANOVA or PED-ANOVA, per target.

A target is one number per complete trial: each objective of the study (both validation losses
of a pareto study, the one value of a scalarized one) and the validation metric. Importances
are computed once here (:func:`study_importances`), then printed (:func:`format_importances`),
drawn for the dashboard (``hpsearch.results.publish``) or by matplotlib
(:func:`plot_importances`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch.errors import HpsearchError
from hpsearch.study import keys

# The evaluators ``hpsearch importance --evaluator`` offers, each built with a fixed seed where
# it takes one, so a rerun prints the same numbers.
EVALUATORS: dict[str, Callable[[], optuna.importance.BaseImportanceEvaluator]] = {
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
    "ped_anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
}
# Fewer complete trials than this leave fANOVA's forest nothing to split on.
MIN_TRIALS = 4


@dataclass(frozen=True)
class Importances:
    """Normalized importances (summing to 1 per target) of a study's searched parameters.

    Attributes:
        study_name: The study.
        evaluator: A key of :data:`EVALUATORS`.
        n_trials: Complete trials used.
        targets: ``{target name: {parameter: importance}}``, parameters by decreasing
            importance; the target names are the study's objective names and
            ``val_<metric>``. A target that does not vary over the trials is left out.
    """

    study_name: str
    evaluator: str
    n_trials: int
    targets: dict[str, dict[str, float]]

    def params(self) -> list[str]:
        """Every parameter, most important first (by the largest importance over targets)."""
        best: dict[str, float] = {}
        for values in self.targets.values():
            for name, v in values.items():
                best[name] = max(best.get(name, 0.0), v)
        return sorted(best, key=lambda n: -best[n])

    def to_dict(self) -> dict:
        return {
            "study": self.study_name,
            "evaluator": self.evaluator,
            "trials": self.n_trials,
            "targets": self.targets,
        }


def _targets(study: optuna.Study) -> dict[str, Callable[[FrozenTrial], float]]:
    """Each target as a function of a trial, oriented so that lower is better (PED-ANOVA
    ranks the parameters by what reaches low values)."""
    attrs = study.user_attrs.get(keys.STUDY, {})
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    out: dict[str, Callable[[FrozenTrial], float]] = {}

    def objective(i: int, sign: float) -> Callable[[FrozenTrial], float]:
        return lambda t: sign * t.values[i]

    for i, (name, direction) in enumerate(zip(names, study.directions, strict=True)):
        maximize = direction == optuna.study.StudyDirection.MAXIMIZE
        out[name] = objective(i, -1.0 if maximize else 1.0)
    metric = f"val_{attrs.get('metric_name', 'metric')}"  # accuracy, R²: higher is better
    if metric not in out:
        out[metric] = lambda t: -t.user_attrs.get(keys.VAL_METRIC, float("nan"))
    return out


def study_importances(study: optuna.Study, evaluator: str = "fanova") -> Importances:
    """The importances of ``study``'s searched parameters for each of its targets.

    Raises:
        HpsearchError: An unknown evaluator, fewer than :data:`MIN_TRIALS` complete trials,
            or fewer than two searched parameters (one is trivially all the importance).
    """
    if evaluator not in EVALUATORS:
        raise HpsearchError(
            f"unknown importance evaluator {evaluator!r}; allowed: {', '.join(EVALUATORS)}"
        )
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(trials) < MIN_TRIALS:
        raise HpsearchError(
            f"study {study.study_name!r} has {len(trials)} complete trial(s); importances need "
            f"at least {MIN_TRIALS}"
        )
    searched = sorted({k for t in trials for k, d in t.distributions.items() if not d.single()})
    if len(searched) < 2:
        raise HpsearchError(
            f"study {study.study_name!r} searches {len(searched)} parameter(s) "
            f"({', '.join(searched) or 'none'}); importances compare two or more"
        )
    targets: dict[str, dict[str, float]] = {}
    for name, target in _targets(study).items():
        values = np.array([target(t) for t in trials], float)
        if not np.isfinite(values).all() or np.ptp(values) == 0:
            continue  # a target that does not vary (or is missing) ranks nothing
        with warnings.catch_warnings():
            # PED-ANOVA warns that it favours low targets whenever one is given: ours are.
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
            importances = optuna.importance.get_param_importances(
                study, evaluator=EVALUATORS[evaluator](), params=searched, target=target
            )
        targets[name] = {k: float(v) for k, v in importances.items()}
    return Importances(study.study_name, evaluator, len(trials), targets)


def format_importances(result: Importances) -> str:
    """A table: one row per parameter, one column per target."""
    names = list(result.targets)
    rows = [["parameter", *names]]
    for p in result.params():
        rows.append([p, *(f"{result.targets[n].get(p, 0.0):.3f}" for n in names)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    header = (
        f"importances of {result.study_name!r} ({result.evaluator}, {result.n_trials} complete "
        "trials; each column sums to 1)"
    )
    return header + "\n" + "\n".join(lines)


def plot_importances(result: Importances, path: str | Path) -> Path:
    """A grouped bar chart (one bar per target and parameter) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = result.params()
    names = list(result.targets)
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(params) * max(1, len(names)) ** 0.5))
    height = 0.8 / max(1, len(names))
    y = np.arange(len(params))
    for i, name in enumerate(names):
        ax.barh(
            y + (i - (len(names) - 1) / 2) * height,
            [result.targets[name].get(p, 0.0) for p in params],
            height,
            label=name,
        )
    ax.set_yticks(y, params)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"importance ({result.evaluator}; per target, the parameters sum to 1)")
    ax.set_title(f"{result.study_name}: {result.n_trials} trials")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
