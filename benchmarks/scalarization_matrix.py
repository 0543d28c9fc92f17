"""Outer search × inner scalarization on every real setup: hypervolume, gap and wall time.

For each real setup, runs the 2 × 3 matrix {scalarized, pareto} outer search × {linear α,
Chebyshev w, MDMM ε} inner training at a fixed trial budget and several seeds (each seed sets
the data split, the initialisation and the sampler), in population batches. Every trial is
judged twice: on the validation losses that selected it and on the test split. Per setup and
split, all its trials go under one normalization (the joint front of every study of every
seed; see ``hpsearch.results.analysis``). Writes to --out (default: a temporary folder,
printed; ``--write-results``: benchmarks/results/)

    scalarization_matrix.md     the table (test and validation HV and gap, mean [95% bootstrap
                                interval] over seeds; converged share; wall time)
    matrix_<setup>.png           the pareto-outer studies of seed 0 compared (validation)
    matrix_curves.png            validation L1 per epoch of every run of seed 0, per setup

Usage: python benchmarks/scalarization_matrix.py [--trials 16] [--seeds 5] [--epochs N]
       [--batch 8] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from _common import Run, add_output_arguments, format_interval, parse_args
from _jd import cost_table, ended_within, epoch_costs, jd_name, jd_params
from optuna.trial import TrialState

from hpsearch import ModelSpec, RunOptions, load_study_file, run_study
from hpsearch.results.analysis import Normalization, analyze_front, converged_mask
from hpsearch.results.compare import compare_points
from hpsearch.results.export import write_comparison
from hpsearch.results.report import markdown_table, study_points
from hpsearch.study import keys

QUICK = {"trials": 4, "seeds": 2, "epochs": 3}  # --quick
# Chosen on seed 0 (pareto outer, 16 trials per method; converged % linear/Chebyshev/MDMM):
# beta_vae at lr 0.003, constant, 50 epochs 12/19/6; lr 0.006 × 0.95 per epoch, 80 epochs
# 81/56/56. two_task at lr 0.01, 50 epochs: constant 0/0/0; × 0.9 per epoch 100/94/69.
BETA_VAE_EPOCHS, BETA_VAE_DECAY = 80, 0.95
TWO_TASK_EPOCHS, TWO_TASK_DECAY = 50, 0.9

# Per setup: dataset, model params, the inner knobs' ranges, the scalarized objective (a
# fixed trade-off written down: w1*L1 + w2*L2 with both terms of similar size), and a budget
# at which the runs settle (the losses flatten: the "converged" column). The learning rate
# decays per epoch where a constant one leaves the runs moving (beta_vae still falling at 50
# epochs) or overfitting (two_task: validation loss rising after ~15 epochs at lr 0.01).
SETUPS = {
    "weight_decay": {
        "dataset": "digits",
        "params": "lr = 0.003\ndepth = 1\nwidth = 64",
        "alpha": (1e-4, 1.0),
        "epsilon": (0.5, 80.0),
        "weights": (1.0, 0.02),
        "epochs": 50,
        "lr_decay": 1.0,
    },
    "sparsity": {
        "dataset": "wine",
        "params": "lr = 0.01\ndepth = 1\nwidth = 32",
        "alpha": (1e-4, 1.0),
        "epsilon": (1.0, 60.0),
        "weights": (1.0, 0.01),
        "epochs": 50,
        "lr_decay": 1.0,
    },
    "beta_vae": {
        "dataset": "digits",
        "params": "lr = 0.006\ndepth = 1\nwidth = 64\nlatent_dim = 8",
        "alpha": (0.01, 10.0),
        "epsilon": (0.5, 40.0),
        "weights": (1.0, 1.0),
        "epochs": BETA_VAE_EPOCHS,
        "lr_decay": BETA_VAE_DECAY,
    },
    "two_task": {
        "dataset": "digits",
        "params": "lr = 0.01\ndepth = 1\nwidth = 8",
        "alpha": (1e-2, 100.0),
        "epsilon": (0.4, 1.2),
        "weights": (1.0, 1.0),
        "epochs": TWO_TASK_EPOCHS,
        "lr_decay": TWO_TASK_DECAY,
    },
}
INNER = ("linear", "chebyshev", "mdmm")
OUTER = ("scalarized", "pareto")
# Jacobian descent, in the pareto outer search only (it has no scalar for the other to weigh):
# UPGrad, which aims with w, and MGDA, the classic without a knob (its trials differ by
# init_seed). Each costs ~10 min over 5 seeds here, one trial at a time.
JD_INNER = tuple(jd_name(a) for a in ("upgrad", "mgda"))


def inner_methods(outer: str) -> tuple[str, ...]:
    return INNER + JD_INNER if outer == "pareto" else INNER


def study_toml(
    setup: str, outer: str, inner: str, seed: int, trials: int, epochs: int | None, batch: int
) -> str:
    spec = SETUPS[setup]
    epochs = spec["epochs"] if epochs is None else epochs
    if inner.startswith("jd-"):  # Jacobian descent trains one trial at a time
        knob, batch = jd_params(inner.removeprefix("jd-")), 1
    elif inner == "linear":
        lo, hi = spec["alpha"]
        knob = f'alpha = {{ type = "float", low = {lo}, high = {hi}, log = true }}'
    elif inner == "chebyshev":
        knob = 'w = { type = "float", low = 0.02, high = 0.98 }'
    else:
        lo, hi = spec["epsilon"]
        knob = (
            f'epsilon = {{ type = "float", low = {lo}, high = {hi}, log = true }}\n'
            "damping = 1.0\nlambda_lr = 0.1"
        )
    objective = ""
    if outer == "scalarized":
        w1, w2 = spec["weights"]
        objective = f'objective = "weighted"\nobjective_weights = [{w1}, {w2}]'
    return f"""
