from __future__ import annotations

from pathlib import Path

import pytest

import hpsearch
from hpsearch import StudyFileError, load_study_file
from tests.cli.test_cli import run_main
from tests.conftest import STUDY_FILES

_HEAD = 'setup = "weight_decay"\nmode = "scalarized"\nobjective = "loss1"\nn_trials = 3\n\n[params]'

VALID = """
[study]
name = "ok"
dataset = "iris"
setup = "weight_decay"
mode = "scalarized"
objective = "loss1"
n_trials = 3

[params]
alpha = { type = "float", low = 1e-4, high = 1.0, log = true }
"""


def test_shipped_study_files_are_valid_and_cover_every_setup_and_mode() -> None:
    configs = [load_study_file(p) for p in STUDY_FILES]
    assert {(c.setup, c.mode) for c in configs} >= {
        (s, m)
        for s in ("weight_decay", "sparsity", "beta_vae", "two_task")
        for m in ("scalarized", "pareto")
    }
    assert len({c.name for c in configs}) == len(configs)  # one study per file
    assert {c.sampler for c in configs} >= {"tpe", "nsgaii", "nsgaiii", "gp", "qmc"}


def test_valid_file_defaults_and_types(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID)
    config = load_study_file(path)
    assert config.directions == ["minimize"]
    assert config.sampler == "tpe" and config.pruner == "none" and config.seed == 0
    assert config.epochs == 20 and config.batch_size == 64
    alpha = config.params["alpha"]
    assert (alpha.type, alpha.low, alpha.high, alpha.log) == ("float", 1e-4, 1.0, True)
    assert config.params["lr"].type == "fixed" and config.params["lr"].value == 1e-3
    train, model, options = config.resolve({"alpha": 0.5}, seed=7)
    assert (train.alpha, train.seed, train.optimizer, model.kind, options) == (
        0.5,
        7,
        "adam",
        "mlp",
        {},
    )


def test_pareto_directions_and_metric_objective(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID.replace('mode = "scalarized"\nobjective = "loss1"', 'mode = "pareto"'))
    assert load_study_file(path).directions == ["minimize", "minimize"]
    path.write_text(VALID.replace('"loss1"', '"metric"'))
    assert load_study_file(path).directions == ["maximize"]


