"""The synthetic concave check: Fonseca–Fleming with linear α, Chebyshev w and MDMM ε.

Runs the three pareto studies in ``studies/fonseca_fleming-*-pareto.toml``, compares them in one
objective space and reports each study's hypervolume against the true front's (reference point
(1, 1), raw units, as in DESIGN.md). Writes to --out (default: a temporary folder, printed;
``--write-results``: benchmarks/results/)

    fonseca_fleming.png   the three studies, the hull, unsupported points
    fonseca_fleming.md    HV table and the verdicts

Usage: python benchmarks/fonseca_fleming.py [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import Run, add_output_arguments, parse_args

from hpsearch import (
    RunOptions,
    compare_points,
    hypervolume_2d,
    load_study_file,
    run_study,
    study_points,
)
from hpsearch.core.setups import fonseca_fleming_front
from hpsearch.results.export import write_comparison
from hpsearch.results.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("linear", "chebyshev", "mdmm")
QUICK_TRIALS, QUICK_EPOCHS = 20, 300  # --quick: per study, one population of 20


def _results_table(rows: list[tuple[str, int, int, float, float]], true_hv: float) -> list[str]:
    """The Markdown table of the inner methods: ``rows`` of (method, trials, feasible, HV,
    wall s)."""
    return markdown_table(
        ["inner method", "trials", "feasible", "HV", "% of true front", "wall s"],
        [
            [
                method,
                str(trials),
                str(feasible),
                f"{hv:.4f}",
                f"{100 * hv / true_hv:.1f}",
                f"{wall:.1f}",
            ]
            for method, trials, feasible, hv, wall in rows
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_arguments(parser, f"{QUICK_TRIALS} trials of {QUICK_EPOCHS} steps per study")
    args = parse_args(parser)
    torch.set_num_threads(1)
    run = Run(args, "fonseca_fleming")
    true_hv = hypervolume_2d(fonseca_fleming_front(20001), (1.0, 1.0))
    rows, items = [], []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'ff.db'}"
        for method in METHODS:
            config = load_study_file(ROOT / "studies" / f"fonseca_fleming-{method}-pareto.toml")
            if args.quick:
                config = dataclasses.replace(
                    config, n_trials=QUICK_TRIALS, batch=QUICK_TRIALS, epochs=QUICK_EPOCHS
                )
            start = time.perf_counter()
            run_study(config, storage, RunOptions(progress=False))
            wall = time.perf_counter() - start
            epochs = config.epochs
            points = study_points(storage, config.name)
            xy = points.xy[points.counted]  # pareto mode: every achieved point is on the front
            hv = hypervolume_2d(xy, (1.0, 1.0))
            rows.append((method, len(points.numbers), int(points.feasible.sum()), hv, wall))
            items.append((points, wall))
            print(
                f"{config.name}: HV {hv:.4f} = {100 * hv / true_hv:.1f}% of the true front",
                file=sys.stderr,
            )
        comparison = compare_points(items)
        paths = write_comparison(comparison, Path(tmp) / "cmp")
        run.write("fonseca_fleming.png", paths["png"].read_bytes())
    lines = [
        "# Fonseca–Fleming: what linear α, Chebyshev and MDMM reach on a concave front",
        "",
        f"Pareto search, {config.n_trials} trials over the inner method's knob (TPE over α, QMC "
        f"over w and ε); each trial is {epochs} steps "
        "of SGD (lr 0.05) on x ∈ R² from a seeded random start. HV with reference point (1, 1) "
        f"in raw units; the true front's HV is {true_hv:.4f}. Made by `{run.command}` "
        f"({run.seconds():.0f} s on {run.machine_line()}); regenerate with "
        "`python benchmarks/fonseca_fleming.py --write-results`.",
        "",
        *_results_table(rows, true_hv),
    ]
    lines += ["", "![Fonseca–Fleming](fonseca_fleming.png)", ""]
    lines += [f"- {v}" for v in comparison.verdicts()]
    run.write("fonseca_fleming.md", "\n".join(lines) + "\n")
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
