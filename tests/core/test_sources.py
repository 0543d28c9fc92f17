"""Your own data: a study file's ``dataset = { path = …, target = … }`` (CSV, NPZ, Parquet) and
``hpsearch.register_dataset``; the same split, scaling and cache as the built-in datasets, and
a one-line refusal for every file that cannot be used."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import hpsearch
from hpsearch.core import data as data_module
from hpsearch.core.sources import DataFile
from hpsearch.errors import HpsearchError
from hpsearch.study.config import load_study_file
from tests.cli.test_cli import run_main
from tests.conftest import REPO

WINE_CSV = REPO / "examples" / "data" / "wine.csv"


def _study_file(folder: Path, dataset: str, name: str = "own-data") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [study]
            name = "{name}"
            dataset = {dataset}
            setup = "weight_decay"
            mode = "pareto"
            n_trials = 2
            [budget]
            epochs = 2
            [params]
            alpha = {{ type = "float", low = 1e-4, high = 1.0, log = true }}
            width = 4
            """
        )
    )
    return path


def test_a_csv_gives_the_split_of_the_same_rows_as_scikit_learn(tmp_path: Path) -> None:
    config = load_study_file(
        _study_file(tmp_path, f'{{ path = "{WINE_CSV}", target = "cultivar" }}')
    )
    assert config.dataset == "wine.csv" and config.data_file is not None
    mine = config.load_data()
    builtin = data_module.load_dataset("wine")
    # The CSV is scikit-learn's wine with text labels: the same seeded stratified split and
    # scaling give the same tensors (6 significant digits in the file).
    assert mine.n_classes == 3 and mine.task == "classification"
    assert mine.feature_names == builtin.feature_names
    for split in ("train", "val", "test"):
        torch.testing.assert_close(getattr(mine, split).y, getattr(builtin, split).y)
        torch.testing.assert_close(
            getattr(mine, split).x, getattr(builtin, split).x, atol=1e-4, rtol=1e-4
        )
    identity = config.identity()["dataset"]
    assert identity["file"] == "wine.csv" and len(identity["sha256"]) == 16
    picked = load_study_file(
        _study_file(
            tmp_path, f'{{ path = "{WINE_CSV}", target = "cultivar", features = ["alcohol"] }}'
        )
    )
    assert picked.identity()["dataset"] != identity  # other features: another study
    assert picked.load_data().n_features == 1


def test_the_path_is_relative_to_the_study_file_and_npz_and_parquet_read_alike(
    tmp_path: Path,
) -> None:
    frame = pd.read_csv(WINE_CSV)
    features = frame.drop(columns=["cultivar"]).to_numpy()
    labels = frame["cultivar"].str[-1].astype(int).to_numpy()
    (tmp_path / "d").mkdir()
    np.savez(tmp_path / "d" / "wine.npz", x=features, y=labels)
    frame.to_parquet(tmp_path / "d" / "wine.parquet")
    from_npz = load_study_file(
        _study_file(tmp_path, '{ path = "d/wine.npz", target = "y" }', "npz")
    ).load_data()
    from_parquet = load_study_file(
        _study_file(tmp_path, '{ path = "d/wine.parquet", target = "cultivar" }', "pq")
    ).load_data()
    torch.testing.assert_close(from_npz.train.x, from_parquet.train.x)
    torch.testing.assert_close(from_npz.val.y, from_parquet.val.y)


def test_the_split_cache_is_keyed_by_content_not_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(data_module.CACHE_ENV, str(tmp_path / "cache"))
    frame = pd.read_csv(WINE_CSV)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    first = DataFile(str(path), "cultivar")
    before = first.digest()
    data_module._split_rows(first, 0, 0.2, 0.2)
    frame.iloc[::-1].to_csv(path, index=False)  # the same name, other content (row order)
    changed = DataFile(str(path), "cultivar")
    assert changed.digest() != before
    data_module._split_rows.cache_clear()
    x_changed = data_module._split_rows(changed, 0, 0.2, 0.2)[0]
    np.testing.assert_allclose(x_changed, frame.iloc[::-1].drop(columns=["cultivar"]).to_numpy())
    assert len(list((tmp_path / "cache" / "splits").glob("file-*.npz"))) == 2


