"""What the figures show (not their pixels): axis limits that keep the front and clip outliers,
integer trial axes, legends outside the data, a readable number of loss curves, studies told
apart on compare.png, and the tables and note around them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hpsearch import RunOptions, load_study_file, run_study
from hpsearch.results import publish
from hpsearch.results.analysis import feasible_pareto_mask
from hpsearch.results.compare import compare_points
from hpsearch.results.figure_rules import (
    MAX_CURVES,
    objective_limits,
    representative_front,
    robust_range,
    trade_off_colour,
)
from hpsearch.results.plots import comparison_figure, study_figure
from hpsearch.results.points import StudyPoints
from hpsearch.results.report import study_rows


def _points(
    n: int = 30,
    seed: int = 0,
    outlier: float | None = None,
    scalarized: bool = False,
    name: str = "synthetic",
    l2_offset: float = 0.0,
) -> StudyPoints:
    """A beta-VAE-like study: a convex front in (50..85, 0..50) plus noise; ``outlier``: trial
    5's L2 set to that value (a diverged run)."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, n))
    loss1 = 50 + 35 * t + rng.uniform(0, 3, n)
    loss2 = l2_offset + 50 * (1 - t) ** 2 + rng.uniform(0, 3, n)
    if outlier is not None:
        loss2[5] = outlier
    xy = np.stack([loss1, loss2], axis=1)
    ok = np.ones(n, bool)
    return StudyPoints(
        study_name=name,
        loss_names=("reconstruction", "kl"),
        metric_name="accuracy",
        numbers=np.arange(n),
        loss1=loss1,
        loss2=loss2,
        metric=rng.uniform(0, 1, n),
        params={"alpha": 10 ** rng.uniform(-2, 1, n)},
        pareto=feasible_pareto_mask(xy, ok),
        values=loss1 + loss2 if scalarized else None,
        objective_name="reconstruction + kl",
        minimize=True,
        feasible=ok,
        counted=ok,
    )


def _drawn(fig) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # ticks and the constrained layout are computed on drawing


def _inside(limits: tuple[float, float], values: np.ndarray) -> bool:
    lo, hi = limits
    return bool((values >= lo).all() and (values <= hi).all())


@pytest.mark.parametrize("allow_log", [False, True])
def test_the_outlier_rule_clips_a_planted_outlier_and_keeps_the_front(allow_log) -> None:
    points = _points(l2_offset=10.0)  # L2 in 10..63: a linear axis either way
    typical = float(np.median(points.loss2))
    planted = _points(l2_offset=10.0, outlier=500 * typical)
    assert not planted.pareto[5]  # a dominated, diverged run
    lim = objective_limits(planted.xy, planted.pareto, allow_log=allow_log)
    assert not lim.y.log
    assert lim.beyond.tolist() == [i == 5 for i in range(30)]
    assert lim.sides[5].tolist() == [0, 1]  # above, on L2
    assert lim.y.limits[1] < 500 * typical / 5
    front = planted.xy[planted.pareto]
    assert _inside(lim.x.limits, front[:, 0]) and _inside(lim.y.limits, front[:, 1])
    assert lim.note().startswith("1 point beyond the axis limits")
    # Drawn at the edge, inside the figure: above every kept point, below the top limit.
    edge = lim.pinned()[5, 1]
    assert planted.loss2[~lim.beyond].max() < edge < lim.y.limits[1]
    # Without the outlier nothing is clipped.
    assert objective_limits(points.xy, points.pareto, allow_log=allow_log).n_beyond == 0


def test_on_a_log_axis_only_an_outlier_that_would_squash_the_front_is_cut() -> None:
    # L2 from 0.1 to 50 is a log axis: a run at 500× the median L2 adds less than its span
    # again in decades and is drawn in place, the front still spanning about half the axis ...
    typical = float(np.median(_points().loss2))
    planted = _points(outlier=500 * typical)
    lim = objective_limits(planted.xy, planted.pareto)
    assert lim.y.log and lim.n_beyond == 0
    front = planted.loss2[planted.pareto]
    lo, hi = np.log10(lim.y.limits)
    assert (np.log10(front.max()) - np.log10(front.min())) / (hi - lo) > 0.4
    # ... a run at 10^6× it would squash the front into a third of the axis: cut.
    planted = _points(outlier=1e6 * typical)
    lim = objective_limits(planted.xy, planted.pareto)
    assert lim.y.log and lim.beyond.tolist() == [i == 5 for i in range(30)]
    assert _inside(lim.y.limits, planted.loss2[planted.pareto])


