"""Tables of studies and trials as plain data (the CLI prints them)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpsearch._errors import HpsearchError
from hpsearch._study import _ATTR, open_storage


@dataclass(frozen=True)
class StudyRow:
    """One study in a storage.

    Attributes:
        name: Study name.
        mode: ``"pareto"`` or ``"scalarized"`` (``"?"`` for a study not made by hpsearch).
        complete, pruned, failed, running: Trial counts by state.
        best: Best value (scalarized) or None.
        pareto_size: Number of Pareto-optimal trials (pareto), or None.
    """

    name: str
    mode: str
    dataset: str
    setup: str
    complete: int
    pruned: int
    failed: int
    running: int
    best: float | None
    pareto_size: int | None


def list_studies(storage: str) -> list[StudyRow]:
    """Every study in ``storage`` with its trial counts and best value or Pareto size.

    Raises:
        HpsearchError: The storage cannot be opened (an SQLite file must exist).
    """
    store = open_storage(storage, must_exist=True)
    rows = []
    for name in sorted(optuna.get_all_study_names(store)):
        study = optuna.load_study(study_name=name, storage=store)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        identity = study.user_attrs.get(_ATTR, {}).get("identity", {})
        multi = len(study.directions) > 1
        has_complete = states[TrialState.COMPLETE] > 0
        rows.append(
            StudyRow(
                name=name,
                mode=identity.get("mode", "?"),
                dataset=identity.get("dataset", "?"),
                setup=identity.get("setup", "?"),
                complete=states[TrialState.COMPLETE],
                pruned=states[TrialState.PRUNED],
                failed=states[TrialState.FAIL],
                running=states[TrialState.RUNNING],
                best=study.best_value if has_complete and not multi else None,
                pareto_size=len(study.best_trials) if multi and has_complete else None,
            )
        )
    return rows


def study_rows(storage: str, study_name: str, top: int = 10) -> tuple[list[str], list[list[Any]]]:
    """The best trials (scalarized) or the Pareto front (pareto) of a study, as a table.

    Args:
        storage: Storage URL.
        study_name: The study.
        top: Rows to show for a scalarized study (the Pareto front is shown whole).

    Returns:
        ``(columns, rows)``: trial number, objective value(s), validation losses and metric
        under their setup names, then the searched parameters.

    Raises:
        HpsearchError: No such study (the message lists the stored ones).
    """
    store = open_storage(storage, must_exist=True)
    names = optuna.get_all_study_names(store)
    if study_name not in names:
        raise HpsearchError(
            f"no study {study_name!r} in {storage}; stored: {', '.join(sorted(names)) or 'none'}"
        )
    study = optuna.load_study(study_name=study_name, storage=store)
    attrs = study.user_attrs.get(_ATTR, {})
    loss_names = attrs.get("loss_names", ["loss1", "loss2"])
    metric = attrs.get("metric_name", "metric")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(study.directions) > 1:
        chosen = sorted(study.best_trials, key=lambda t: tuple(t.values))
        value_cols: list[str] = []
    else:
        sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
        chosen = sorted(complete, key=lambda t: sign * t.value)[:top]
        value_cols = [(study.metric_names or ["value"])[0]]
    param_names = sorted({k for t in chosen for k in t.params})
    columns = [
        "trial",
        *value_cols,
        f"val_{loss_names[0]}",
        f"val_{loss_names[1]}",
        f"val_{metric}",
        *param_names,
    ]

    def row(t: FrozenTrial) -> list[Any]:
        values = [t.value] if value_cols else []
        attrs_t = t.user_attrs
        return [
            t.number,
            *values,
            attrs_t.get("val_loss1"),
            attrs_t.get("val_loss2"),
            attrs_t.get("val_metric"),
            *(t.params.get(p) for p in param_names),
        ]

    return columns, [row(t) for t in chosen]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """Align a table in plain text, numbers to 4 significant digits."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
