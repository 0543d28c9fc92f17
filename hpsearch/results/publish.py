"""What a study shows in optuna-dashboard: a Markdown note, plotly figures and PNG artifacts.

:func:`publish_study` is called when a run starts (the note: what the study is) and when it
ends (the note with hypervolume, Pareto size and the scalarization verdict; the figures:
objective space coloured by α / w / ε with the convex hull, hypervolume history, loss curves
of the Pareto trials; the matplotlib figure of ``hpsearch show --plot`` as an artifact).
Figures are saved under fixed ids, so publishing again replaces them. Artifacts live in a
folder next to the storage (:func:`artifact_dir`), which ``hpsearch dashboard`` serves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.trial import TrialState

from hpsearch.errors import HpsearchError
from hpsearch.results.analysis import (
    Normalization,
    hypervolume_2d,
    pareto_mask,
    verdict,
)
from hpsearch.results.plots import plot_study
from hpsearch.results.report import StudyPoints, points_of_study
from hpsearch.study import keys
from hpsearch.study.config import CORE_PARAMS

if TYPE_CHECKING:
    import plotly.graph_objects as go

# plotly and optuna_dashboard are imported where used: optuna_dashboard alone pulls in
# scikit-learn's ensemble module (~1.2 s), and every `hpsearch worker` process imports this one.

# Per inner method, the parameter that moves a run along the trade-off: the colour of a point.
_TRADE_OFF_PARAMS = ("alpha", "w", "epsilon", "flood")


def artifact_dir(storage: str) -> Path:
    """The folder of a storage's artifacts: ``<file>-artifacts`` next to an SQLite or journal
    file, ``./hpsearch-artifacts`` for a database server."""
    for prefix in ("sqlite:///", "journal:///"):
        if storage.startswith(prefix):
            file = Path(storage[len(prefix) :])
            return file.with_name(f"{file.name}-artifacts")
    return Path("hpsearch-artifacts")


def study_note(study: optuna.Study, points: StudyPoints | None) -> str:
    """The study's note in Markdown: its definition, and its results when there are any."""
    attrs = study.user_attrs.get(keys.STUDY, {})
    identity = attrs.get("identity", {})
    params = identity.get("params", {})
    method = params.get("method", {}).get("value", "linear")
    loss1, loss2 = attrs.get("loss_names", ("loss1", "loss2"))
    objective = f", objective `{identity['objective']}`" if identity.get("objective") else ""
    budget = identity.get("budget", {})
    # Plain Markdown (headings, lists, code): optuna-dashboard's renderer has no tables.
    lines = [
        f"# {study.study_name}",
        "",
        attrs.get("description") or "",
        "",
        "## Definition",
        "",
        f"- **setup**: `{identity.get('setup')}`, L1 = {loss1}, L2 = {loss2}",
        f"- **dataset**: `{identity.get('dataset')}`",
        f"- **model**: {_model_text(identity.get('model'), params)}",
        f"- **inner method**: `{method}`",
        f"- **mode**: `{identity.get('mode')}`{objective}",
        f"- **budget**: {budget.get('epochs')} epochs, batch {budget.get('batch_size')}",
        f"- **study file**: `{attrs.get('study_file')}`",
        "",
        "## Search space",
        "",
    ]
    lines += [f"- `{name}`: {_param_text(spec)}" for name, spec in sorted(params.items())]
    lines += ["", "## Results", ""]
    if points is None:
        lines.append("No complete trial yet.")
    else:
        analysis = points.analyze()
        n_front = len(analysis.front)
        lines += [
            f"- complete trials: {len(points.numbers)}",
            f"- Pareto front in (validation {loss1}, validation {loss2}): "
            f"{n_front} trial{'s' if n_front != 1 else ''}, "
            f"hypervolume {analysis.hypervolume:.4f} "
            "(normalized to this front, reference (1.1, 1.1))",
            f"- diagnosis (scalarization gap): {verdict(points.xy, analysis, (loss1, loss2))}",
        ]
    return "\n".join(lines) + "\n"


def _model_text(kind: str | None, params: dict[str, Any]) -> str:
    if kind == "linear":
        return "linear"
    shape = []
    for name in ("depth", "width", "activation"):
        spec = params.get(name)
        if spec is None:
            shape.append(f"{name} {CORE_PARAMS[name].default}")
        elif spec.get("type") in ("float", "int", "categorical"):
            shape.append(f"{name} searched")
        else:
            shape.append(f"{name} {spec.get('value')}")
    return "MLP, " + ", ".join(shape)


def _param_text(spec: dict[str, Any]) -> str:
    if spec.get("type") == "categorical":
        return "one of " + ", ".join(f"`{c}`" for c in spec.get("choices", []))
    if spec.get("type") in ("float", "int"):
        scale = ", log" if spec.get("log") else ""
        return f"{spec.get('type')} in [{spec.get('low')}, {spec.get('high')}]{scale}"
    return f"fixed `{spec.get('value')}`"