def test_the_front_is_kept_even_when_it_is_the_outlier() -> None:
    points = _points()
    xy = points.xy.copy()
    front = points.pareto.copy()
    xy[0] = [1.0, 5000.0]  # the min-L1 end of the front, far away from the rest
    front[0] = True
    lim = objective_limits(xy, front, allow_log=False)
    assert lim.n_beyond == 0 and lim.y.limits[1] >= 5000.0


def test_a_mild_outlier_that_squashes_nothing_is_drawn_in_place() -> None:
    # 52.8 is beyond Q3 + 3·IQR (about 45), but cutting it would narrow the axis by only 1.6×.
    values = np.array([24, 25, 26, 27, 28, 29, 30, 31, 12, 37, 52.8])
    rng = robust_range(values, values <= 30)
    assert not rng.log and rng.hi == 52.8 and (rng.side(values) == 0).all()
    values[-1] = 520.0  # 20× the axis: cut
    assert robust_range(values, values <= 30).hi == 37


def test_the_show_figure_clips_the_outlier_and_keeps_its_legend_out_of_the_data() -> None:
    fig = study_figure(_points(outlier=5000.0, scalarized=True, l2_offset=10.0))
    _drawn(fig)
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 500
    texts = [t.get_text() for t in fig.legends[0].texts]
    assert "1 point beyond the axis limits, drawn at the edge (kl up to 5000)" in texts
    # The legend is the figure's, below the panels: no axes holds one over its data.
    assert all(a.get_legend() is None for a in fig.axes)
    legend_box = fig.legends[0].get_window_extent()
    for a in fig.axes[:2]:
        assert not legend_box.overlaps(a.get_window_extent())


def test_trial_axes_have_integer_ticks() -> None:
    fig = study_figure(_points(n=4, scalarized=True))  # 0..3: a default axis ticks at 0.5
    _drawn(fig)
    (trial_axis,) = [a for a in fig.axes if a.get_xlabel() == "trial"]
    ticks = trial_axis.get_xticks()
    assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks))
    assert publish._integer_dtick(3) == 1 and publish._integer_dtick(140) == 20
    layout = publish.hypervolume_history_figure(_points(n=4)).layout
    assert layout.xaxis.dtick == 1 and layout.xaxis.tickformat == "d"


def test_the_hypervolume_history_title_keeps_clear_of_its_axis_title() -> None:
    layout = publish.hypervolume_history_figure(_points()).layout
    # A y-axis title longer than the axis ran into the title: the details are a subtitle now.
    assert len(layout.yaxis.title.text) <= 20
    assert layout.margin.t >= 80


def test_the_loss_curves_show_the_knee_both_ends_and_at_most_seven_trials() -> None:
    points = _points(n=80, seed=3)
    analysis = points.analyze()
    assert len(analysis.front) > 20 and analysis.knee >= 0
    chosen = representative_front(points.xy, analysis.front, analysis.knee)
    indices = [i for i, _ in chosen]
    assert len(chosen) == MAX_CURVES == 7 and len(set(indices)) == 7
    roles = dict(chosen)
    assert roles[int(analysis.front[0])] == "min L1"
    assert roles[int(analysis.front[-1])] == "min L2"
    assert roles[analysis.knee] == "knee"
    assert np.all(np.diff(points.loss1[indices]) > 0)  # by increasing L1
    # A short front is shown whole.
    assert len(representative_front(points.xy, analysis.front[:3], -1)) == 3


def test_the_loss_curve_figure_says_what_it_left_out() -> None:
    points = _points(n=80, seed=3)
    history = {"val_loss1": [3.0, 2.0, 1.0], "val_loss2": [1.0, 2.0, 3.0]}
    trials = [
        SimpleNamespace(number=int(n), user_attrs={"history": history}) for n in points.numbers
    ]
    study = SimpleNamespace(get_trials=lambda **kw: trials)
    fig = publish.loss_curves_figure(study, points)
    legend = [t for t in fig.data if t.showlegend]
    n_front = int(points.pareto.sum())
    assert len(legend) == 7 and len(fig.data) == 14
    assert f"7 of the {n_front} Pareto trials" in fig.layout.title.text
    assert f"{n_front - 7} left out" in fig.layout.title.text
    assert any("(knee)" in t.name for t in legend)
    # A trial's two curves share its colour.
    assert all(
        a.line.color == b.line.color for a, b in zip(fig.data[::2], fig.data[1::2], strict=True)
    )


