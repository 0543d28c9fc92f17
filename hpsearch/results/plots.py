"""Matplotlib figures of a study: the objective space and how the search went.

The first part is the data layer the figures share with the dashboard's plotly figures
(:mod:`hpsearch.results.publish`): which part of the objective space the axes show
(:func:`objective_limits`, computed once, drawn by both) and which front trials a loss-curve
figure shows (:func:`representative_front`). Plain NumPy: importing them draws nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch.results.points import StudyPoints

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hpsearch.results.compare import Comparison

# Figures are built on matplotlib.figure.Figure directly (Agg when saved), never through pyplot:
# importing hpsearch must not change the backend or the figures of a user's session.

# --- What the axes show --------------------------------------------------------------------
#
# The outlier rule, per loss: the axis spans (1) every value within Tukey's fences around the
# quartiles of all trials' values, Q1 − k·IQR to Q3 + k·IQR, and (2) the whole Pareto front,
# always. Quartiles are not moved by the outliers themselves (min/max or mean ± sd are: one
# diverged run at L2 ≈ 500 stretched the axis tenfold and squashed the front flat); since the
# front is always kept, no trade-off the study found is ever hidden, only dominated runs far
# from the bulk are cut. Points beyond the limits are drawn at the axis edge as triangles
# pointing outwards and counted in the legend (and the largest value named).
#
# Scale: when every value is positive, the fences are first taken on log10 of the values, with
# k = LOG_FENCE; if the values they keep span more than LOG_SPREAD×, the axis is logarithmic
# (penalties span orders of magnitude across α: a linear axis would squash most of the front
# against zero). Otherwise the axis is linear, fenced on the values with k = FENCE (Tukey's
# "far out" 3). On a log axis the inner 1.5 is enough: the IQR of log10 values is already wide
# there (often a decade), so 1.5·IQR reaches tens of times beyond the upper quartile, and a run
# further out than that is in another regime (diverged), not a point of the trade-off.
#
# And only where it pays: when the points beyond the fences would stretch the axis less than
# STRETCH times, nothing is cut (a point drawn in place beats a triangle when it squashes
# nothing).
FENCE = 3.0
LOG_FENCE = 1.5
LOG_SPREAD = 100.0
STRETCH = 2.0
# Quartiles of fewer points say nothing: below this, nothing is cut.
MIN_POINTS_TO_CLIP = 5
# Margin beyond the kept values, as a fraction of their span; the edge markers sit in it.
PAD = 0.06
# Most loss curves a figure draws: more are unreadable (60 Pareto trials were).
MAX_CURVES = 7


@dataclass(frozen=True)
class AxisRange:
    """What one axis shows.

    Attributes:
        lo, hi: The kept values' extremes (data units); points beyond them are clipped.
        log: Whether the axis is on a log scale.
    """

    lo: float
    hi: float
    log: bool

    def _to(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def _from(self, v: float) -> float:
        return 10.0**v if self.log else v

    @property
    def _span(self) -> float:
        span = self._to(self.hi) - self._to(self.lo)
        return span if span > 0 else (0.5 if self.log else max(abs(self.hi) * 0.1, 1.0))

    @property
    def limits(self) -> tuple[float, float]:
        """The axis limits, margin included (data units)."""
        pad = PAD * self._span
        return self._from(self._to(self.lo) - pad), self._from(self._to(self.hi) + pad)

    @property
    def plotly_range(self) -> list[float]:
        """The limits as plotly wants them (log10 units on a log axis)."""
        return [self._to(v) for v in self.limits]

    def edge(self, side: int) -> float:
        """Where a point beyond the limits is drawn: in the margin on that side (±1)."""
        pad = 0.6 * PAD * self._span
        return self._from(self._to(self.hi) + pad if side > 0 else self._to(self.lo) - pad)

    def side(self, values: np.ndarray) -> np.ndarray:
        """-1 below the kept range, +1 above it, 0 within (NaN: 0, it is not drawn)."""
        v = np.asarray(values, float)
        with np.errstate(invalid="ignore"):
            return np.where(v > self.hi, 1, np.where(v < self.lo, -1, 0))


def _within_fences(values: np.ndarray, k: float) -> np.ndarray:
    """Which values lie within Q1 − k·IQR .. Q3 + k·IQR (all, for too few or no spread)."""
    if len(values) < MIN_POINTS_TO_CLIP:
        return np.ones(len(values), bool)
    q1, q3 = np.percentile(values, [25, 75])
    iqr = q3 - q1
    if iqr <= 0:  # no spread in the bulk: the fences say nothing
        return np.ones(len(values), bool)
    return np.asarray((values >= q1 - k * iqr) & (values <= q3 + k * iqr))


def robust_range(values: np.ndarray, keep: np.ndarray, allow_log: bool = True) -> AxisRange:
    """The range one axis shows (see the outlier rule above).

    Args:
        values: Every point's value on this axis.
        keep: Points the axis must show whatever their value (the Pareto front).
        allow_log: Whether a log scale may be chosen (not where straight lines must stay
            straight, as a convex hull's edges).
    """
    v = np.asarray(values, float)
    finite = np.isfinite(v)
    if not finite.any():
        return AxisRange(0.0, 1.0, False)
    vals, must = v[finite], np.asarray(keep, bool)[finite]
    if allow_log and (vals > 0).all():
        logs = np.log10(vals)
        shown = vals[_worth_clipping(logs, _within_fences(logs, LOG_FENCE) | must)]
        if shown.max() / shown.min() > LOG_SPREAD:
            return AxisRange(float(shown.min()), float(shown.max()), True)
    shown = vals[_worth_clipping(vals, _within_fences(vals, FENCE) | must)]
    return AxisRange(float(shown.min()), float(shown.max()), False)


def _worth_clipping(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``kept`` if cutting the other values narrows the axis more than STRETCH times, else
    all: a point drawn where it is beats a triangle at the edge when it squashes nothing."""
    return kept if np.ptp(values) > STRETCH * np.ptp(values[kept]) else np.ones_like(kept)


@dataclass(frozen=True)
class ObjectiveLimits:
    """What an objective-space figure shows: its two axes and the points beyond them.

    Attributes:
        x, y: The axes (L1, L2).
        sides: n × 2: per point and axis, -1 below the limits, +1 above, 0 within.
        xy: The points (n × 2, raw).
    """

    x: AxisRange
    y: AxisRange
    sides: np.ndarray
    xy: np.ndarray

    @property
    def beyond(self) -> np.ndarray:
        """Which points lie beyond the limits (drawn at the edge)."""
        return np.asarray((self.sides != 0).any(1))

    @property
    def n_beyond(self) -> int:
        return int(self.beyond.sum())

    def pinned(self) -> np.ndarray:
        """The points where they are drawn: those beyond the limits moved to the edge."""
        out = self.xy.astype(float, copy=True)
        for axis, rng in ((0, self.x), (1, self.y)):
            for side in (-1, 1):
                out[self.sides[:, axis] == side, axis] = rng.edge(side)
        return out

    def directions(self) -> list[str]:
        """Per point, where it lies beyond the limits: ``"up"``, ``"down"``, ``"right"``,
        ``"left"``, or ``""`` (within). Beyond both axes, L2's side is named."""
        names = {(0, 1): "up", (0, -1): "down", (1, 0): "right", (-1, 0): "left"}
        out = []
        for sx, sy in self.sides.tolist():
            out.append("" if sx == sy == 0 else names[(0, sy)] if sy else names[(sx, 0)])
        return out

    def note(self, names: tuple[str, str] = ("L1", "L2")) -> str:
        """``"N points beyond the axis limits …"``, or ``""`` when there are none."""
        n = self.n_beyond
        if n == 0:
            return ""
        worst = []
        for axis, name in enumerate(names):
            up = self.sides[:, axis] == 1
            if up.any():
                worst.append(f"{name} up to {np.max(self.xy[up, axis]):.4g}")
            down = self.sides[:, axis] == -1
            if down.any():
                worst.append(f"{name} down to {np.min(self.xy[down, axis]):.4g}")
        s = "" if n == 1 else "s"
        return f"{n} point{s} beyond the axis limits, drawn at the edge ({', '.join(worst)})"


def objective_limits(xy: np.ndarray, keep: np.ndarray, allow_log: bool = True) -> ObjectiveLimits:
    """The axes of an objective-space figure: per loss, :func:`robust_range` of the points,
    the front (``keep``) always inside, and which points fall beyond them.

    Args:
        xy: n × 2 (validation L1, validation L2).
        keep: Boolean mask of the points that must be shown (the Pareto front).
        allow_log: Whether a log scale may be chosen.
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    keep = np.asarray(keep, bool)
    x = robust_range(xy[:, 0], keep, allow_log)
    y = robust_range(xy[:, 1], keep, allow_log)
    sides = np.stack([x.side(xy[:, 0]), y.side(xy[:, 1])], axis=1)
    return ObjectiveLimits(x=x, y=y, sides=sides.reshape(-1, 2), xy=xy)


def representative_front(
    xy: np.ndarray, front: np.ndarray, knee: int = -1, k: int = MAX_CURVES
) -> list[tuple[int, str]]:
    """At most ``k`` front trials that show the front: its two ends, its knee, and the rest
    evenly spaced along it (by arc length, each loss scaled to the front's range).

    Args:
        xy: n × 2 points.
        front: Indices (into ``xy``) of the front, by increasing L1 (``FrontAnalysis.front``).
        knee: Index (into ``xy``) of the knee, or -1.
        k: The most trials to return.

    Returns:
        ``(index, role)`` by increasing L1; role is ``"min L1"``, ``"min L2"``,
        ``"knee"`` or ``""``.
    """
    front = np.asarray(front, int)
    if len(front) == 0 or k < 1:
        return []
    roles: dict[int, str] = {int(front[0]): "min L1"}
    if len(front) > 1 and k >= 2:
        roles[int(front[-1])] = "min L2"
    if knee >= 0 and knee in set(front.tolist()) and len(roles) < k:
        roles[int(knee)] = "knee"
    pts = np.asarray(xy, float)[front]
    span = np.ptp(pts, axis=0)
    z = (pts - pts.min(0)) / np.where(span > 0, span, 1.0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(z, axis=0).T))])
    free = k - len(roles)
    if free > 0 and len(front) > len(roles):
        for target in np.linspace(0, arc[-1], free + 2)[1:-1]:
            order = np.argsort(np.abs(arc - target), kind="stable")
            pick = next((int(front[i]) for i in order if int(front[i]) not in roles), None)
            if pick is not None:
                roles[pick] = ""
    position = {int(i): p for p, i in enumerate(front)}
    return sorted(roles.items(), key=lambda item: position[item[0]])


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
    """Every complete trial in (L1, L2), coloured by α (else the trial number), and the
    Pareto front joined by a line."""
    from matplotlib.colors import LogNorm, Normalize

    l1n, l2n = points.loss_names
    alpha = points.params.get("alpha")
    norm: Normalize
    if alpha is not None and np.all(alpha > 0) and alpha.max() / alpha.min() > 10:
        color, norm, label = alpha, LogNorm(alpha.min(), alpha.max()), "α (log)"
    elif alpha is not None:
        color, norm, label = alpha, Normalize(alpha.min(), alpha.max()), "α"
    else:
        color, norm, label = points.numbers, Normalize(0, max(1, points.numbers.max())), "trial"
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


def _contours(ax, function, log_levels: bool) -> None:
    x0, x1, y0, y1 = function.window
    xs, ys = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
    import torch

    z = function.f(torch.as_tensor(xs), torch.as_tensor(ys)).numpy() - function.f_min
    if log_levels:
        levels = np.logspace(-2, np.log10(max(z.max(), 1e-1)), 18)
        ax.contour(xs, ys, np.maximum(z, 1e-3), levels=levels, colors="0.6", linewidths=0.7)
    else:
        ax.contour(xs, ys, z, levels=18, colors="0.6", linewidths=0.7)
    for mx, my in function.minima:
        ax.plot(mx, my, marker="*", color="gold", markersize=14, markeredgecolor="k", zorder=5)
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")


def plot_trajectories(function, runs, config, path: str | Path) -> Path:
    """Contours of a playground function with each optimizer's tuned trajectory (left) and
    ``f − f*`` against the step (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.2), layout="constrained")
    ax, ax_gap = fig.subplots(1, 2, width_ratios=[1.3, 1])
    _contours(ax, function, function.log_levels)
    for run in runs:
        pts = run.trajectory.points
        pts = pts[~np.isnan(pts).any(1)]
        steps = "not reached" if run.steps is None else f"{run.steps} steps"
        line = ax.plot(pts[:, 0], pts[:, 1], marker=".", markersize=3, linewidth=1,
                       label=f"{run.optimizer} ({steps})")[0]  # fmt: skip
        gaps = run.trajectory.gaps
        ax_gap.plot(np.arange(len(gaps)), np.maximum(gaps, 1e-16), color=line.get_color(),
                    label=run.optimizer)  # fmt: skip
    ax.plot(*function.start, marker="o", color="k", markersize=6)
    ax.set_title(f"{function.name}: tuned trajectories from {function.start}")
    ax.legend(fontsize=8, loc="best")
    ax_gap.axhline(config.tolerance, color="k", linestyle="--", linewidth=0.8)
    ax_gap.set(yscale="log", xlabel="step", ylabel="f − f*",
               title=f"gap to the minimum (dashed: tolerance {config.tolerance:g})")  # fmt: skip
    ax_gap.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_axis_learning_rates(function, runs: dict, path: str | Path) -> Path:
    """Seed 002's figure 5: per-axis learning rates on the anisotropic quadratic."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    for ax, (title, run) in zip(fig.subplots(1, len(runs)), runs.items(), strict=True):
        _contours(ax, function, False)
        pts = run.points[~np.isnan(run.points).any(1)]
        ax.plot(pts[:, 0], pts[:, 1], marker=".", color="tab:red", linewidth=1)
        ax.set_title(f"{title}: {len(pts) - 1} steps", fontsize=10)
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_metric_against_time(summaries, metric: str, path: str | Path) -> Path:
    """Validation metric against wall time of each estimator's best configuration, one thin
    line per seed, at equal wall time where it was run (a longer run of the same seed: the
    shorter one is its start) (left); the test metric of each seed at the file's epochs
    (hollow) and at equal wall time (filled) (right)."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6), layout="constrained")
    ax, ax_test = fig.subplots(1, 2, width_ratios=[1.6, 1])
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, summary in enumerate(summaries):
        color = colors[i % len(colors)]
        timed = summary.timed_runs or summary.runs
        for j, run in enumerate(timed):
            ax.plot(run.seconds, run.val_curve, color=color, marker=".", linewidth=1,
                    markersize=3, alpha=0.9 if j == 0 else 0.45,
                    label=summary.estimator if j == 0 else None)  # fmt: skip
        offsets = np.linspace(-0.15, 0.15, max(1, len(summary.runs)))
        ax_test.scatter(i - 0.2 + offsets, [r.test for r in summary.runs], facecolors="none",
                        edgecolors=color, label="file's epochs" if i == 0 else None)  # fmt: skip
        ax_test.scatter(i + 0.2 + offsets, [r.test for r in timed], color=color,
                        label="equal wall time" if i == 0 else None)  # fmt: skip
    ax.set(xlabel="wall time (s)", ylabel=f"validation {metric}",
           title=f"validation {metric} against wall time (one line per seed)")  # fmt: skip
    ax.legend()
    ax.grid(alpha=0.3)
    ax_test.set_xticks(range(len(summaries)), [s.estimator for s in summaries])
    ax_test.set(ylabel=f"test {metric}", title="test metric per seed")
    ax_test.legend(fontsize=8)
    ax_test.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return Path(path)
