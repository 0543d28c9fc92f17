"""The labs' figures: the playground's trajectories over contour plots and its axis-aligned
learning rates, and MGS's metric against wall time (matplotlib, drawn to PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
