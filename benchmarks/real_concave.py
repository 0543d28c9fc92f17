"""A concave front on real data: two tasks on a trunk too narrow for both, judged on test data.

Setup ``two_task`` on digits (task A: the digit, 10 classes; task B: the image's ink tertile)
with one hidden layer of ``width`` units shared by both heads (Adam, lr 0.01 at width 1; 0.001
at width 16, where 0.01 overfits within 30 epochs) (Hu et al., NeurIPS 2023: a
shared representation narrower than the tasks need). Per seed s (``split_seed`` = study
seed = s, so the split, the initialisation and the sampler all change) and per width:

1. the shipped study ``studies/two_task-digits-narrow-pareto.toml`` (linear α, 24 QMC trials,
   150 epochs), and its diagnosis on validation, which is all a user who tuned α has;
2. width 1 (concave): ``hpsearch fill`` with 24 Chebyshev trials aimed by that diagnosis;
   width 16 (the control): a Chebyshev study of 24 QMC trials of w, since a convex front has
   nothing to fill;
3. width 1: a Jacobian-descent study per aggregator of ``JD_AGGREGATORS`` (one trial at a
   time), judged beside them at equal trials and at the wall time linear α + fill took;
4. every trial's **test** losses: the hypervolume of each study's front and of linear α's
   with each other's, normalized per seed and width by the joint test front of every study
   (reference 1.1, 1.1), and the scalarization gap of linear + Chebyshev's joint front (HV −
   HV of its supported part, as % of HV).

Means over seeds with 95% percentile-bootstrap intervals; the paired difference
HV(linear + Chebyshev) − HV(linear) per seed. Convergence: the share of runs whose validation
losses moved ≤ 0.01 (normalized) over their last 20% of epochs, and the loss curves of seed 0.

A last part shows ``init_seed``: a grid study over α × init_seed (13 × 8) at width 1, seed 0,
and where each initialisation's run lands as α grows.

Writes ``real_concave.md``, ``real_concave.json`` and the figures ``real_concave_front.png``,
``real_concave_curves.png``, ``real_concave_init.png`` to --out (default: a temporary
folder, printed); ``--write-results`` writes them to benchmarks/results/.

Usage: python benchmarks/real_concave.py [--seeds 5] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from _common import Run, add_output_arguments, bootstrap_interval, parse_args  # noqa: E402
from _jd import finished_within, jd_name, jd_params  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hpsearch import RunOptions, load_study_file, run_study  # noqa: E402
from hpsearch.errors import HpsearchError  # noqa: E402
from hpsearch.results.analysis import (  # noqa: E402
    Normalization,
    converged_mask,
    hypervolume_2d,
    lower_convex_hull,
    pareto_mask,
)
from hpsearch.results.fill import run_fill  # noqa: E402
from hpsearch.results.report import markdown_table, study_points  # noqa: E402
from hpsearch.study import keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDY_FILE = ROOT / "studies" / "two_task-digits-narrow-pareto.toml"
# Width -> role and learning rate: at width 16 and lr 0.01 the validation losses bottom out
# by epoch 7-30 and rise again (the trunk memorizes 1,078 training rows); at 0.001 they flatten.
WIDTHS = {1: "concave", 16: "control"}
LEARNING_RATES = {1: 0.01, 16: 0.001}
TRIALS = 24
QUICK = {"seeds": 2, "epochs": 20, "trials": 8}
INIT_ALPHAS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0]
INIT_SEEDS = 8
# The aggregators run at width 1 (each ~8 min over 5 seeds, one trial at a time): UPGrad, which
# aims with w, and MGDA, the classic without a knob (its trials differ by init_seed).
JD_AGGREGATORS = ("upgrad", "mgda")


def study_text(seed: int, width: int, epochs: int, trials: int, inner: str = "linear") -> str:
    """The shipped study file, for one seed (split, initialisation and sampler) and width."""
    text = STUDY_FILE.read_text()
    name = f"narrow-w{width}-s{seed}" + ("" if inner == "linear" else f"-{inner}")
    subs = {
        r'name = "[^"]*"': f'name = "{name}"',
        r"\nseed = \d+": f"\nseed = {seed}",
        r"\nwidth = \d+": f"\nwidth = {width}",
        r"\nlr = [0-9.e-]+": f"\nlr = {LEARNING_RATES[width]}",
        r"\nepochs = \d+": f"\nepochs = {epochs}",
        r"\nn_trials = \d+": f"\nn_trials = {trials}",
        r"\nbatch = \d+": f"\nbatch = {trials}",
    }
    if inner == "chebyshev":
        subs[r"\nalpha = [^\n]*"] = (
            '\nmethod = "chebyshev"\nw = { type = "float", low = 0.02, high = 0.98 }'
        )
    elif inner.startswith("jd-"):  # one trial at a time: Jacobian descent cannot batch
        subs[r"\nalpha = [^\n]*"] = "\n" + jd_params(inner.removeprefix("jd-"))
        subs[r"\nbatch = \d+"] = "\nbatch = 1"
    for pattern, value in subs.items():
        text, n = re.subn(pattern, value, text, count=1)
        assert n == 1, pattern  # the shipped file changed shape
    return text + f"\n[data]\nsplit_seed = {seed}\n"


def trial_points(storage: str, name: str, keep: set[int] | None = None) -> dict[str, np.ndarray]:
    """Validation and test (L1, L2) of a study's complete trials (those numbered in ``keep``,
    if given), and their drift."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if keep is not None:
        trials = [t for t in trials if t.number in keep]
    out = {
        split: np.array(
            [
                [
                    t.user_attrs[keys.split_key(split, "loss1")],
                    t.user_attrs[keys.split_key(split, "loss2")],
                ]
                for t in trials
            ]
        ).reshape(-1, 2)
        for split in ("val", "test")
    }
    points = study_points(storage, name)
    kept = slice(None) if keep is None else np.isin(points.numbers, sorted(keep))
    out["drift"] = points.drift[kept]
    out["history"] = [t.user_attrs.get(keys.HISTORY) for t in trials]
    return out


