"""Every shipped study file runs, and the README's own-setup example works as written."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import optuna
import pytest

import hpsearch
from tests.conftest import REPO, STUDY_FILES


@pytest.mark.parametrize("path", STUDY_FILES, ids=[p.stem for p in STUDY_FILES])
def test_shipped_study_runs_on_a_small_budget(path: Path, storage: str) -> None:
    config = dataclasses.replace(hpsearch.load_study_file(path), epochs=2)
    summary = hpsearch.run_study(config, storage, hpsearch.RunOptions(n_trials=2, progress=False))
    assert summary.counted_after == 2
    trials = optuna.load_study(study_name=config.name, storage=storage).trials
    assert all("val_loss1" in t.user_attrs and "val_metric" in t.user_attrs for t in trials)


def test_readme_setup_example(tmp_path: Path, storage: str) -> None:
    readme = (REPO / "docs" / "api.md").read_text()  # "Your own setup"
    code = next(
        b
        for b in re.findall(r"```python\n(.*?)```", readme, re.S)
        if b.startswith("# my_setups.py")
    )
    toml = next(b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "imports" in b)
    (tmp_path / "my_setups.py").write_text(code)
    study = tmp_path / "s.toml"
    study.write_text(
        toml.replace(
            "[study]\n",
            '[study]\nname = "readme"\ndataset = "iris"\nmode = "pareto"\nn_trials = 2\n',
        )
        + "[budget]\nepochs = 2\n[params]\n"
        'beta = { type = "float", low = 0.05, high = 1.0 }\n'
    )
    config = hpsearch.load_study_file(study)
    assert (
        hpsearch.run_study(config, storage, hpsearch.RunOptions(progress=False)).counted_after == 2
    )
    trials = optuna.load_study(study_name="readme", storage=storage).trials
    assert {t.params["beta"] > 0 for t in trials} == {True}
    assert all(t.values[1] > 0 for t in trials)