def test_compare_tells_the_studies_apart() -> None:
    studies = [_points(seed=s, name=f"study-{s}") for s in range(3)]
    studies[0] = _points(seed=0, outlier=5000.0, name="study-0")
    comparison = compare_points([(p, 1.0) for p in studies])
    fig = comparison_figure(comparison)
    _drawn(fig)
    (ax,) = [a for a in fig.axes if a.get_legend() is not None]
    lines = {line.get_label(): line for line in ax.get_lines()}
    fronts = [next(v for k, v in lines.items() if k.startswith(p.study_name)) for p in studies]
    assert len({f.get_marker() for f in fronts}) == 3
    assert len({f.get_color() for f in fronts}) == 3
    (hull,) = [v for k, v in lines.items() if k.startswith("convex hull")]
    assert hull.get_linestyle() == "--" and (hull.get_alpha() or 1.0) < 1.0
    assert all(hull.get_zorder() < f.get_zorder() for f in fronts)
    assert hull.get_linewidth() < min(f.get_linewidth() for f in fronts)
    # No shared × for the points above the hull: each is ringed in its study's own marker.
    labels = [t.get_text() for t in ax.get_legend().texts]
    assert any("in the marker of the study that found it" in t for t in labels)
    # The outlier is clipped, and the legend sits outside the data.
    assert ax.get_ylim()[1] < 500
    assert any(t.startswith("1 point beyond the axis limits") for t in labels)
    assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())


@pytest.mark.parametrize("objective", ['objective = "loss1"', 'objective = "metric"'])
def test_the_scalarized_table_names_each_column_once(study_file, storage, objective) -> None:
    path = study_file(mode="scalarized", objective=objective, n_trials=2, epochs=1)
    run_study(load_study_file(path), storage, RunOptions(progress=False))
    columns, rows = study_rows(storage, "small")
    assert len(columns) == len(set(columns)), columns
    assert all(len(r) == len(columns) for r in rows)
    assert columns[:4] == ["trial", "val_task_loss", "val_sq_weight_norm", "val_accuracy"]


def test_the_note_shows_no_temporary_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert publish._shown_path("studies/demo.toml") == "studies/demo.toml"
    assert publish._shown_path(str(tmp_path / "studies" / "a.toml")) == "studies/a.toml"
    assert publish._shown_path("/tmp/pytest-of-root/pytest-7/x/study1.toml") == "study1.toml"


def test_the_best_so_far_follows_trial_numbers_in_any_stored_order() -> None:
    import dataclasses

    sorted_points = _points(n=12, scalarized=True)
    shuffle = np.random.default_rng(3).permutation(12)
    fields = ("numbers", "loss1", "loss2", "metric", "pareto", "values", "feasible", "counted")
    shuffled = dataclasses.replace(
        sorted_points,
        **{f: getattr(sorted_points, f)[shuffle] for f in fields},
        params={k: v[shuffle] for k, v in sorted_points.params.items()},
    )
    expected = np.minimum.accumulate(sorted_points.values)  # along trials 0, 1, 2, ...
    for points in (sorted_points, shuffled):
        lines = [line for ax in study_figure(points).axes for line in ax.get_lines()]
        (step,) = [line for line in lines if line.get_label() == "best so far (right)"]
        assert list(step.get_xdata()) == list(range(12))
        assert np.allclose(step.get_ydata(), expected)


def test_one_colour_rule_for_matplotlib_and_the_dashboard() -> None:
    """A Chebyshev study is coloured by w in `show --plot` and in the dashboard alike, on the
    same scale (log past 10x), an alpha study by alpha, a study of neither by trial number."""
    import dataclasses

    from hpsearch.results.publish import objective_space_figure

    base = _points()
    rng = np.random.default_rng(1)
    cases = {
        "w": (dataclasses.replace(base, params={"w": rng.uniform(0.2, 0.8, 30)}), "w", False),
        "wide w": (
            dataclasses.replace(base, params={"w": 10 ** rng.uniform(-3, -0.1, 30)}),
            "w (log)",
            True,
        ),
        "w 15x": (  # between the old thresholds (10x for matplotlib, 20x for the dashboard)
            dataclasses.replace(base, params={"w": np.linspace(0.05, 0.75, 30)}),
            "w (log)",
            True,
        ),
        "alpha": (base, "α (log)", True),
        "none": (dataclasses.replace(base, params={"lr": rng.uniform(0, 1, 30)}), "trial", False),
    }
    for case, (points, label, log) in cases.items():
        rule = trade_off_colour(points)
        assert (rule.label, rule.log) == (label, log), case
        fig = study_figure(points)
        bars = [a.get_ylabel() for a in fig.axes if a.get_label() == "<colorbar>"]
        assert bars == [label], case
        dash = objective_space_figure(points)
        marker = dash.data[0].marker
        if rule.name == "trial":
            assert marker.colorbar.title.text is None, case
        else:
            title = marker.colorbar.title.text
            assert title == (f"log10 {rule.name}" if log else rule.name), case