[study]
name = "{setup}-{outer}-{inner}-s{seed}"
dataset = "{spec["dataset"]}"
setup = "{setup}"
mode = "{outer}"
{objective}
# TPE's default 10 random start-up trials would leave 16 trials in batches of 8 all random,
# and the two outer searches the same 16 draws.
sampler = {{ name = "tpe", n_startup_trials = 4 }}
n_trials = {trials}
seed = {seed}
batch = {batch}

[data]
split_seed = {seed}

[budget]
epochs = {epochs}
batch_size = 64

[params]
{"" if inner.startswith("jd-") else f'method = "{inner}"'}
optimizer = "adam"
lr_decay = {spec["lr_decay"]}
{spec["params"]}
{knob}
"""


def test_points(storage: str, name: str) -> np.ndarray:
    """Test (L1, L2) of a study's complete trials, in study_points' order (by number)."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = sorted(
        (t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
         if keys.VAL_LOSS1 in t.user_attrs),
        key=lambda t: t.number,
    )  # fmt: skip
    return np.array(
        [[t.user_attrs[keys.split_key("test", f"loss{i}")] for i in (1, 2)] for t in trials]
    ).reshape(-1, 2)


def _front_figures(points, counted, norm) -> tuple[float, float]:
    """HV and gap (% of HV) of one study's counted points under ``norm``."""
    a = analyze_front(points, counted, norm)
    return a.hypervolume, a.gap_pct


MATRIX_COLUMNS = [
    "outer",
    "inner",
    "test HV",
    "test HV at linear's wall",
    "val HV",
    "test gap %",
    "Pareto size",
    "feasible %",
    "converged %",
    "called concave",
    "wall s",
]


