"""Matplotlib figures of a study: the objective space and how the search went.

The first part is the data layer the figures share with the dashboard's plotly figures
(:mod:`hpsearch.results.publish`): which part of the objective space the axes show
(:func:`objective_limits`, computed once, drawn by both) and which front trials a loss-curve
figure shows (:func:`representative_front`). Plain NumPy: importing them draws nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch.results.figure_rules import (
    ObjectiveLimits,
    objective_limits,
    robust_range,
    trade_off_colour,
)
from hpsearch.results.points import StudyPoints

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hpsearch.results.compare import Comparison

# Figures are built on matplotlib.figure.Figure directly (Agg when saved), never through pyplot:
# importing hpsearch must not change the backend or the figures of a user's session.

# Marker of a point beyond the limits, pointing outwards.
_MPL_TRIANGLES = {"up": "^", "down": "v", "right": ">", "left": "<"}


def _apply_limits(ax, lim: ObjectiveLimits) -> None:
    for rng, set_scale, set_lim in (
        (lim.x, ax.set_xscale, ax.set_xlim),
        (lim.y, ax.set_yscale, ax.set_ylim),
    ):
        if rng.log:
            set_scale("log")
        set_lim(*rng.limits)


def _draw_beyond(ax, lim: ObjectiveLimits, label: str | None = None, **style) -> None:
    """The points beyond the limits, at the edge, as triangles pointing outwards. ``style``
    entries that are arrays (``c``) are per point."""
    pinned, directions = lim.pinned(), np.array(lim.directions())
    first = True
    for direction, marker in _MPL_TRIANGLES.items():
        sel = directions == direction
        if not sel.any():
            continue
        kw = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in style.items()}
        ax.scatter(
            pinned[sel, 0],
            pinned[sel, 1],
            marker=marker,
            clip_on=False,
            label=label if first else None,
            **kw,
        )
        first = False


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def plot_study(points: StudyPoints, path: str | Path) -> Path:
    """Draw :func:`study_figure` to a PNG.

    Args:
        points: The study's trials (:func:`hpsearch.study_points`).
        path: Where to write the PNG.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    study_figure(points).savefig(path, dpi=110)
    return path