# (replace this, with that) applied to VALID -> expected key and a fragment of the message.
BROKEN = [
    ("n_trials = 3", "n_trials = 3\n[", "", "invalid TOML"),
    ('name = "ok"', 'name = "ok"\nname = "again"', "", "invalid TOML"),
    ("n_trials = 3", "n_trials = 3\nworkers = 2", "study.workers", "unknown key; allowed: name"),
    ("[params]", "[parameters]", "parameters", "unknown key; allowed: study, data, budget"),
    (
        "n_trials = 3",
        'n_trials = 3\ndevice = "gpu"',
        "study.device",
        "unknown device 'gpu'; allowed: cpu, cuda, cuda:N, auto",
    ),
    ("n_trials = 3", "n_trials = 3\ndevice = 0", "study.device", "unknown device 0; allowed"),
    (
        'dataset = "iris"',
        'dataset = "mnist"',
        "study.dataset",
        "unknown value 'mnist'; allowed: digits, breast_cancer, wine, iris, diabetes",
    ),
    ('dataset = "iris"', "dataset = 3", "study.dataset", "must be one of digits"),
    ('setup = "weight_decay"', 'setup = "gan"', "study.setup", "unknown setup 'gan'; available"),
    ('mode = "scalarized"', 'mode = "multi"', "study.mode", "allowed: scalarized, pareto"),
    ('objective = "loss1"\n', "", "study.objective", "scalarized mode needs one of loss1"),
    ('objective = "loss1"', 'objective = "accuracy"', "study.objective", "allowed: loss1"),
    (
        'objective = "loss1"',
        'objective = "weighted"',
        "study.objective_weights",
        "two non-negative numbers",
    ),
    (
        'objective = "loss1"',
        'objective = "weighted"\nobjective_weights = [1, -1]',
        "study.objective_weights",
        "two non-negative numbers",
    ),
    (
        'mode = "scalarized"\nobjective = "loss1"',
        'mode = "pareto"\nobjective = "loss1"',
        "study.objective",
        "not allowed in pareto mode",
    ),
    ('mode = "scalarized"', 'mode = "pareto"', "study.objective", "not allowed in pareto"),
    ("n_trials = 3", "n_trials = 0", "study.n_trials", "an integer in [1, 1000000]"),
    ("n_trials = 3", 'n_trials = "ten"', "study.n_trials", "'ten' (string) is not allowed"),
    ("n_trials = 3", "n_trials = 2.5", "study.n_trials", "must be an integer"),
    ("n_trials = 3", "n_trials = true", "study.n_trials", "True (boolean) is not allowed"),
    ("n_trials = 3\n", "", "study.n_trials", "missing (required)"),
    ("n_trials = 3", "n_trials = 3\nseed = -1", "study.seed", "an integer in [0"),
    (
        "n_trials = 3",
        'n_trials = 3\nsampler = "cmaes"',
        "study.sampler",
        "unknown value 'cmaes'; allowed: tpe, nsgaii, nsgaiii, gp, random, grid, qmc",
    ),
    (
        "n_trials = 3",
        'n_trials = 3\nsampler = { name = "nsgaii", population = 4 }',
        "study.sampler.population",
        "unknown key; allowed: population_size",
    ),
    (
        "n_trials = 3",
        "n_trials = 3\nsampler = { population_size = 4 }",
        "study.sampler.name",
        "missing",
    ),
    ("n_trials = 3", 'n_trials = 3\npruner = "asha"', "study.pruner", "allowed: none, median"),
    (
        'mode = "scalarized"\nobjective = "loss1"',
        'mode = "pareto"\npruner = "median"',
        "study.pruner",
        "in pareto mode only 'none' or 'successive_halving'",
    ),
    ("n_trials = 3", "n_trials = 3\ntimeout = 0", "study.timeout", "a number in (0, 3.4e+38]"),
    ('name = "ok"', 'name = "a/b"', "study.name", "letters, digits"),
    ("[params]", "[budget]\nepochs = 0\n[params]", "budget.epochs", "an integer in [1"),
    ("[params]", "[budget]\nepoch = 3\n[params]", "budget.epoch", "allowed: epochs, batch_size"),
    (
        "[params]",
        "[data]\nval_fraction = 0.6\ntest_fraction = 0.6\n[params]",
        "data",
        "must be < 1",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1.0, high = 0.1 }',
        "params.alpha",
        "low (1.0) must be <= high (0.1)",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 0.0, high = 1.0, log = true }',
        "params.alpha.low",
        "log scale needs low > 0",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = -1.0, high = 1.0 }',
        "params.alpha.low",
        "must be a number in [0, 3.4e+38]",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4 }',
        "params.alpha.high",
        "missing",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        "alpha = { low = 1e-4, high = 1.0 }",
        "params.alpha.type",
        "missing",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "double", low = 1e-4, high = 1.0 }',
        "params.alpha.type",
        "allowed: float, categorical",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4, high = 1.0, logscale = true }',
        "params.alpha.logscale",
        "unknown key; allowed: type, low, high, log, step",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = "yes" }',
        "params.alpha.log",
        "must be true or false",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true, step = 0.1 }',
        "params.alpha.step",
        "cannot be combined with log",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = "big"',
        "params.alpha",
        "'big' (string) is not allowed",
    ),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }\nbeta = 2',
        "params.beta",
        "unknown key; allowed: optimizer, lr",
    ),
    (
        "[params]",
        '[params]\noptimizer = "lbfgs"',
        "params.optimizer",
        "one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'",
    ),
    (
        "[params]",
        '[params]\noptimizer = { type = "categorical", choices = ["adam", "lion"] }',
        "params.optimizer.choices",
        "'lion' (string) is not allowed",
    ),
    (
        "[params]",
        '[params]\noptimizer = { type = "categorical", choices = [] }',
        "params.optimizer.choices",
        "non-empty list",
    ),
    (
        "[params]",
        '[params]\noptimizer = { type = "float", low = 0, high = 1 }',
        "params.optimizer.type",
        "allowed: categorical",
    ),
    ("[params]", "[params]\nlr = 0", "params.lr", "must be a number in (0, 3.4e+38]"),
    ("[params]", "[params]\nmomentum = 1.0", "params.momentum", "a number in [0, 1)"),
    (
        "[params]",
        '[params]\ndepth = { type = "int", low = 1, high = 2.5 }',
        "params.depth.high",
        "must be an integer",
    ),
    (
        "[params]",
        '[params]\nwidth = { type = "int", low = 8, high = 64, step = 0 }',
        "params.width.step",
        "must be a positive int",
    ),
    ("[params]", '[params]\nactivation = "swish"', "params.activation", "one of 'relu'"),
    ("[params]", "[params]\nlatent_dim = 4", "params.latent_dim", "unknown key"),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        "alpha = 0.1",
        "params",
        "nothing to search",
    ),
    ("[params]", "[params]\nlr = inf", "params.lr", "inf (number) is not allowed"),
    (
        'alpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'alpha = { type = "float", low = 1e-4, high = inf }',
        "params.alpha.high",
        "inf (number) is not allowed",
    ),
    (
        'objective = "loss1"',
        'objective = "weighted"\nobjective_weights = [1, nan]',
        "study.objective_weights",
        "two non-negative numbers",
    ),
    (
        "[params]",
        "[data]\nval_fraction = 0.01\ntest_fraction = 0.5\n[params]",
        "data",
        "cannot split iris (150 rows)",
    ),
    ("[study]", "[[study]]", "study", "must be a table, got array"),
    ("n_trials = 3", "n_trials = 3\nseed = 1979-05-27", "study.seed", "is not allowed"),
    ("n_trials = 3", 'n_trials = 3\nimports = "mod"', "study.imports", "must be a list"),
    ("[study]", "[studies]", "studies", "unknown key; allowed: study, data, budget, params"),
    (
        "n_trials = 3",
        'n_trials = 3\nimports = ["no_such_module_xyz"]',
        "study.imports[0]",
        "importing 'no_such_module_xyz' failed: ModuleNotFoundError",
    ),
    ("n_trials = 3", 'n_trials = 3\nimports = ["missing.py"]', "study.imports[0]", "no such file"),
    # #7: grid sampler, iFlood, label noise
    ("n_trials = 3", 'n_trials = 3\nsampler = "grid"', "params.alpha", "needs a step"),
    (  # the grid has 3 x 2 = 6 points: 7 trials are one too many
        'n_trials = 3\n\n[params]\nalpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'n_trials = 7\nsampler = "grid"\n\n[params]\n'
        'alpha = { type = "float", low = 0.0, high = 1.0, step = 0.5 }\n'
        'lr = { type = "categorical", choices = [0.01, 0.1] }',
        "study.n_trials",
        "7 is more than the grid's 6 points; allowed: 1 to 6",
    ),
    (
        _HEAD,
        _HEAD.replace("weight_decay", "beta_vae") + '\nflood_mode = "sample"',
        "params.flood_mode",
        "'sample' (iFlood) needs per-sample task losses",
    ),
    (
        '[study]\nname = "ok"\ndataset = "iris"',
        '[data]\nlabel_noise = 0.2\n[study]\nname = "ok"\ndataset = "diabetes"',
        "data.label_noise",
        "classification dataset",
    ),
    ("[params]", "[data]\nlabel_noise = 1.0\n[params]", "data.label_noise", "in [0, 1)"),
    (
        'dataset = "iris"',
        'dataset = "none"',
        "study.dataset",
        'setup \'weight_decay\' trains on data: use a dataset, not "none" ("none" goes with '
        "the analytic setups: fonseca_fleming, front_curve)",
    ),
    (
        'dataset = "iris"\nsetup = "weight_decay"',
        'dataset = "iris"\nsetup = "front_curve"',
        "study.dataset",
        "setup 'front_curve' is an analytic problem: use dataset = \"none\"",
    ),
    ("[params]", '[params]\nflood_mode = "row"', "params.flood_mode", "'batch', 'sample'"),
    ("[params]", "[params]\nbackstitch_interval = 0", "params.backstitch_interval", "[1,"),
    (
        'n_trials = 3\n\n[params]\nalpha = { type = "float", low = 1e-4, high = 1.0, log = true }',
        'n_trials = 3\nsampler = "grid"\n\n[params]\n'
        'alpha = { type = "float", low = 0.0, high = 1.0, step = 1e-300 }',
        "params.alpha.step",
        "would need 1e+300 values here; at most 10000 per parameter",
    ),
]


