from __future__ import annotations

import optuna
import pytest
from PIL import Image

from hpsearch import HpsearchError, RunOptions, load_study_file, run_study
from hpsearch.results.plots import plot_study
from hpsearch.results.report import format_table, study_points, study_rows


@pytest.mark.parametrize("mode", ["pareto", "scalarized"])
def test_study_points_and_rows_agree_with_the_storage(study_file, storage, mode) -> None:
    run_study(
        load_study_file(study_file(mode=mode, n_trials=6)), storage, RunOptions(progress=False)
    )
    trials = optuna.load_study(study_name="small", storage=storage).trials
    points = study_points(storage, "small")
    assert points.numbers.tolist() == [t.number for t in trials]
    assert points.loss1.tolist() == [t.user_attrs["val_loss1"] for t in trials]
    assert set(points.params) == {"alpha", "lr"}
    assert points.pareto.any()
    columns, rows = study_rows(storage, "small", top=3)
    if mode == "pareto":
        assert points.values is None
        best = optuna.load_study(study_name="small", storage=storage).best_trials
        assert sorted(r[0] for r in rows) == sorted(t.number for t in best)
        # The stored Pareto front and the one computed from the user attributes agree.
        assert set(points.numbers[points.pareto]) == {t.number for t in best}
    else:
        assert points.values.tolist() == points.loss1.tolist()
        assert len(rows) == 3 and [r[1] for r in rows] == sorted(points.values)[:3]
    assert columns[:1] == ["trial"] and "val_accuracy" in columns


@pytest.mark.parametrize("mode", ["pareto", "scalarized"])
def test_plot_study_writes_a_png(study_file, storage, tmp_path, mode) -> None:
    run_study(
        load_study_file(study_file(mode=mode, n_trials=5)), storage, RunOptions(progress=False)
    )
    out = plot_study(study_points(storage, "small"), tmp_path / "fig" / "s.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 1000 and img.size[1] > 400
        # Not blank: a drawn figure has many distinct colours.
        assert len(img.convert("RGB").getcolors(maxcolors=100_000) or []) > 50


def test_missing_study_and_empty_study(storage, study_file) -> None:
    run_study(load_study_file(study_file(n_trials=1)), storage, RunOptions(progress=False))
    with pytest.raises(HpsearchError, match="no study 'other' in .*; stored: small"):
        study_points(storage, "other")
    optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(HpsearchError, match="no complete trial yet"):
        study_points(storage, "empty")


def test_format_table_aligns_columns() -> None:
    text = format_table(["a", "value"], [[1, 0.123456], [22, float("nan")], [3, None]])
    lines = text.splitlines()
    assert lines[0] == "a   value" and lines[2] == "1   0.1235" and lines[3] == "22  nan"
    assert lines[4] == "3   -" and lines[1] == "--  ------"