def front_numbers(studies: dict[str, np.ndarray]) -> dict[str, float]:
    """Under the normalization of every study's joint front: HV of each study's front, of
    linear's with each other's (``hv_linear+NAME``), and of linear + Chebyshev (``hv_joint``,
    the hpsearch path: tune α, then fill) with that front's scalarization gap (% of its HV)."""
    every = np.concatenate(list(studies.values()))
    norm = Normalization.from_fronts([every[pareto_mask(every)]])

    def hv(xy: np.ndarray) -> float:
        scaled = norm.apply(xy)
        return hypervolume_2d(scaled[pareto_mask(scaled)]) if len(scaled) else 0.0

    out = {f"hv_{name}": hv(xy) for name, xy in studies.items()}
    for name, xy in studies.items():
        if name != "linear":
            out[f"hv_linear+{name}"] = hv(np.concatenate([studies["linear"], xy]))
    joint = np.concatenate([studies["linear"], studies.get("chebyshev", np.zeros((0, 2)))])
    scaled = norm.apply(joint)
    front = scaled[pareto_mask(scaled)]
    out["hv_joint"] = hypervolume_2d(front)
    supported = hypervolume_2d(front[lower_convex_hull(front)])
    out["gap_joint_pct"] = 100 * (out["hv_joint"] - supported) / out["hv_joint"]
    return out