def study_figure(points: StudyPoints) -> Figure:
    """A study's trials in the objective space, and the course of the search.

    Left: every complete trial at (validation L1, validation L2), coloured by α when α is
    searched, the Pareto front of these points joined by a line; the axes show the front and
    the trials near it (:func:`objective_limits`), the others are drawn at the edge as
    triangles. Right: a pareto study's validation metric against α (or trial number); a
    scalarized study's objective per trial with the best so far. The legend is below both.
    """
    from matplotlib.figure import Figure  # imported here: ~0.5 s of start-up

    fig = Figure(figsize=(12, 5.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    _draw_trials(fig, ax, points)
    handles, labels = ax.get_legend_handles_labels()
    if points.values is not None:  # scalarized: the objective per trial and the best so far
        _draw_course(ax2, points)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    else:
        _draw_by_alpha(ax2, points)
    ax2.grid(alpha=0.3)
    # Outside the data: below both panels.
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(4, len(handles)),
        fontsize=9,
        frameon=False,
    )
    return fig


def _draw_trials(fig: Figure, ax: Axes, points: StudyPoints) -> None:
    """Every complete trial in (L1, L2), coloured by its trade-off knob
    (:func:`trade_off_colour`), and the Pareto front joined by a line."""
    from matplotlib.colors import LogNorm, Normalize

    rule = trade_off_colour(points)
    color, label = rule.values, rule.label
    norm: Normalize
    if rule.log:
        norm = LogNorm(color.min(), color.max())
    elif rule.name == "trial":
        norm = Normalize(0, max(1, color.max()))
    else:
        norm = Normalize(color.min(), color.max())
    front = points.pareto
    lim = objective_limits(points.xy, front)
    inside = ~lim.beyond
    style: dict[str, Any] = {"cmap": "viridis", "norm": norm, "alpha": 0.85}
    sc = ax.scatter(
        points.loss1[inside],
        points.loss2[inside],
        c=color[inside],
        s=28,
        zorder=2,
        label="trial",
        **style,
    )
    _draw_beyond(
        ax,
        lim,
        lim.note(points.loss_names),
        c=color,
        s=70,
        edgecolors="black",
        linewidths=0.8,
        zorder=4,
        **style,
    )
    bar = fig.colorbar(sc, ax=ax, label=label)
    if label == "trial":
        _integer_ticks(bar.ax.yaxis)
    order = np.argsort(points.loss1[front])
    ax.plot(
        points.loss1[front][order],
        points.loss2[front][order],
        "-o",
        color="crimson",
        mfc="none",
        ms=9,
        lw=1.2,
        zorder=3,
        label=f"Pareto front ({int(front.sum())} trials)",
    )
    _apply_limits(ax, lim)
    ax.set_xlabel(axis_label(points, 0))
    ax.set_ylabel(axis_label(points, 1))
    ax.set_title(f"{points.study_name}: {len(points.numbers)} complete trials", fontsize=10)
    ax.grid(alpha=0.3)


def _draw_course(ax2: Axes, points: StudyPoints) -> None:
    """A single-objective study: the objective per trial and the best so far."""
    assert points.values is not None
    # In trial order: "the best so far" accumulates along it.
    order = np.argsort(points.numbers)
    numbers, v = points.numbers[order], points.values[order]
    best = np.minimum.accumulate(v) if points.minimize else np.maximum.accumulate(v)
    rng = robust_range(v, v == best)  # the best so far is always shown
    side = rng.side(v)
    within = side == 0
    ax2.scatter(
        numbers[within],
        v[within],
        s=18,
        color="tab:blue",
        label="objective of each trial (right)",
    )
    for s, marker in ((1, "^"), (-1, "v")):
        sel = side == s
        if sel.any():
            ax2.scatter(
                numbers[sel],
                np.full(sel.sum(), rng.edge(s)),
                marker=marker,
                s=60,
                color="tab:blue",
                edgecolors="black",
                clip_on=False,
                zorder=4,
                label=f"objective beyond the axis limits ({int(sel.sum())})",
            )
    ax2.step(
        numbers,
        best,
        where="post",
        color="crimson",
        label="best so far (right)",
    )
    ax2.set_xlabel("trial")
    _integer_ticks(ax2.xaxis)
    ax2.set_ylabel(points.objective_name)
    if rng.log:
        ax2.set_yscale("log")
    ax2.set_ylim(*rng.limits)
    ax2.set_title(
        "scalarized search: " + ("minimize" if points.minimize else "maximize"), fontsize=10
    )


def _draw_by_alpha(ax2: Axes, points: StudyPoints) -> None:
    """A two-objective study: each trial's metric (without one, its L1) against α (else the
    trial number), the Pareto trials in red."""
    alpha = points.params.get("alpha")
    front = points.pareto
    xs = alpha if alpha is not None else points.numbers
    # Without a metric (a study hpsearch did not make), where L1 landed: a jump shows as a step.
    with_metric = bool(np.isfinite(points.metric).any())
    ys = points.metric if with_metric else points.loss1
    ax2.scatter(xs, ys, c=np.where(front, "crimson", "tab:blue"), s=22)
    ax2.set_xlabel("α" if alpha is not None else "trial")
    if alpha is not None and np.all(alpha > 0) and alpha.max() / alpha.min() > 10:
        ax2.set_xscale("log")
    if alpha is None:
        _integer_ticks(ax2.xaxis)
    shown = f"validation {points.metric_name}" if with_metric else axis_label(points, 0)
    ax2.set_ylabel(shown)
    what = "metric" if with_metric else "L1"
    ax2.set_title(f"{what} of each trial (red: on the Pareto front)", fontsize=10)


def axis_label(points: StudyPoints, k: int) -> str:
    """The axis label of loss ``k``: hpsearch's runs record validation losses; a maximized
    objective of another study is drawn as minimized, −value."""
    name = points.loss_names[k]
    label = f"validation {name}" if points.hpsearch_made else name
    if points.signs[k] < 0:
        label = f"−{label} (maximized)"
    return f"{label} (L{k + 1})"


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Draw :func:`comparison_figure` to a PNG.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison_figure(comparison).savefig(path, dpi=110)
    return path


def comparison_figure(comparison: Comparison) -> Figure:
    """Studies in one objective space: each study's trials and front, the convex hull of the
    joint front (the minimizers of L1 + α·L2) and the joint front's points above it.

    Every study has its own colour and marker; its front is drawn above the (thin, dashed,
    semi-transparent) hull line, and a joint-front point above the hull is ringed in black in
    the marker of the study that found it. Axes: linear, the fronts always inside, far-out
    trials drawn at the edge (:func:`objective_limits`).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    ax = fig.subplots()
    markers = study_markers(len(comparison.studies))
    colors = study_colors(len(comparison.studies))
    # Linear axes on purpose: on log axes a convex hull is no longer the straight-edged set
    # that linear α can reach, and the picture would lie.
    keep = np.concatenate(
        [_front_mask(s.points.numbers, s.analysis.front) for s in comparison.studies]
    )
    pts = comparison.union_points
    lim = objective_limits(pts, keep, allow_log=False)
    _draw_study_fronts(ax, comparison, lim, markers, colors)
    study_of = np.concatenate(
        [np.full(len(s.points.numbers), i) for i, s in enumerate(comparison.studies)]
    )
    if lim.n_beyond:
        _draw_beyond(
            ax,
            lim,
            lim.note(("L1", "L2")),
            c=np.array(colors, object)[study_of],
            s=60,
            edgecolors="black",
            linewidths=0.6,
            zorder=4,
        )
    unsupported = _draw_joint_hull(ax, comparison, study_of, markers)
    handles, labels = _joint_legend(ax, comparison, study_of, unsupported)
    _apply_limits(ax, lim)
    ax.set_xlabel(axis_label(comparison.studies[0].points, 0))
    ax.set_ylabel(axis_label(comparison.studies[0].points, 1))
    ax.set_title(
        f"{len(comparison.studies)} studies in one objective space; joint scalarization gap "
        f"{comparison.union.gap_pct:.1f}% of HV"
    )
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _draw_study_fronts(
    ax: Axes, comparison: Comparison, lim: ObjectiveLimits, markers: list[str], colors: list[Any]
) -> None:
    """Each study's trials (hollow where they missed their constraint) and its front, in its
    colour and marker, labelled with its HV and gap."""
    offset = 0
    for i, s in enumerate(comparison.studies):
        c, m = colors[i], markers[i]
        n = len(s.points.numbers)
        xy = s.xy
        ok = s.points.counted
        inside = ~lim.beyond[offset : offset + n]
        sel = ok & inside
        ax.scatter(xy[sel, 0], xy[sel, 1], s=16, color=c, marker=m, alpha=0.35, zorder=2)
        sel = ~ok & inside
        if sel.any():
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=16,
                facecolors="none",
                edgecolors=c,
                marker=m,
                alpha=0.5,
                zorder=2,
            )
        f = xy[s.analysis.front]
        label = (
            f"{s.points.study_name}: HV {s.analysis.hypervolume:.3f}, gap {s.analysis.gap_pct:.0f}%"
        )
        ax.plot(
            f[:, 0], f[:, 1], "-", marker=m, color=c, ms=6, lw=1.6, zorder=3 + i * 0.1, label=label
        )
        offset += n


def _draw_joint_hull(
    ax: Axes, comparison: Comparison, study_of: np.ndarray, markers: list[str]
) -> np.ndarray:
    """The convex hull of the joint front, dashed, and the joint-front points above it ringed
    in black; returns those points' indices."""
    pts = comparison.union_points
    u = comparison.union
    hull = pts[u.hull]
    ax.plot(
        hull[:, 0],
        hull[:, 1],
        "--",
        color="black",
        lw=0.9,
        alpha=0.55,
        zorder=1,
        label="convex hull of the joint front (minimizers of L1 + α·L2)",
    )
    unsupported = u.front[~u.supported]
    for i in np.unique(study_of[unsupported]):
        sel = unsupported[study_of[unsupported] == i]
        ax.scatter(
            pts[sel, 0],
            pts[sel, 1],
            marker=markers[i],
            s=85,
            facecolors="none",
            edgecolors="black",
            linewidths=1.2,
            zorder=5,
        )
    return unsupported


def _joint_legend(
    ax: Axes, comparison: Comparison, study_of: np.ndarray, unsupported: np.ndarray
) -> tuple[list[Any], list[str]]:
    """The legend's entries: the studies, the hull, the points above it, and the knee (drawn
    here as a star)."""
    from matplotlib.lines import Line2D

    pts, u = comparison.union_points, comparison.union
    handles, labels = ax.get_legend_handles_labels()
    if len(unsupported):
        handles.append(
            Line2D([], [], ls="none", marker="o", ms=9, mfc="none", mec="black", mew=1.2)
        )
        labels.append(
            f"above the hull: not the minimizer of L1 + α·L2 for any α ({len(unsupported)});\n"
            "ringed in black, in the marker of the study that found it"
        )
    if u.knee >= 0:
        knee = ax.scatter(
            pts[u.knee, 0],
            pts[u.knee, 1],
            marker="*",
            s=260,
            color="gold",
            edgecolors="black",
            zorder=6,
        )
        handles.append(knee)
        labels.append(
            f"knee of the joint front ({comparison.studies[study_of[u.knee]].points.study_name})"
        )
    return handles, labels


def study_markers(n: int) -> list[str]:
    """One distinct matplotlib marker per study of a comparison (cycling past ten)."""
    return [_STUDY_MARKERS[i % len(_STUDY_MARKERS)] for i in range(n)]


def study_colors(n: int) -> list[str]:
    """One distinct colour per study of a comparison (tab10, cycling past ten)."""
    return [_STUDY_COLORS[i % len(_STUDY_COLORS)] for i in range(n)]


_STUDY_MARKERS = "osD^vP*X<>"
_STUDY_COLORS = [
    f"tab:{c}"
    for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")
]


def _front_mask(numbers: np.ndarray, front: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(numbers), bool)
    mask[np.asarray(front, int)] = True
    return mask
