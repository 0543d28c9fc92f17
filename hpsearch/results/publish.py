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
    FrontAnalysis,
    Normalization,
    hypervolume_2d,
    pareto_mask,
    verdict,
)
from hpsearch.results.figure_rules import (
    LOG_SPREAD,
    AxisRange,
    ObjectiveLimits,
    objective_limits,
    representative_front,
    trade_off_colour,
)
from hpsearch.results.plots import plot_study
from hpsearch.results.points import StudyPoints, points_of_study
from hpsearch.study import keys
from hpsearch.study.config import CORE_PARAMS
from hpsearch.study.storage import complete_trials

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from hpsearch.results.importance import Importances

# plotly and optuna_dashboard are imported where used: optuna_dashboard alone pulls in
# scikit-learn's ensemble module (~1.2 s), and every `hpsearch worker` process imports this one.

# Per inner method, the parameter that moves a run along the trade-off: the colour of a point.


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
        f"- **study file**: `{_shown_path(attrs.get('study_file'))}`",
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


def _shown_path(path: str | None) -> str | None:
    """A study file as the note shows it: as given when relative, relative to the working
    directory when under it, else its name alone (no temporary or home folders in a note)."""
    if not path or not Path(path).is_absolute():
        return path
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name


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
    parameter, with the Pareto front and the lower convex hull (what linear α can reach).

    The axes are those of ``hpsearch show --plot`` (:func:`objective_limits`): the front and
    the trials near it; the others are drawn at the edge as triangles pointing outwards.
    """
    analysis = points.analyze()
    name1, name2 = points.loss_names
    front = analysis.front
    keep = np.zeros(len(points.numbers), bool)
    keep[front] = True
    lim = objective_limits(points.xy, keep)
    pinned, directions = lim.pinned(), np.array(lim.directions())
    inside = ~lim.beyond
    colours, colour, bar = _trade_off_colours(points)
    hover = [
        f"trial {n}<br>{name1} {x:.4g}<br>{name2} {y:.4g}"
        for n, x, y in zip(points.numbers, points.loss1, points.loss2, strict=True)
    ]
    import plotly.graph_objects as go

    def trials(sel: np.ndarray, **marker: Any) -> dict[str, Any]:
        if colours is not None:
            marker |= colour | {"color": colours[sel]}
        # Where they are drawn: those beyond the limits at the edge (the hover tells where).
        return {
            "x": pinned[sel, 0],
            "y": pinned[sel, 1],
            "mode": "markers",
            "marker": marker,
            "text": [hover[i] for i in np.flatnonzero(sel)],
            "hoverinfo": "text",
        }

    fig = go.Figure()
    fig.add_trace(go.Scatter(name="trials", **trials(inside, size=9, **bar)))
    if lim.n_beyond:
        symbols = [f"triangle-{d}" for d in directions[lim.beyond]]
        line = {"color": "black", "width": 1}
        fig.add_trace(
            go.Scatter(
                name=f"beyond the axis limits ({lim.n_beyond}), at the edge",
                cliponaxis=False,
                **trials(lim.beyond, size=13, symbol=symbols, line=line),
            )
        )
    _add_front_and_hull(fig, points, analysis, lim)
    note = lim.note((name1, name2))
    fig.update_layout(
        title={"text": "objective space" + (f"<br><sup>{note}</sup>" if note else "")},
        margin={"t": 90},
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
        xaxis=_plotly_axis(lim.x, f"validation {name1} (L1)"),
        yaxis=_plotly_axis(lim.y, f"validation {name2} (L2)"),
    )
    return fig


def _trade_off_colours(
    points: StudyPoints,
) -> tuple[np.ndarray | None, dict[str, Any], dict[str, Any]]:
    """The trials' colours by their trade-off knob (:func:`trade_off_colour`, log10 on a log
    scale), the colour scale, and the colour bar; (None, {}, {}) when no knob is searched."""
    rule = trade_off_colour(points)
    if rule.name == "trial":
        return None, {}, {}
    colours = np.log10(rule.values) if rule.log else rule.values
    colour = {"colorscale": "Viridis", "cmin": colours.min(), "cmax": colours.max()}
    title = f"log10 {rule.name}" if rule.log else rule.name
    return colours, colour, {"showscale": True, "colorbar": {"title": {"text": title}}}


def _add_front_and_hull(
    fig: go.Figure, points: StudyPoints, analysis: FrontAnalysis, lim: ObjectiveLimits
) -> None:
    """The Pareto front (red, open circles) and the lower convex hull (dashed grey)."""
    import plotly.graph_objects as go

    front = analysis.front
    fig.add_trace(
        go.Scatter(
            x=points.loss1[front],
            y=points.loss2[front],
            mode="lines+markers",
            line={"color": "crimson"},
            marker={"symbol": "circle-open", "size": 13, "color": "crimson"},
            name=f"Pareto front ({len(front)} trials)",
            hoverinfo="skip",
        )
    )
    hx, hy = _hull_line(points.xy[analysis.hull], lim.x.log or lim.y.log)
    fig.add_trace(
        go.Scatter(
            x=hx,
            y=hy,
            mode="lines",
            line={"color": "grey", "dash": "dash", "width": 1},
            opacity=0.7,
            name="convex hull (reachable by linear α)",
            hoverinfo="skip",
        )
    )


def _plotly_axis(rng: AxisRange, title: str) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "type": "log" if rng.log else "linear",
        "range": rng.plotly_range,
    }


def _hull_line(hull: np.ndarray, dense: bool) -> tuple[np.ndarray, np.ndarray]:
    """The hull's vertices joined by straight segments; on a log axis a straight segment is a
    curve, so each is drawn through points along it."""
    if not dense or len(hull) < 2:
        return hull[:, 0], hull[:, 1]
    t = np.linspace(0.0, 1.0, 40)[:, None]
    line = np.concatenate([a + t * (b - a) for a, b in zip(hull[:-1], hull[1:], strict=True)])
    return line[:, 0], line[:, 1]


def _integer_dtick(n: int) -> int:
    """A tick step of 1, 2 or 5 × 10^k that puts at most ~10 ticks on 0..n."""
    k = 0
    while True:
        for m in (1, 2, 5):
            if n / (m * 10**k) <= 10:
                return m * 10**k
        k += 1


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

    numbers = points.numbers[order]
    fig = go.Figure(go.Scatter(x=numbers, y=history, mode="lines+markers", name="hypervolume"))
    fig.update_layout(
        # The details go under the title, not into a y-axis title longer than the axis.
        title={
            "text": "hypervolume of the front so far<br><sup>normalized "
            "to the final front, reference point (1.1, 1.1)</sup>",
            "y": 0.95,
            "yanchor": "top",
        },
        margin={"t": 90, "l": 80},
        xaxis={
            "title": {"text": "trial number"},
            "tick0": 0,
            "dtick": _integer_dtick(int(numbers.max()) if len(numbers) else 1),
            "tickformat": "d",
        },
        yaxis={"title": {"text": "hypervolume"}, "rangemode": "tozero"},
    )
    return fig


def loss_curves_figure(study: optuna.Study, points: StudyPoints) -> go.Figure:
    """Per-epoch validation L1 and L2 of at most :data:`MAX_CURVES` Pareto trials: both ends of
    the front, its knee and a few evenly spaced along it (:func:`representative_front`); the
    title says how many were left out."""
    name1, name2 = points.loss_names
    titles = (f"validation {name1} (L1)", f"validation {name2} (L2)")
    analysis = points.analyze()
    chosen = representative_front(points.xy, analysis.front, analysis.knee)
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.12)
    shown = _add_loss_curves(fig, study, points, chosen)
    n_front = len(analysis.front)
    fig.update_xaxes(title_text="epoch")
    fig.update_annotations(font_size=13)  # the panel titles
    fig.update_layout(
        title={
            "text": f"loss curves of {shown} of the {n_front} Pareto trials<br><sup>the knee, "
            f"both ends and trials evenly spaced along the front, by increasing {name1}; "
            f"{n_front - shown} left out</sup>",
            "y": 0.96,
            "yanchor": "top",
        },
        margin={"t": 90, "r": 10},
        legend={"title": {"text": "trial"}, "font": {"size": 11}},
    )
    return fig


def _add_loss_curves(
    fig: go.Figure, study: optuna.Study, points: StudyPoints, chosen: list[tuple[int, str]]
) -> int:
    """Draw the chosen trials' validation L1 (left) and L2 (right) per epoch, a panel on a log
    scale where its values spread past :data:`LOG_SPREAD`; returns how many had a history."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    by_number = {
        t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    palette = qualitative.D3
    shown = 0
    spans: dict[int, list[float]] = {1: [], 2: []}  # every value drawn, per panel
    for rank, (i, role) in enumerate(chosen):
        number = int(points.numbers[i])
        trial = by_number.get(number)
        history = trial.user_attrs.get(keys.HISTORY) if trial is not None else None
        if not history:
            continue
        shown += 1
        epochs = list(range(1, len(history["val_loss1"]) + 1))
        line = {"color": palette[rank % len(palette)], "width": 3 if role == "knee" else 1.6}
        label = f"{number}" + (f" ({role})" if role else "")
        for col, key in ((1, "val_loss1"), (2, "val_loss2")):
            spans[col] += list(history[key])
            curve = go.Scatter(
                x=epochs, y=history[key], mode="lines", line=line, name=label,
                legendgroup=str(number), showlegend=col == 1,
            )  # fmt: skip
            fig.add_trace(curve, row=1, col=col)
    for col, values in spans.items():
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        if len(v) and v.min() > 0 and v.max() / v.min() > LOG_SPREAD:
            fig.update_yaxes(type="log", row=1, col=col)
    return shown