def run_seed(tmp: Path, storage: str, seed: int, width: int, args: argparse.Namespace) -> dict:
    path = tmp / f"narrow-w{width}-s{seed}.toml"
    path.write_text(study_text(seed, width, args.epochs, args.trials))
    config = load_study_file(path)
    start = time.perf_counter()
    run_study(config, storage, RunOptions(progress=False))
    row: dict = {"seed": seed, "width": width, "linear_wall_s": time.perf_counter() - start}
    linear = study_points(storage, config.name)
    analysis = linear.analyze()
    row["diagnosis"] = (
        "concave" if analysis.concave else "undecided" if analysis.undecided else "convex"
    )
    start = time.perf_counter()
    if WIDTHS[width] == "concave":
        try:
            result = run_fill(
                storage, config.name, "chebyshev", args.trials, str(path), progress=False
            )
            other = result.plan.config.name
        except HpsearchError as e:  # the diagnosis found nothing to fill: say so
            row["fill_note"] = str(e)
            other = None
    else:
        other_path = tmp / f"narrow-w{width}-s{seed}-chebyshev.toml"
        other_path.write_text(study_text(seed, width, args.epochs, args.trials, "chebyshev"))
        other_config = load_study_file(other_path)
        run_study(other_config, storage, RunOptions(progress=False))
        other = other_config.name
    row["chebyshev_wall_s"] = time.perf_counter() - start
    points = {"linear": trial_points(storage, config.name)}
    if other is not None:
        points["chebyshev"] = trial_points(storage, other)
    if WIDTHS[width] == "concave":
        budget = row["linear_wall_s"] + row["chebyshev_wall_s"]
        points.update(run_jd(tmp, storage, seed, width, args, budget, row))
    for split in ("val", "test"):
        numbers = front_numbers({k: p[split] for k, p in points.items()})
        row.update({f"{split}_{k}": v for k, v in numbers.items()})
    all_val = np.concatenate([p["val"] for p in points.values()])
    norm = Normalization.from_fronts([all_val[pareto_mask(all_val)]])
    scalarized = [p for k, p in points.items() if k in ("linear", "chebyshev")]
    drift = np.concatenate([p["drift"] for p in scalarized])
    row["converged_share"] = float(converged_mask(drift, norm, len(drift)).mean())
    for inner in map(jd_name, JD_AGGREGATORS if WIDTHS[width] == "concave" else ()):
        jd_drift = points[inner]["drift"]
        row[f"{inner}_converged"] = float(converged_mask(jd_drift, norm, len(jd_drift)).mean())
    row["points"] = {
        k: {s: p[s].tolist() for s in ("val", "test")}
        for k, p in points.items()
        if not k.endswith("@wall")
    }
    if seed == 0:
        row["histories"] = {k: p["history"] for k, p in points.items()}
    print(
        f"width {width} seed {seed}: diagnosis {row['diagnosis']}, test HV linear "
        f"{row['test_hv_linear']:.3f} joint {row['test_hv_joint']:.3f}, gap "
        f"{row['test_gap_joint_pct']:.1f}%, converged {row['converged_share']:.0%}",
        file=sys.stderr,
        flush=True,
    )
    return row


def run_jd(
    tmp: Path, storage: str, seed: int, width: int, args, budget: float, row: dict
) -> dict[str, dict]:
    """The Jacobian-descent studies of one seed (width 1): their points, their wall times in
    ``row``, and which of their trials ended within ``budget`` seconds (linear + Chebyshev's)."""
    points = {}
    for aggregator in JD_AGGREGATORS:
        inner = jd_name(aggregator)
        path = tmp / f"narrow-w{width}-s{seed}-{inner}.toml"
        path.write_text(study_text(seed, width, args.epochs, args.trials, inner))
        config = load_study_file(path)
        start = time.perf_counter()
        run_study(config, storage, RunOptions(progress=False))
        row[f"{inner}_wall_s"] = time.perf_counter() - start
        points[inner] = trial_points(storage, config.name)
        done = finished_within(storage, config.name, budget)
        points[f"{inner}@wall"] = trial_points(storage, config.name, keep=done)
    return points


def init_grid(tmp: Path, storage: str, args: argparse.Namespace) -> dict:
    """α × init_seed on a grid at width 1, seed 0: the validation point each run reaches."""
    text = study_text(0, 1, args.epochs, len(INIT_ALPHAS) * INIT_SEEDS)
    choices = ", ".join(str(a) for a in INIT_ALPHAS)
    text = re.sub(
        r"\nalpha = [^\n]*", f'\nalpha = {{ type = "categorical", choices = [{choices}] }}', text
    )
    text = text.replace('sampler = "qmc"', 'sampler = "grid"').replace(
        'name = "narrow-w1-s0"', 'name = "narrow-init"'
    )
    text = text.replace(
        "\n[data]",
        f'\ninit_seed = {{ type = "int", low = 0, high = {INIT_SEEDS - 1}, step = 1 }}\n\n[data]',
    )
    path = tmp / "narrow-init.toml"
    path.write_text(text)
    config = load_study_file(path)
    run_study(config, storage, RunOptions(progress=False))
    study = optuna.load_study(study_name=config.name, storage=storage)
    return {
        "alpha": [t.params["alpha"] for t in study.trials if t.state == TrialState.COMPLETE],
        "init_seed": [
            t.params["init_seed"] for t in study.trials if t.state == TrialState.COMPLETE
        ],
        "val": [
            [t.user_attrs[keys.VAL_LOSS1], t.user_attrs[keys.VAL_LOSS2]]
            for t in study.trials
            if t.state == TrialState.COMPLETE
        ],
    }


