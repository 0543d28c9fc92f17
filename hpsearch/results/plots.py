"""Matplotlib figures of a study: the objective space and how the search went."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpsearch.results.report import StudyPoints

if TYPE_CHECKING:
    from hpsearch.results.compare import Comparison

# Figures are built on matplotlib.figure.Figure directly (Agg when saved), never through pyplot:
# importing hpsearch must not change the backend or the figures of a user's session.


def _log_if_wide(ax, axis: str, values: np.ndarray) -> None:
    # Penalties span orders of magnitude across α; a linear axis would squash the front.
    if len(values) and values.min() > 0 and values.max() / values.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def plot_study(points: StudyPoints, path: str | Path) -> Path:
    """Draw a study's trials in the objective space, and the course of the search, to a PNG.

    Left: every complete trial at (validation L1, validation L2), coloured by α when α is
    searched, the Pareto front of these points joined by a line. Right: a pareto study's
    validation metric against α (or trial number); a scalarized study's objective per trial
    with the best so far.

    Args:
        points: The study's trials (:func:`hpsearch.study_points`).
        path: Where to write the PNG.

    Returns:
        The path written.
    """
    path = Path(path)
    from matplotlib.colors import LogNorm, Normalize  # imported here: ~0.5 s of start-up
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    l1n, l2n = points.loss_names
    x, y = points.loss1, points.loss2
    alpha = points.params.get("alpha")
    norm: Normalize
    if alpha is not None and np.all(alpha > 0) and alpha.max() / alpha.min() > 10:
        color, norm, label = alpha, LogNorm(alpha.min(), alpha.max()), "α (log)"
    elif alpha is not None:
        color, norm, label = alpha, Normalize(alpha.min(), alpha.max()), "α"
    else:
        color, norm, label = points.numbers, Normalize(0, max(1, points.numbers.max())), "trial"
    sc = ax.scatter(x, y, c=color, norm=norm, cmap="viridis", s=28, alpha=0.85, zorder=2)
    fig.colorbar(sc, ax=ax, label=label)
    front = points.pareto
    order = np.argsort(x[front])
    ax.plot(
        x[front][order],
        y[front][order],
        "-o",
        color="crimson",
        mfc="none",
        ms=9,
        lw=1.2,
        zorder=3,
        label=f"Pareto front ({int(front.sum())} trials)",
    )
    _log_if_wide(ax, "x", x)
    _log_if_wide(ax, "y", y)
    ax.set_xlabel(f"validation {l1n} (L1)")
    ax.set_ylabel(f"validation {l2n} (L2)")
    ax.set_title(f"{points.study_name}: {len(x)} complete trials")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)

    if points.values is not None:  # scalarized: the objective per trial and the best so far
        v = points.values
        best = np.minimum.accumulate(v) if points.minimize else np.maximum.accumulate(v)
        ax2.scatter(points.numbers, v, s=18, color="tab:blue", label="trial")
        ax2.step(points.numbers, best, where="post", color="crimson", label="best so far")
        ax2.set_xlabel("trial")
        ax2.set_ylabel(points.objective_name)
        _log_if_wide(ax2, "y", v)
        ax2.set_title("scalarized search: " + ("minimize" if points.minimize else "maximize"))
    else:
        xs = alpha if alpha is not None else points.numbers
        ax2.scatter(xs, points.metric, c=np.where(front, "crimson", "tab:blue"), s=22)
        ax2.set_xlabel("α" if alpha is not None else "trial")
        if alpha is not None and np.all(alpha > 0) and alpha.max() / alpha.min() > 10:
            ax2.set_xscale("log")
        ax2.set_ylabel(f"validation {points.metric_name}")
        ax2.set_title("metric of each trial (red: on the Pareto front)")
    ax2.grid(alpha=0.3)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_comparison(comparison: Comparison, path: str | Path) -> Path:
    """Draw studies in one objective space: each study's trials and front, the convex hull of
    the joint front (the minimizers of L1 + α·L2) and the joint front's points above it.

    Returns:
        The path written.
    """
    path = Path(path)
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    ax = fig.subplots()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "os^Dv<>P*X"
    for i, s in enumerate(comparison.studies):
        c, m = colors[i % len(colors)], markers[i % len(markers)]
        xy = s.xy
        ok = s.points.counted
        ax.scatter(xy[ok, 0], xy[ok, 1], s=16, color=c, marker=m, alpha=0.35)
        if (~ok).any():
            ax.scatter(
                xy[~ok, 0], xy[~ok, 1], s=16, facecolors="none", edgecolors=c, marker=m, alpha=0.5
            )
        f = xy[s.analysis.front]
        label = (
            f"{s.points.study_name}: HV {s.analysis.hypervolume:.3f}, "
            f"gap {100 * s.analysis.gap_fraction:.0f}%"
        )
        ax.plot(f[:, 0], f[:, 1], "-", marker=m, color=c, ms=6, lw=1.4, label=label)
    u = comparison.union
    pts = comparison.union_points
    hull = pts[u.hull]
    ax.plot(
        hull[:, 0],
        hull[:, 1],
        "--",
        color="black",
        lw=1.2,
        label="convex hull of the joint front (minimizers of L1 + α·L2)",
    )
    unsupported = u.front[~u.supported]
    if len(unsupported):
        ax.scatter(
            pts[unsupported, 0],
            pts[unsupported, 1],
            marker="x",
            s=60,
            color="black",
            zorder=5,
            label=f"above the hull: not the minimizer of L1 + α·L2 for any α ({len(unsupported)})",
        )
    if u.knee >= 0:
        ax.scatter(
            pts[u.knee, 0],
            pts[u.knee, 1],
            marker="*",
            s=260,
            color="gold",
            edgecolors="black",
            zorder=6,
            label="knee of the joint front",
        )
    l1n, l2n = comparison.loss_names
    # Linear axes on purpose: on log axes a convex hull is no longer the straight-edged set
    # that linear α can reach, and the picture would lie.
    ax.set_xlabel(f"validation {l1n} (L1)")
    ax.set_ylabel(f"validation {l2n} (L2)")
    ax.set_title(
        f"{len(comparison.studies)} studies in one objective space; joint HV gap "
        f"{100 * u.gap_fraction:.1f}%"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


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
    line per seed (left), and the test metric of each seed (right)."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6), layout="constrained")
    ax, ax_test = fig.subplots(1, 2, width_ratios=[1.6, 1])
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, summary in enumerate(summaries):
        color = colors[i % len(colors)]
        for j, run in enumerate(summary.runs):
            ax.plot(run.seconds, run.val_curve, color=color, marker=".", linewidth=1,
                    alpha=0.9 if j == 0 else 0.45,
                    label=summary.estimator if j == 0 else None)  # fmt: skip
        tests = [r.test for r in summary.runs]
        ax_test.scatter([i] * len(tests), tests, color=color)
    ax.set(xlabel="wall time (s)", ylabel=f"validation {metric}",
           title=f"validation {metric} against wall time (one line per seed)")  # fmt: skip
    ax.legend()
    ax.grid(alpha=0.3)
    ax_test.set_xticks(range(len(summaries)), [s.estimator for s in summaries])
    ax_test.set(ylabel=f"test {metric}", title="test metric per seed")
    ax_test.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    return Path(path)
