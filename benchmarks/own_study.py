"""Bring your own study: the diagnosis and the fill on plain Optuna studies hpsearch did not make.

Two parts, both with the user's own training loop and ``optuna.create_study`` alone; hpsearch
only reads (``hpsearch.diagnose``), plans (``hpsearch.plan_fill(...).enqueue(study)``) and the
loop reads the aimed knobs (``hpsearch.fill_aim``):

1. **Known fronts** (``examples/plain_optuna.py``): a point descends by SGD on
   ``L1 + α·L2`` over the front ``(s**p, (1 − s)**p)``, concave for p in {0.5, 0.7}, convex for
   p in {1.5, 2.0}; per p and seed (the runs' random starts and the sampler), a 30-trial TPE
   study of α. How often the verdict is right (concave called concave, convex never), and for
   the concave ones the hypervolume before and after 6 Chebyshev trials planned and queued by
   ``plan_fill``, against the best placement of 6 points on the true front (greedy on 2,001
   points of it, given the study's own points): normalized by the true front's ends,
   reference (1.1, 1.1).
2. **A real model** (``examples/own_loop.py``): the two-task digits network with a one-unit
   trunk, 24 QMC trials of α then 8 aimed trials; per seed (split, initialization and
   sampler), the verdict on validation, and the hypervolume of the linear study's front and of
   the front with the aimed trials, on validation (what the aim selected on) and on test (the
   same trials' test losses), normalized per seed by the joint front of that split.

Means over seeds with 95% percentile-bootstrap intervals. Writes ``own_study.md`` and
``own_study.json`` to --out (default: a temporary folder), or to benchmarks/results/ with
--write-results.

Usage: python benchmarks/own_study.py [--seeds 5] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import optuna
import torch
from _common import Run, add_output_arguments, format_interval, parse_args

import hpsearch
from hpsearch.results.analysis import Normalization, hypervolume_2d, pareto_mask
from hpsearch.results.report import markdown_table

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONCAVE, CONVEX = (0.5, 0.7), (1.5, 2.0)
TRIALS, FILL = 30, 6
REAL = {"trials": 24, "fill": 8, "epochs": 150}
QUICK = {"seeds": 2, "trials": 16, "real": {"trials": 8, "fill": 2, "epochs": 20}}


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verdict_word(diagnosis: hpsearch.Diagnosis) -> str:
    if diagnosis.concave:
        return "concave"
    return "undecided" if diagnosis.undecided else "convex"


def aimed_objective(plain: ModuleType, shape: float, seed: int):
    """The user's loop of a fill trial: Chebyshev descent from the trial's own start."""

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        aim = hpsearch.fill_aim(trial)
        assert aim is not None  # only queued trials run here
        l1, l2, _ = plain.descend(aim.scalarizer(), shape, seed * 10_000 + trial.number)
        return l1, l2

    return objective


def best_placement(front: np.ndarray, have: np.ndarray, n: int, norm: Normalization) -> float:
    """HV of ``have`` plus ``n`` points of the true ``front`` chosen greedily, one at a time,
    each adding the most hypervolume."""
    chosen = list(norm.apply(have))
    candidates = norm.apply(front)
    for _ in range(n):
        base = hypervolume_2d(np.array(chosen))
        gains = [hypervolume_2d(np.array([*chosen, c])) - base for c in candidates[::4]]
        chosen.append(candidates[::4][int(np.argmax(gains))])
    return hypervolume_2d(np.array(chosen))


def known_front_run(plain: ModuleType, shape: float, seed: int, trials: int) -> dict:
    study = plain.make_study(shape, seed, trials)
    before = hpsearch.diagnose(study)
    row = {"shape": shape, "seed": seed, "verdict": verdict_word(before)}
    if shape in CONVEX or not before.stretches:
        return row
    plan = hpsearch.plan_fill(study, n=FILL)
    plan.enqueue(study)
    study.optimize(aimed_objective(plain, shape, seed), n_trials=len(plan.aims))
    after = hpsearch.diagnose(study)
    front = plain.true_front(shape).numpy()
    norm = Normalization(ideal=front.min(0), nadir=front.max(0))
    xy = after.points.xy
    own = ~after.points.aimed
    row.update(
        hv_before=hypervolume_2d(norm.apply(xy[own])),
        hv_after=hypervolume_2d(norm.apply(xy)),
        hv_best=best_placement(front, xy[own], len(plan.aims), norm),
        hv_true=hypervolume_2d(norm.apply(front)),
    )
    return row


def real_model_run(own_loop: ModuleType, seed: int, budget: dict, storage: str) -> dict:
    diagnosis = own_loop.main(
        [
            "--seed", str(seed), "--trials", str(budget["trials"]), "--fill",
            str(budget["fill"]), "--epochs", str(budget["epochs"]), "--storage", storage,
        ]
    )  # fmt: skip
    name = own_loop.STUDY + (f"-s{seed}" if seed else "")
    study = optuna.load_study(study_name=name, storage=storage)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    points = diagnosis.points
    aimed = points.aimed if points.aimed is not None else np.zeros(len(points.numbers), bool)
    test = np.array([trials[int(n)].user_attrs["test_losses"] for n in points.numbers])
    row = {"seed": seed, "verdict": verdict_word(hpsearch.diagnose(_linear_only(study)))}
    for split, xy in (("val", points.xy), ("test", test)):
        norm = Normalization.from_fronts([xy])
        row[f"hv_{split}_before"] = hypervolume_2d(norm.apply(xy[~aimed][pareto_mask(xy[~aimed])]))
        row[f"hv_{split}_after"] = hypervolume_2d(norm.apply(xy[pareto_mask(xy)]))
    row["aimed"] = int(aimed.sum())
    return row


def _linear_only(study: optuna.Study) -> optuna.Study:
    """A copy of the study without its aimed trials: the diagnosis the user had first."""
    copy = optuna.create_study(directions=study.directions)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if hpsearch.fill_aim(t) is None:
            copy.add_trial(t)
    return copy


VERDICT_COLUMNS = ["front", "p", "concave", "undecided", "convex", "right"]
FILL_COLUMNS = [
    "p",
    "HV linear α",
    "HV + aimed",
    "HV + best placement",
    "HV true front",
    "aimed / best gain",
]


def _verdict_rows(known: list[dict]) -> list[list[str]]:
    """Per known front: how many seeds got each verdict, and how many were right."""
    table = []
    for shape in (*CONCAVE, *CONVEX):
        rows = [r for r in known if r["shape"] == shape]
        counts = {
            w: sum(r["verdict"] == w for r in rows) for w in ("concave", "undecided", "convex")
        }
        right = counts["concave"] if shape in CONCAVE else len(rows) - counts["concave"]
        kind = "concave" if shape in CONCAVE else "convex"
        table.append(
            [kind, f"{shape:g}", *(str(n) for n in counts.values()), f"{right} of {len(rows)}"]
        )
    return table


def _fill_rows(known: list[dict]) -> list[list[str]]:
    """Per known concave front: HV before and after the aimed trials, against the best
    placement and the true front, and the share of the best gain the aimed trials got."""
    filled = [r for r in known if "hv_after" in r]
    table = []
    for shape in CONCAVE:
        rows = [r for r in filled if r["shape"] == shape]
        if not rows:
            continue
        share = [(r["hv_after"] - r["hv_before"]) / (r["hv_best"] - r["hv_before"]) for r in rows]
        hvs = [
            format_interval([r[k] for r in rows], 3)
            for k in ("hv_before", "hv_after", "hv_best", "hv_true")
        ]
        table.append([f"{shape:g}", *hvs, format_interval(share, 2)])
    return table


def _real_rows(real: list[dict]) -> list[list[str]]:
    """Per split of the real model: HV before and after the aimed trials, and the gain."""
    table = []
    for split in ("val", "test"):
        before = [r[f"hv_{split}_before"] for r in real]
        after = [r[f"hv_{split}_after"] for r in real]
        gain = [a - b for a, b in zip(after, before, strict=True)]
        table.append([split, *(format_interval(v, 3) for v in (before, after, gain))])
    return table


def markdown(known: list[dict], real: list[dict], run: Run, seeds: int) -> str:
    lines = [
        "# Bring your own study: plain Optuna studies diagnosed and filled",
        "",
        f"Made by `{run.command}` on {run.machine_line()}; wall {run.seconds():.0f} s. "
        f"{seeds} seeds per problem. See the docstring of `benchmarks/own_study.py` for the "
        "protocol. Mean [95% percentile-bootstrap interval] over seeds.",
        "",
        "## Known fronts: how often the verdict is right",
        "",
    ]
    lines += markdown_table(VERDICT_COLUMNS, _verdict_rows(known))
    lines += [
        "",
        f"## Known concave fronts: hypervolume before and after {FILL} aimed trials",
        "",
        "HV normalized by the true front's ends, reference (1.1, 1.1); 'best' places the same "
        "number of points on the true front where they add the most.",
        "",
    ]
    lines += markdown_table(FILL_COLUMNS, _fill_rows(known))
    lines += [
        "",
        "## A real model: two tasks on a one-unit trunk (examples/own_loop.py)",
        "",
    ]
    lines += markdown_table(["split", "HV linear α", "HV + aimed", "gain"], _real_rows(real))
    verdicts = {w: sum(r["verdict"] == w for r in real) for w in ("concave", "undecided", "convex")}
    lines += [
        "",
        f"Verdict on the linear study (validation): concave {verdicts['concave']}, undecided "
        f"{verdicts['undecided']}, convex {verdicts['convex']} of {len(real)}; aimed trials "
        f"run: {sum(r['aimed'] for r in real)}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    add_output_arguments(parser, "2 seeds, 16-trial known-front studies, 8 real trials")
    args = parse_args(parser)
    run = Run(args, "own_study")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seeds = QUICK["seeds"] if args.quick else args.seeds
    trials = QUICK["trials"] if args.quick else TRIALS
    plain, own_loop = example("plain_optuna"), example("own_loop")
    known = []
    for shape in (*CONCAVE, *CONVEX):
        for seed in range(seeds):
            known.append(known_front_run(plain, shape, seed, trials))
            print(f"p={shape} seed {seed}: {known[-1]['verdict']}", file=sys.stderr, flush=True)
    storage = f"sqlite:///{run.out / 'own_study.db'}"
    (run.out / "own_study.db").unlink(missing_ok=True)
    budget = QUICK["real"] if args.quick else REAL
    real = []
    for seed in range(seeds):
        real.append(real_model_run(own_loop, seed, budget, storage))
        print(f"digits seed {seed}: {real[-1]['verdict']}", file=sys.stderr, flush=True)
    (run.out / "own_study.db").unlink(missing_ok=True)
    run.write("own_study.md", markdown(known, real, run, seeds))
    run.write("own_study.json", json.dumps({**run.facts(), "known": known, "real": real}, indent=1))
    run.finish()


if __name__ == "__main__":
    main()