def summarize(rows: list[dict]) -> dict:
    out: dict = {}
    for width, role in WIDTHS.items():
        mine = [r for r in rows if r["width"] == width]
        cell: dict = {"role": role, "seeds": len(mine)}
        for split in ("val", "test"):
            for key in ("hv_linear", "hv_chebyshev", "hv_joint", "gap_joint_pct"):
                vals = [r[f"{split}_{key}"] for r in mine if f"{split}_{key}" in r]
                if vals:
                    cell[f"{split}_{key}"] = bootstrap_interval(vals)
            paired = [r[f"{split}_hv_joint"] - r[f"{split}_hv_linear"] for r in mine]
            cell[f"{split}_hv_added"] = bootstrap_interval(paired)
        cell["diagnosis"] = {
            d: sum(r["diagnosis"] == d for r in mine) for d in ("concave", "undecided", "convex")
        }
        cell["converged_share"] = bootstrap_interval([r["converged_share"] for r in mine])
        cell["wall_s"] = float(np.mean([r["linear_wall_s"] + r["chebyshev_wall_s"] for r in mine]))
        out[str(width)] = cell
    return out


def summarize_jd(rows: list[dict]) -> dict:
    """Width 1, per inner method beside linear α: HV of its trials alone, what it adds to
    linear α's front (paired per seed), its front at the wall time linear α + fill took, the
    share of its runs converged and its wall time per seed; test and validation."""
    mine = [r for r in rows if WIDTHS[r["width"]] == "concave"]
    out: dict = {}
    for inner in ("chebyshev", *map(jd_name, JD_AGGREGATORS)):
        cell: dict = {}
        for split in ("test", "val"):
            alone = [r[f"{split}_hv_{inner}"] for r in mine if f"{split}_hv_{inner}" in r]
            added = [
                r[f"{split}_hv_linear+{inner}"] - r[f"{split}_hv_linear"]
                for r in mine
                if f"{split}_hv_linear+{inner}" in r
            ]
            at_wall = [
                r[f"{split}_hv_joint" if inner == "chebyshev" else f"{split}_hv_{inner}@wall"]
                for r in mine
            ]
            if alone:
                cell[split] = {
                    "alone": bootstrap_interval(alone),
                    "added": bootstrap_interval(added),
                    "at_wall": bootstrap_interval(at_wall),
                }
        wall_key = "chebyshev_wall_s" if inner == "chebyshev" else f"{inner}_wall_s"
        cell["wall_s"] = float(np.mean([r[wall_key] for r in mine]))
        if inner != "chebyshev":
            cell["converged"] = bootstrap_interval([r[f"{inner}_converged"] for r in mine])
        out[inner] = cell
    return out


def _jd_rows(jd: dict, split: str) -> list[list[str]]:
    return [
        [
            "Chebyshev w (fill)" if inner == "chebyshev" else inner,
            _ci(cell[split]["alone"]),
            _ci(cell[split]["added"]),
            _ci(cell[split]["at_wall"]),
            _ci(cell["converged"], 2) if "converged" in cell else "see above",
            f"{cell['wall_s']:.0f}",
        ]
        for inner, cell in jd.items()
        if split in cell
    ]


JD_COLUMNS = [
    "inner method",
    "HV of its trials",
    "added to linear α's front",
    "HV at linear + fill's wall time",
    "runs converged",
    "wall s per seed",
]


def init_thresholds(grid: dict, high: float = 0.7) -> dict[int, tuple[float | None, float | None]]:
    """Per init_seed of the α grid: the largest α whose run stayed at the task-A end (validation
    task B loss above ``high``) and the smallest α whose run left it."""
    alpha, init, val = (np.array(grid[k]) for k in ("alpha", "init_seed", "val"))
    out = {}
    for s in sorted(set(init.tolist())):
        m = init == s
        stayed, left = alpha[m & (val[:, 1] > high)], alpha[m & (val[:, 1] <= high)]
        out[s] = (
            float(stayed.max()) if len(stayed) else None,
            float(left.min()) if len(left) else None,
        )
    return out


def _ci(v: tuple[float, float, float], digits: int = 3) -> str:
    return f"{v[0]:.{digits}f} [{v[1]:.{digits}f}, {v[2]:.{digits}f}]"


HV_COLUMNS = [
    "width",
    "split",
    "HV linear α",
    "HV linear + Chebyshev",
    "added",
    "gap % (joint front)",
]
DIAGNOSIS_COLUMNS = [
    "width",
    "linear study diagnosed (validation)",
    "runs converged",
    "wall s per seed",
]
SEED_COLUMNS = ["width", "seed", "diagnosis", "HV linear", "HV joint", "gap %"]