def objective_space_figure(points: StudyPoints) -> go.Figure:
    """Every complete trial in (validation L1, validation L2), coloured by the trade-off
    parameter, with the Pareto front and the lower convex hull (what linear α can reach)."""
    analysis = points.analyze()
    name1, name2 = points.loss_names
    colour_by = next((p for p in _TRADE_OFF_PARAMS if p in points.params), None)
    marker: dict[str, Any] = {"size": 9}
    if colour_by is not None:
        values = points.params[colour_by]
        log = bool(np.all(values > 0) and values.max() / max(values.min(), 1e-300) > 20)
        marker.update(
            color=np.log10(values) if log else values,
            colorscale="Viridis",
            colorbar={"title": f"log10 {colour_by}" if log else colour_by},
        )
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=points.loss1,
            y=points.loss2,
            mode="markers",
            marker=marker,
            name="trials",
            text=[f"trial {n}" for n in points.numbers],
        )
    )
    front = analysis.front
    fig.add_trace(
        go.Scatter(
            x=points.loss1[front],
            y=points.loss2[front],
            mode="lines+markers",
            line={"color": "crimson"},
            marker={"symbol": "circle-open", "size": 13, "color": "crimson"},
            name="Pareto front",
        )
    )
    hull = analysis.hull
    fig.add_trace(
        go.Scatter(
            x=points.loss1[hull],
            y=points.loss2[hull],
            mode="lines",
            line={"color": "grey", "dash": "dash"},
            name="convex hull (reachable by linear α)",
        )
    )
    fig.update_layout(
        legend={"orientation": "h", "y": -0.2},
        title=f"{points.study_name}: objective space",
        xaxis_title=f"validation {name1}",
        yaxis_title=f"validation {name2}",
    )
    return fig


def hypervolume_history_figure(points: StudyPoints) -> go.Figure:
    """Hypervolume of the front of the first k complete trials, for every k."""
    order = np.argsort(points.numbers)
    xy, feasible = points.xy[order], points.counted[order]
    final = xy[feasible]
    norm = Normalization.from_fronts([final[pareto_mask(final)]]) if len(final) else None
    history = []
    for k in range(1, len(xy) + 1):
        kept = xy[:k][feasible[:k]]
        if norm is None or len(kept) == 0:
            history.append(0.0)
            continue
        front = norm.apply(kept[pareto_mask(kept)])
        history.append(hypervolume_2d(front))
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(x=points.numbers[order], y=history, mode="lines+markers", name="hypervolume")
    )
    fig.update_layout(
        title=f"{points.study_name}: hypervolume of the front so far",
        xaxis_title="trial number",
        yaxis_title="hypervolume (normalized to the final front, reference (1.1, 1.1))",
    )
    return fig


def loss_curves_figure(study: optuna.Study, points: StudyPoints) -> go.Figure:
    """Per-epoch validation L1 and L2 of the Pareto trials."""
    name1, name2 = points.loss_names
    titles = (f"validation {name1}", f"validation {name2}")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    front = set(points.numbers[points.pareto].tolist())
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        history = trial.user_attrs.get(keys.HISTORY)
        if trial.number not in front or not history:
            continue
        epochs = list(range(1, len(history["val_loss1"]) + 1))
        for col, key in ((1, "val_loss1"), (2, "val_loss2")):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=history[key],
                    mode="lines",
                    name=f"trial {trial.number}",
                    legendgroup=str(trial.number),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=f"{points.study_name}: loss curves of the Pareto trials")
    return fig


def publish_study(study: optuna.Study, artifacts: str | Path | None = None) -> None:
    """Write the study's note, plotly figures and PNG artifact for optuna-dashboard.

    Before any complete trial only the note (the study's definition) is written.

    Args:
        study: The study, as loaded from its storage.
        artifacts: The folder of the storage's artifacts (:func:`artifact_dir` of its URL) to
            upload the PNG to, or None for no PNG (artifacts cannot be replaced, so a run
            uploads it once, at its end, and refreshes only the note and figures while it
            goes on).
    """
    try:
        points = points_of_study(study)  # the study as loaded: one open per refresh
    except HpsearchError:  # no complete trial yet
        points = None
    import optuna_dashboard

    optuna_dashboard.save_note(study, study_note(study, points))
    if points is None:
        return
    figures = {
        "objective-space": objective_space_figure(points),
        "hypervolume-history": hypervolume_history_figure(points),
        "pareto-loss-curves": loss_curves_figure(study, points),
    }
    for graph_id, figure in figures.items():
        optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    if artifacts is None:
        return
    folder = Path(artifacts)
    folder.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(folder))
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_study(points, Path(tmp) / f"{study.study_name}-front.png")
        upload_artifact(artifact_store=store, file_path=str(png), study_or_trial=study)