@pytest.mark.parametrize("old, new, key, fragment", BROKEN)
def test_broken_study_file_names_file_key_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, key: str, fragment: str
) -> None:
    assert old in VALID
    path = tmp_path / "broken.toml"
    path.write_text(VALID.replace(old, new, 1))
    with pytest.raises(StudyFileError) as info:
        load_study_file(path)
    err = info.value
    assert err.path == str(path) and err.key == key
    assert fragment in err.message, err.message
    assert "\n" not in str(err) and str(err).startswith(f"{path}: ")


def test_missing_file_directory_and_binary_file(tmp_path: Path) -> None:
    cases = [(tmp_path / "nope.toml", "no such study file"), (tmp_path, "is a directory")]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases.append((binary, "is not UTF-8 text"))
    for path, fragment in cases:
        with pytest.raises(StudyFileError, match=fragment):
            load_study_file(path)


def test_study_file_imports_a_user_setup(tmp_path: Path) -> None:
    (tmp_path / "my_setup.py").write_text(
        "import hpsearch\n"
        "@hpsearch.register_setup('test_user_file_setup')\n"
        "class Mine(hpsearch.get_setup('weight_decay')):\n"
        "    options = {'scale': hpsearch.Option('float', 1.0, low=0)}\n"
    )
    path = tmp_path / "s.toml"
    path.write_text(
        VALID.replace('setup = "weight_decay"', 'setup = "test_user_file_setup"')
        .replace("n_trials = 3", 'n_trials = 3\nimports = ["my_setup.py"]')
        .replace("[params]", '[params]\nscale = { type = "float", low = 0.5, high = 2.0 }')
    )
    config = load_study_file(path)
    assert config.setup == "test_user_file_setup" and config.params["scale"].searched
    assert "test_user_file_setup" in hpsearch.available_setups()
    (tmp_path / "broken_setup.py").write_text("raise RuntimeError('boom')\n")
    path.write_text(VALID.replace("n_trials = 3", 'n_trials = 3\nimports = ["broken_setup.py"]'))
    with pytest.raises(StudyFileError, match="RuntimeError: boom"):
        load_study_file(path)


