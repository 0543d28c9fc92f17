from __future__ import annotations

import numpy as np
import pytest
import torch

from hpsearch import DATASETS, HpsearchError, load_dataset

SIZES = {"digits": 1797, "breast_cancer": 569, "wine": 178, "iris": 150, "diabetes": 442}
REAL = [d for d in DATASETS if d != "none"]


def test_the_datasets_are_the_real_five_and_none() -> None:
    assert set(REAL) == set(SIZES) and DATASETS[-1] == "none"


def test_no_data_is_one_dummy_row_in_every_split() -> None:
    data = load_dataset("none")
    assert data.task == "none" and len(data.train) == len(data.val) == len(data.test) == 1


@pytest.mark.parametrize("name", REAL)
def test_splits_partition_the_rows(name: str) -> None:
    data = load_dataset(name, seed=0)
    n = len(data.train) + len(data.val) + len(data.test)
    assert n == SIZES[name]
    assert abs(len(data.val) - 0.2 * n) <= 1 and abs(len(data.test) - 0.2 * n) <= 1
    # No row is in two splits: compare raw rows.
    rows = [
        {tuple(r) for r in s.x.numpy().round(5).tolist()} for s in (data.train, data.val, data.test)
    ]
    assert sum(len(r) for r in rows) >= n - 5  # a few duplicate images in digits are allowed
    assert data.train.x.dtype == torch.float32
    assert data.n_features == data.train.x.shape[1] == len(data.feature_names)


@pytest.mark.parametrize("name", REAL)
def test_scaling_is_fitted_on_train_only(name: str) -> None:
    data = load_dataset(name, seed=0)
    x = data.train.x.numpy()
    varying = x.std(0) > 0
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    if name == "digits":  # one scale for every pixel: the mean of the variances is 1
        np.testing.assert_allclose((x.std(0) ** 2).mean(), 1, atol=1e-4)
    else:
        np.testing.assert_allclose(x.std(0)[varying], 1, atol=1e-4)
    # Validation is scaled with train statistics, so its mean is not exactly zero.
    assert np.abs(data.val.x.numpy().mean(0)).max() > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_digits_pixels_share_one_scale_so_no_split_holds_a_huge_value(seed: int) -> None:
    # Per-pixel standardization divided a pixel almost never inked in training by its tiny std:
    # seed 0 had a validation row with |x| = 186 (66 in test). Ink runs 0-16 on every pixel, so
    # one shared scale (about 4.3) bounds every split by about 16 / 4.3.
    data = load_dataset("digits", seed=seed)
    assert torch.unique(data.feature_scale).numel() == 1
    assert 4.0 < float(data.feature_scale[0]) < 4.7
    for split in (data.train, data.val, data.test):
        assert float(split.x.abs().max()) < 4.0
        raw = split.x * data.feature_scale + data.feature_mean  # the ink counts come back
        assert torch.allclose(raw, raw.round(), atol=1e-4)
        assert -1e-4 < raw.min() <= raw.max() < 16 + 1e-4


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "iris"])
def test_classification_splits_are_stratified(name: str) -> None:
    data = load_dataset(name, seed=3)
    assert data.task == "classification" and data.train.y.dtype == torch.int64
    share = [
        torch.bincount(s.y, minlength=data.n_classes).double() / len(s)
        for s in (data.train, data.val, data.test)
    ]
    for other in share[1:]:
        assert (other - share[0]).abs().max() < 0.04


def test_regression_target_is_standardized_and_stratified() -> None:
    data = load_dataset("diabetes", seed=0)
    assert data.task == "regression" and data.n_classes == 0
    assert abs(float(data.train.y.mean())) < 1e-5 and abs(float(data.train.y.std()) - 1) < 0.01
    # Quantile-stratified: the split means of the target agree closely.
    assert abs(float(data.val.y.mean())) < 0.2 and abs(float(data.test.y.mean())) < 0.2
    assert data.target_scale > 10  # raw diabetes targets span ~25..346


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = load_dataset("wine", seed=1), load_dataset("wine", seed=1), load_dataset("wine", 2)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.val.x, c.val.x)


def test_fractions_are_respected() -> None:
    data = load_dataset("digits", seed=0, val_fraction=0.1, test_fraction=0.3)
    assert abs(len(data.val) - 180) <= 1 and abs(len(data.test) - 539) <= 1


def test_unknown_dataset_lists_the_available_ones() -> None:
    with pytest.raises(
        HpsearchError,
        match="unknown dataset 'mnist'; available: digits, breast_cancer, wine, iris, diabetes",
    ):
        load_dataset("mnist")