def _hv_rows(summary: dict) -> list[list[str]]:
    """Per width and split: HV of the linear study, of both studies, what Chebyshev added, and
    the joint front's gap."""
    return [
        [
            f"{width} ({cell['role']})",
            split,
            _ci(cell[f"{split}_hv_linear"]),
            _ci(cell[f"{split}_hv_joint"]),
            _ci(cell[f"{split}_hv_added"]),
            _ci(cell[f"{split}_gap_joint_pct"], 1),
        ]
        for width, cell in summary.items()
        for split in ("test", "val")
    ]


def _diagnosis_rows(summary: dict) -> list[list[str]]:
    """Per width: the linear study's diagnoses, the share of converged runs and the wall time."""
    table = []
    for width, cell in summary.items():
        d = cell["diagnosis"]
        diagnosed = (
            f"concave {d['concave']}, undecided {d['undecided']}, convex {d['convex']} "
            f"of {cell['seeds']}"
        )
        table.append(
            [str(width), diagnosed, _ci(cell["converged_share"], 2), f"{cell['wall_s']:.0f}"]
        )
    return table


def _seed_row(r: dict) -> list[str]:
    """One width and seed (test split)."""
    return [
        str(r["width"]),
        str(r["seed"]),
        r["diagnosis"],
        f"{r['test_hv_linear']:.3f}",
        f"{r['test_hv_joint']:.3f}",
        f"{r['test_gap_joint_pct']:.1f}",
    ]