def _matrix_row(outer: str, inner: str, runs: list[tuple], norms: dict) -> list[str]:
    """One (outer, inner) cell of a setup over its seeds: ``runs`` of (validation points, test
    points, wall s, which trials ended within linear's wall), ``norms`` the setup's
    normalization per split."""
    test_hv, at_wall, val_hv, test_gap, size, feas, conv, wall = ([] for _ in range(8))
    concave = 0
    for points, test_xy, seconds, within in runs:
        hv, gap = _front_figures(test_xy, points.counted, norms["test"])
        test_hv.append(hv)
        keep = points.counted & within
        at_wall.append(_front_figures(test_xy, keep, norms["test"])[0] if keep.any() else 0.0)
        test_gap.append(gap)
        analysis = points.analyze(norms["val"])
        val_hv.append(analysis.hypervolume)
        size.append(len(analysis.front))
        feas.append(100 * points.feasible.mean())
        conv.append(100 * converged_mask(points.drift, norms["val"], len(points.xy)).mean())
        wall.append(seconds)
        concave += analysis.concave
    return [
        outer,
        inner,
        format_interval(test_hv, 3),
        format_interval(at_wall, 3),
        format_interval(val_hv, 3),
        format_interval(test_gap, 1),
        f"{np.mean(size):.1f}",
        f"{np.mean(feas):.0f}",
        f"{np.mean(conv):.0f}",
        f"{concave} of {len(runs)}",
        f"{np.mean(wall):.1f}",
    ]


def with_linear_wall(storage: str, cells: dict) -> dict:
    """Each run of ``cells`` with which of its trials (in study_points' order) ended within
    the wall time of the same seed's pareto-linear study."""
    linear_walls = [wall for _, _, wall in cells[("pareto", "linear")]]
    return {
        key: [
            (points, test_xy, wall, ended_within(storage, points, linear_walls[seed]))
            for seed, (points, test_xy, wall) in enumerate(runs)
        ]
        for key, runs in cells.items()
    }


def epoch_cost_lines(setup: str) -> list[str]:
    """The cost of an epoch of each inner method on this setup's model, one run at a time."""
    spec = SETUPS[setup]
    params = dict(line.split(" = ") for line in spec["params"].splitlines())
    options = {k: float(v) for k, v in params.items() if k == "latent_dim"}
    model = ModelSpec(depth=int(params["depth"]), width=int(params["width"]))
    costs = epoch_costs(
        setup, spec["dataset"], model, {"optimizer": "adam", "lr": float(params["lr"])},
        setup_options={k: int(v) for k, v in options.items()},
    )  # fmt: skip
    return [
        "Cost of an epoch, one run at a time (sequential, 1 thread, median of 3 interleaved "
        "rounds of 2 epochs; population batches, which linear, Chebyshev and MDMM train in "
        "above, cost less per trial):",
        "",
        *cost_table(costs),
        "",
    ]