def test_a_key_with_a_newline_gets_a_one_line_error(tmp_path: Path) -> None:
    # Found by the hypothesis fuzz: a quoted TOML key may hold any character.
    path = tmp_path / "s.toml"
    path.write_text(VALID.replace('name = "ok"', 'name = "ok"\n"bad\\nkey" = 1'))
    with pytest.raises(StudyFileError) as e:
        load_study_file(path)
    assert "\n" not in str(e.value) and "study.bad\\nkey: unknown key" in str(e.value)


def test_check_runs_no_code_of_a_study_file_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "side_effect.py").write_text(
        "import pathlib, hpsearch\n"
        "pathlib.Path(__file__).with_name('ran').write_text('x')\n"
        "@hpsearch.register_setup('test_check_imports_setup')\n"
        "class Mine(hpsearch.get_setup('weight_decay')):\n"
        "    pass\n"
    )
    path = tmp_path / "s.toml"
    path.write_text(
        VALID.replace('setup = "weight_decay"', 'setup = "test_check_imports_setup"').replace(
            "n_trials = 3", 'n_trials = 3\nimports = ["side_effect.py"]'
        )
    )
    out = run_main("check", str(path), cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "ran").exists()
    assert "study.setup: unknown setup" in out.stderr and "--imports" in out.stderr
    assert out.stderr.count("\n") == 1
    out = run_main("check", "--imports", str(path), cwd=tmp_path)
    assert out.returncode == 0 and (tmp_path / "ran").exists(), out.stderr