# The dashboard figure ``hpsearch importance`` saves: one id, so a rerun replaces it.
IMPORTANCE_GRAPH_ID = "param-importances"


def importance_figure(result: Importances) -> go.Figure:
    """The importances as grouped horizontal bars, one colour per target."""
    import plotly.graph_objects as go

    params = result.params()
    fig = go.Figure(
        [
            go.Bar(
                y=params,
                x=[result.targets[name].get(p, 0.0) for p in params],
                name=name,
                orientation="h",
            )
            for name in result.targets
        ]
    )
    fig.update_layout(
        barmode="group",
        title={
            "text": f"hyperparameter importances ({result.evaluator})<br><sup>"
            f"{result.n_trials} complete trials; per target the parameters sum to 1</sup>",
            "y": 0.95,
            "yanchor": "top",
        },
        margin={"t": 90, "l": 120},
        xaxis={"title": {"text": "importance"}, "range": [0, 1]},
        yaxis={"autorange": "reversed"},
    )
    return fig


def publish_importances(study: optuna.Study, result: Importances) -> None:
    """Save :func:`importance_figure` to the study, for optuna-dashboard."""
    import optuna_dashboard

    optuna_dashboard.save_plotly_graph_object(
        study, importance_figure(result), graph_object_id=IMPORTANCE_GRAPH_ID
    )


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
        if artifacts is not None:  # nothing to draw: published as it is
            study.set_user_attr(keys.PUBLISHED_TRIALS, complete_trials(study))
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
    study.set_user_attr(keys.PUBLISHED_TRIALS, complete_trials(study))