def test_bad_fractions() -> None:
    with pytest.raises(HpsearchError, match="sum to less than 1"):
        load_dataset("iris", val_fraction=0.5, test_fraction=0.5)


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.45])
def test_label_noise_flips_exactly_that_fraction_of_training_labels_to_other_classes(
    rate: float,
) -> None:
    clean, noisy = load_dataset("digits"), load_dataset("digits", label_noise=rate)
    flipped = clean.train.y != noisy.train.y
    assert int(flipped.sum()) == round(rate * len(clean.train))
    # Symmetric: every class receives flipped labels; validation and test stay clean.
    assert set(noisy.train.y[flipped].tolist()) == set(range(10))
    assert torch.equal(clean.val.y, noisy.val.y) and torch.equal(clean.test.y, noisy.test.y)
    assert torch.equal(clean.train.x, noisy.train.x)
    again = load_dataset("digits", label_noise=rate)
    other_seed = load_dataset("digits", seed=1, label_noise=rate)
    assert torch.equal(again.train.y, noisy.train.y)
    assert not torch.equal(other_seed.train.y, load_dataset("digits", seed=1).train.y)


def test_label_noise_needs_classification_and_a_rate_below_one() -> None:
    with pytest.raises(HpsearchError, match="classification"):
        load_dataset("diabetes", label_noise=0.1)
    with pytest.raises(HpsearchError, match=r"\[0, 1\)"):
        load_dataset("iris", label_noise=1.0)


# --- the split cache: what the next process reads instead of importing scikit-learn ----------

_LOAD_AND_REPORT = """
import sys
from hpsearch.core import data
rows = data._split_rows("wine", 3, 0.2, 0.2)
print("sklearn" in sys.modules, [a.tolist() for a in rows[3]] == {expected}, rows[2][:2])
"""


def _made_by_sklearn(name: str, seed: int) -> tuple:
    from hpsearch.core import data

    return data._make_split_rows(name, seed, 0.2, 0.2)


def test_a_cached_split_is_read_without_scikit_learn_and_is_the_same(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("HPSEARCH_CACHE_DIR", str(tmp_path))
    expected = [a.tolist() for a in _made_by_sklearn("wine", 3)[3]]
    code = _LOAD_AND_REPORT.format(expected=expected)
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    # The first process made the split with scikit-learn and kept it; the second read it.
    assert runs[0].stdout.split()[:2] == ["True", "True"]
    assert runs[1].stdout.split()[:2] == ["False", "True"]
    assert "('alcohol', 'malic_acid')" in runs[1].stdout  # the feature names survive
    assert len(list((tmp_path / "splits").glob("wine-seed3-*.npz"))) == 1


@pytest.mark.parametrize("name", ["digits", "diabetes"])
def test_the_cached_rows_equal_what_scikit_learn_makes(name, tmp_path, monkeypatch) -> None:
    from hpsearch.core import data

    monkeypatch.setenv("HPSEARCH_CACHE_DIR", str(tmp_path))
    made = _made_by_sklearn(name, 1)
    path = data._cache_file(name, 1, 0.2, 0.2)
    data._write_cached(path, made)
    read = data._read_cached(path)
    assert read is not None
    for a, b in zip((*made[:2], *made[3]), (*read[:2], *read[3]), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert (None if made[2] is None else tuple(made[2])) == read[2]


def test_a_broken_cache_file_is_remade_and_off_writes_none(tmp_path, monkeypatch) -> None:
    from hpsearch.core import data

    monkeypatch.setenv("HPSEARCH_CACHE_DIR", str(tmp_path))
    path = data._cache_file("iris", 5, 0.2, 0.2)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")  # a process killed while writing it
    data._split_rows.cache_clear()
    rows = data._split_rows("iris", 5, 0.2, 0.2)
    assert [a.tolist() for a in rows[3]] == [a.tolist() for a in _made_by_sklearn("iris", 5)[3]]
    assert data._read_cached(path) is not None  # remade
    monkeypatch.setenv("HPSEARCH_CACHE_DIR", "off")
    assert data._cache_file("iris", 5, 0.2, 0.2) is None
    # A folder it cannot write: loading works all the same.
    monkeypatch.setenv("HPSEARCH_CACHE_DIR", "/proc/hpsearch-no-such-dir")
    data._split_rows.cache_clear()
    assert len(data._split_rows("iris", 6, 0.2, 0.2)[3][0]) > 0