@pytest.mark.parametrize(
    "flag, value, fragment",
    [
        ("--batch", "5000", "must be an integer in [1, 4096]"),
        ("--n-trials", "99999999999", "must be an integer in [1, 1000000]"),
        ("--workers", "100000", "must be an integer in [1, 256]"),
        ("--seed", "-1", "must be an integer in [0, 4294967295]"),
    ],
)
def test_the_command_line_has_the_study_files_caps(tmp_path, flag, value, fragment) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID)
    out = run_main("run", str(path), flag, value, cwd=tmp_path)
    assert out.returncode == 2 and fragment in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / "hpsearch.db").exists()


@pytest.mark.parametrize("name", ["ok\n", "ok\r", "ok\x00", " ok", "ok "])
def test_a_name_with_a_control_character_or_space_is_refused(tmp_path, name: str) -> None:
    path = tmp_path / "s.toml"
    escaped = name.encode("unicode_escape").decode().replace("\\x00", "\\u0000")
    path.write_text(VALID.replace('name = "ok"', f'name = "{escaped}"'))
    with pytest.raises(StudyFileError, match="study.name") as e:
        load_study_file(path)
    assert str(e.value).isprintable()


def test_bounds_beyond_float32_are_refused_before_training(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(VALID.replace("high = 1.0, log = true", "high = 1e39, log = true"))
    with pytest.raises(StudyFileError, match=r"params.alpha.high: 1e\+39 .* \[0, 3.4e\+38\]"):
        load_study_file(path)


def test_resolve_passes_every_knob_of_the_table_on() -> None:
    """Each knob of TRAIN_PARAMS fixed at a value other than its default reaches the
    TrainConfig (none is left at its default by omission)."""
    import dataclasses

    from hpsearch.core.knobs import TRAIN_PARAMS
    from hpsearch.study.validation import ParamSpec

    config = load_study_file("studies/demo.toml")
    chosen = {}
    for name, option in TRAIN_PARAMS.items():
        if option.type == "categorical":
            candidates = [c for c in option.choices if c != option.default]
        elif option.type == "int":
            candidates = [v for v in (2, 3, 7) if option.contains(v)]
        else:
            candidates = [v for v in (0.37, 0.61, 2.5) if option.contains(v)]
        chosen[name] = next(v for v in candidates if v != option.default)
    params = {**config.params, **{k: ParamSpec(k, "fixed", value=v) for k, v in chosen.items()}}
    train, _, _ = dataclasses.replace(config, params=params).resolve({})
    assert {k: getattr(train, k) for k in chosen} == chosen


def test_a_digits_study_s_identity_records_the_shared_pixel_scale(study_file) -> None:
    # A digits study stored before pixels shared one scale is another study; nothing else moves.
    digits = load_study_file(study_file(dataset="digits")).identity()
    iris = load_study_file(study_file(dataset="iris")).identity()
    assert digits["data"]["feature_scale"] == "one for all pixels"
    assert "feature_scale" not in iris["data"]