def curves_figure(curves: dict[str, list], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.6), squeeze=False)
    for ax, (setup, runs) in zip(axes[0], curves.items(), strict=True):
        for inner, color in zip(
            inner_methods("pareto"), ("C0", "C1", "C2", "C3", "C4"), strict=True
        ):
            for h in runs.get(inner, []):
                ax.plot(range(1, len(h) + 1), h, color=color, alpha=0.35, lw=0.8)
            ax.plot([], [], color=color, label=inner)
        ax.set_title(f"{setup}: validation L1, seed 0")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="every setup's epochs (default: its own)")
    parser.add_argument(
        "--batch", type=int, default=8, help="population batch (TPE learns between)"
    )
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()))
    args = parse_args(parser)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.quick:
        vars(args).update(QUICK)
    run = Run(args, "scalarization_matrix")
    budgets = "; ".join(
        f"{name} {SETUPS[name]['epochs'] if args.epochs is None else args.epochs} epochs"
        + (
            f" with lr × {SETUPS[name]['lr_decay']} per epoch"
            if SETUPS[name]["lr_decay"] != 1
            else ""
        )
        for name in args.setups
    )
    table = run.path("scalarization_matrix.md")  # rewritten after each setup
    lines = [
        "# Outer search × inner scalarization on real data",
        "",
        f"{args.trials} trials per study (TPE with 4 random start-up trials, population batches "
        f"of {args.batch}), "
        f"{budgets}, seeds 0–{args.seeds - 1} (each sets the data split, "
        f"the initialisation and the sampler); made by `{run.command}` on "
        f"{run.machine_line(end=False)}; regenerate with "
        "`python benchmarks/scalarization_matrix.py --write-results`. "
        "HV: hypervolume of each study's Pareto front (every trial counts in pareto mode, the "
        "feasible ones in scalarized mode), on the **test** split and on the validation split "
        "that selected the trials, normalized per setup and split by the joint front of all "
        "its studies and seeds, reference point (1.1, 1.1). Gap: HV(front) − HV(supported "
        "part), as % of HV. Mean [95% percentile-bootstrap interval] over seeds. Called "
        "concave: studies whose own trials the diagnosis (validation) calls concave. "
        "Converged: share of runs whose validation losses moved ≤ 1% of the front's span "
        "over their last 20% of epochs. MDMM: the inequality form (coefficient "
        "max(0, λ + c·(L2 − ε))). Test HV at linear's wall: the test HV of the trials that "
        "ended within the wall time of the same seed's pareto-linear study (equal wall time). "
        "Jacobian descent (jd-*: UPGrad over w, MGDA over init_seed) runs in the pareto outer "
        "search only, one trial at a time.",
        "",
    ]
    curves: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'matrix.db'}"
        for setup in args.setups:
            cells: dict[tuple[str, str], list[tuple]] = {}
            for outer in OUTER:
                for inner in inner_methods(outer):
                    for seed in range(args.seeds):
                        path = Path(tmp) / f"{setup}-{outer}-{inner}-{seed}.toml"
                        path.write_text(
                            study_toml(
                                setup, outer, inner, seed, args.trials, args.epochs, args.batch
                            )
                        )
                        config = load_study_file(path)
                        start = time.perf_counter()
                        run_study(config, storage, RunOptions(progress=False))
                        wall = time.perf_counter() - start
                        points = study_points(storage, config.name)
                        cells.setdefault((outer, inner), []).append(
                            (points, test_points(storage, config.name), wall)
                        )
                        if seed == 0 and outer == "pareto":
                            study = optuna.load_study(study_name=config.name, storage=storage)
                            curves.setdefault(setup, {})[inner] = [
                                t.user_attrs[keys.HISTORY]["val_loss1"]
                                for t in study.trials
                                if keys.HISTORY in t.user_attrs
                            ]
                        print(f"{config.name}: {wall:.1f} s", file=sys.stderr, flush=True)
            cells = with_linear_wall(storage, cells)
            runs = [r for rs in cells.values() for r in rs]
            norms = {
                "test": Normalization.from_fronts([t[p.counted] for p, t, _, _ in runs]),
                "val": Normalization.from_fronts([p.xy[p.counted] for p, _, _, _ in runs]),
            }
            names = cells[("pareto", "linear")][0][0].loss_names
            lines += [
                f"## {setup} on {SETUPS[setup]['dataset']} (L1 = {names[0]}, L2 = {names[1]})",
                "",
            ]
            lines += markdown_table(
                MATRIX_COLUMNS,
                [_matrix_row(outer, inner, rs, norms) for (outer, inner), rs in cells.items()],
            )
            seed0 = [
                (cells[("pareto", inner)][0][0], cells[("pareto", inner)][0][2])
                for inner in inner_methods("pareto")
            ]
            comparison = compare_points(seed0)
            paths = write_comparison(comparison, Path(tmp) / setup)
            png = run.write(f"matrix_{setup}.png", paths["png"].read_bytes())
            lines += [
                "",
                f"Seed 0, pareto outer, every inner method (validation): ![{setup}]({png.name})",
                "",
            ]
            lines += epoch_cost_lines(setup)
            lines += [f"- {v}" for v in comparison.verdicts()] + [""]
            table.write_text("\n".join(lines) + "\n")
    curves_figure(curves, run.path("matrix_curves.png"))
    lines += ["![validation L1 per epoch, seed 0](matrix_curves.png)", ""]
    lines.append(f"Wall {run.seconds():.0f} s; {run.machine_line()}.")
    table.write_text("\n".join(lines) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
