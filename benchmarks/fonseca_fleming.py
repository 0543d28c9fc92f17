"""The synthetic concave check: Fonseca–Fleming with linear α, Chebyshev w and MDMM ε.

Runs the three pareto studies in ``studies/fonseca_fleming-*-pareto.toml``, compares them in one
objective space and reports each study's hypervolume against the true front's (reference point
(1, 1), raw units, as in DESIGN.md). Writes

    benchmarks/results/fonseca_fleming.png   the three studies, the hull, unsupported points
    benchmarks/results/fonseca_fleming.md    HV table and the verdicts

Usage: python benchmarks/fonseca_fleming.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from hpsearch import compare_points, hypervolume_2d, load_study_file, run_study, study_points
from hpsearch.core.setups import fonseca_fleming_front
from hpsearch.results.compare import write_comparison

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("linear", "chebyshev", "mdmm")


def main() -> int:
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    true_hv = hypervolume_2d(fonseca_fleming_front(20001), (1.0, 1.0))
    rows, items = [], []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'ff.db'}"
        for method in METHODS:
            config = load_study_file(ROOT / "studies" / f"fonseca_fleming-{method}-pareto.toml")
            start = time.perf_counter()
            run_study(config, storage, progress=False)
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
        (RESULTS / "fonseca_fleming.png").write_bytes(paths["png"].read_bytes())
    lines = [
        "# Fonseca–Fleming: what linear α, Chebyshev and MDMM reach on a concave front",
        "",
        "Pareto search, 60 trials over the inner method's knob (TPE over α, QMC over w and ε); "
        f"each trial is {epochs} steps "
        "of SGD (lr 0.05) on x ∈ R² from a seeded random start. HV with reference point (1, 1) "
        f"in raw units; the true front's HV is {true_hv:.4f}. Regenerate with "
        "`python benchmarks/fonseca_fleming.py`.",
        "",
        "| inner method | trials | feasible | HV | % of true front | wall s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m} | {n} | {f} | {hv:.4f} | {100 * hv / true_hv:.1f} | {w:.1f} |"
        for m, n, f, hv, w in rows
    ]
    lines += ["", "![Fonseca–Fleming](fonseca_fleming.png)", ""]
    lines += [f"- {v}" for v in comparison.verdicts()]
    (RESULTS / "fonseca_fleming.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'fonseca_fleming.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