@pytest.mark.parametrize(
    ("content", "dataset", "message"),
    [
        (None, '{ path = "missing.csv", target = "y" }', "no such data file"),
        ("a,b,y\n1,2,0\n", '{ path = "d.csv", target = "label" }', "no column 'label'"),
        ("a,b,y\n1,x,0\n2,z,1\n", '{ path = "d.csv", target = "y" }', "column 'b' is not numeric"),
        ("a,b,y\n1,,0\n2,3,1\n", '{ path = "d.csv", target = "y" }', "1 missing or infinite"),
        ("a,y\n" + "1,0\n" * 30, '{ path = "d.csv", target = "y" }', "one class only"),
        ("a,y\n1,0\n2,1\n3,0\n4,1\n", '{ path = "d.csv", target = "y" }', "cannot split d.csv"),
        ("a,y\n1,0\n", '{ path = "d.txt", target = "y" }', "unknown data file format '.txt'"),
        (None, '{ path = "d.csv" }', "study.dataset.target: missing"),
        ("a,b,y\n", '{ path = "d.csv", target = "y" }', "no data rows, only a header"),
        (None, '{ path = "d.csv", target = "y", features = "x" }', "a list of columns"),
        (None, '{ path = "d.csv", target = "y", features = ["a", "y"] }', "never the target"),
        (None, '{ path = "d.csv", target = "y", task = "ranking" }', "unknown value 'ranking'"),
    ],
)
def test_a_bad_data_file_is_refused_in_one_line_by_check(
    tmp_path: Path, content: str | None, dataset: str, message: str
) -> None:
    if content is not None:
        name = "d.txt" if "d.txt" in dataset else "d.csv"
        (tmp_path / name).write_text(content)
    path = _study_file(tmp_path, dataset)
    out = run_main("check", str(path), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    key = "data" if "cannot split" in message else "study.dataset"  # the fractions' fault
    if "features" in dataset:
        key = "study.dataset.features"
    assert lines[0].startswith(f"hpsearch: error: {path}: {key}")


def test_a_registered_dataset_is_split_scaled_and_named_like_a_built_in_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = np.where(x[:, 0] > 0, "pos", "neg")
    hpsearch.register_dataset("my-points", lambda: (x, y, ["a", "b", "c"]))
    data = data_module.load_dataset("my-points", seed=1)
    assert data.name == "my-points" and data.n_classes == 2
    assert data.feature_names == ("a", "b", "c")
    assert len(data.train) + len(data.val) + len(data.test) == 120
    assert abs(float(data.train.x.mean())) < 1e-5  # standardized by the training rows
    assert "my-points" in data_module.available_datasets()
    with pytest.raises(HpsearchError, match="is built in"):
        hpsearch.register_dataset("digits", lambda: (x, y))
    hpsearch.register_dataset("broken", lambda: (x, np.zeros(120)))
    with pytest.raises(HpsearchError, match="one class only"):
        data_module.load_dataset("broken")
    mixed = np.array([1, "a"] * 60, dtype=object)
    hpsearch.register_dataset("mixed", lambda: (x, mixed))
    with pytest.raises(HpsearchError, match="the labels mix types"):
        data_module.load_dataset("mixed")
    hpsearch.register_dataset("ragged", lambda: ([[1.0], [1.0, 2.0]], [0, 1]))
    with pytest.raises(HpsearchError, match="not a table of numbers"):
        data_module.load_dataset("ragged")


def test_an_unknown_dataset_names_the_file_table_too(tmp_path: Path) -> None:
    out = run_main("check", str(_study_file(tmp_path, '"wines"')), cwd=tmp_path)
    assert out.returncode == 2
    assert "allowed: digits, breast_cancer, wine, iris, diabetes, none" in out.stderr
    assert "did you mean 'wine'?" in out.stderr