def report(
    run: Run, args: argparse.Namespace, summary: dict, jd: dict, rows: list[dict], grid: dict
) -> str:
    lines = [
        "# A concave front on real data: two tasks on a narrow trunk",
        "",
        f"Made by `{run.command}` on {run.machine_line()}; wall {run.seconds():.0f} s. "
        f"Setup `two_task` on digits (L1 = task A, the digit; L2 = task B, the ink tertile), "
        f"one hidden layer of `width` units, Adam (lr 0.01 at width 1, 0.001 at width 16, "
        f"where 0.01 overfits within 30 epochs), {args.epochs} epochs, batch 64; "
        f"{args.seeds} seeds, each setting `split_seed`, the initialisation and the sampler. "
        f"Per seed: the linear-α study ({args.trials} QMC trials of α in [0.01, 100]) and "
        f"{args.trials} Chebyshev trials (width 1: `hpsearch fill` aimed by the linear study's "
        "diagnosis; width 16: a QMC study of w in [0.02, 0.98]). HV: hypervolume of the "
        "front in (L1, L2) normalized per seed and width by the joint front of every study "
        "(at width 1 the Jacobian-descent ones below too), reference "
        "(1.1, 1.1); gap: HV of the joint front minus that of its supported part (the points "
        "some α reaches), % of HV. Mean over seeds [95% percentile-bootstrap interval]; "
        "'added' is the paired per-seed HV(linear + Chebyshev) − HV(linear).",
        "",
    ]
    lines += markdown_table(HV_COLUMNS, _hv_rows(summary))
    lines.append("")
    lines += markdown_table(DIAGNOSIS_COLUMNS, _diagnosis_rows(summary))
    lines += [
        "",
        "## Jacobian descent on the narrow trunk",
        "",
        f"Width 1, the same {args.seeds} seeds: beside linear α's study, the Chebyshev trials "
        f"`hpsearch fill` aimed, and a study of {args.trials} Jacobian-descent trials per "
        "aggregator, one trial at a time (UPGrad: QMC over its preference weight w in "
        "[0.02, 0.98]; MGDA, which has no knob: QMC over `init_seed`), on the scale of the "
        "table above. Added: the paired per-seed HV(linear α's trials + its "
        "trials) − HV(linear α's trials): > 0 when it reaches trade-offs linear α's front "
        "lacks. At linear + fill's wall time: what a user has after the seconds that linear "
        "α's study and the fill took (for Chebyshev: the joint front of linear + fill; for "
        "Jacobian descent: the trials of its study that had ended by then). Test split:",
        "",
    ]
    lines += markdown_table(JD_COLUMNS, _jd_rows(jd, "test"))
    lines += ["", "Validation split:", ""]
    lines += markdown_table(JD_COLUMNS, _jd_rows(jd, "val"))
    lines += ["", "Per seed (test split):", ""]
    lines += markdown_table(SEED_COLUMNS, [_seed_row(r) for r in rows])
    notes = [r for r in rows if "fill_note" in r]
    lines += [""] + [
        f"- width {r['width']} seed {r['seed']}: fill refused: {r['fill_note']}" for r in notes
    ]
    jumps = "; ".join(f"init {s}: ({lo}, {hi}]" for s, (lo, hi) in init_thresholds(grid).items())
    lines += [
        "",
        f"α × init_seed grid (width 1, seed 0, {len(INIT_ALPHAS)} α × {INIT_SEEDS} "
        "initialisations): the α bracket where each initialisation's run leaves the task-A end "
        f"(validation task B loss ≤ 0.7): {jumps}.",
    ]
    lines += [
        "",
        "![test fronts of seed 0](real_concave_front.png)",
        "",
        "![loss curves of seed 0](real_concave_curves.png)",
        "",
        "![alpha × init_seed](real_concave_init.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def figure_fronts(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(WIDTHS), figsize=(11, 4.4))
    for ax, width in zip(axes, WIDTHS, strict=True):
        row = next(r for r in rows if r["width"] == width and r["seed"] == 0)
        for (name, pts), marker in zip(row["points"].items(), "os^v", strict=False):
            xy = np.array(pts["test"])
            label = {"linear": "linear α", "chebyshev": "Chebyshev w"}.get(name, name)
            ax.scatter(xy[:, 0], xy[:, 1], s=22, marker=marker, alpha=0.75, label=label)
        every = np.concatenate(
            [
                np.array(row["points"][k]["test"])
                for k in ("linear", "chebyshev")
                if k in row["points"]
            ]
        )
        front = every[pareto_mask(every)]
        front = front[np.argsort(front[:, 0])]
        hull = front[lower_convex_hull(front)]
        ax.plot(hull[:, 0], hull[:, 1], "k--", lw=1, label="hull of linear + Chebyshev")
        ax.set_title(
            f"width {width} ({WIDTHS[width]}), seed 0: gap {row['test_gap_joint_pct']:.0f}%"
        )
        ax.set_xlabel("test task A loss (digit)")
        ax.set_ylabel("test task B loss (ink tertile)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_curves(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(WIDTHS), figsize=(11, 4))
    for ax, width in zip(axes, WIDTHS, strict=True):
        row = next(r for r in rows if r["width"] == width and r["seed"] == 0)
        for name, color in (("linear", "C0"), ("chebyshev", "C1")):
            for h in row["histories"].get(name, []):
                if h:
                    ax.plot(
                        range(1, len(h["val_loss1"]) + 1),
                        h["val_loss1"],
                        color=color,
                        alpha=0.35,
                        lw=0.8,
                    )
        ax.set_title(f"width {width}, seed 0: validation task A loss per run")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation task A loss")
        ax.plot([], [], color="C0", label="linear α")
        ax.plot([], [], color="C1", label="Chebyshev w")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_init(grid: dict, path: Path) -> None:
    alpha = np.array(grid["alpha"])
    init = np.array(grid["init_seed"])
    val = np.array(grid["val"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("viridis")
    for s in sorted(set(init.tolist())):
        m = init == s
        order = np.argsort(alpha[m])
        color = cmap(s / max(1, INIT_SEEDS - 1))
        axes[0].plot(
            alpha[m][order], val[m][order, 1], "o-", ms=3, lw=1, color=color, label=f"init {s}"
        )
        axes[1].scatter(val[m, 0], val[m, 1], s=16, color=color)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("α")
    axes[0].set_ylabel("validation task B loss reached")
    axes[0].set_title("where each initialisation jumps as α grows")
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set_xlabel("validation task A loss")
    axes[1].set_ylabel("validation task B loss")
    axes[1].set_title("the points reached (colour: init_seed)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--trials", type=int, default=TRIALS)
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()))
    args = parse_args(parser)
    if args.quick:
        vars(args).update(QUICK)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = Run(args, "real_concave")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'real.db'}"
        for seed in range(args.seeds):
            for width in WIDTHS:
                rows.append(run_seed(Path(tmp), storage, seed, width, args))
        grid = init_grid(Path(tmp), storage, args)
    summary = summarize(rows)
    jd = summarize_jd(rows)
    figure_fronts(rows, run.path("real_concave_front.png"))
    figure_curves(rows, run.path("real_concave_curves.png"))
    figure_init(grid, run.path("real_concave_init.png"))
    run.write("real_concave.md", report(run, args, summary, jd, rows, grid))
    for r in rows:
        r.pop("histories", None)
    run.write(
        "real_concave.json",
        json.dumps(
            {**run.facts(), "summary": summary, "jd": jd, "rows": rows, "init_grid": grid},
            indent=1,
        ),
    )
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
