"""A comparison written to files: ``compare.png``, ``.csv``, ``.md`` and ``.json``.

Apart from :mod:`hpsearch.results.compare`, which computes the comparison, so that drawing it
(:mod:`hpsearch.results.plots`, which reads the comparison) and computing it import each
other in one direction only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hpsearch.results.compare import Comparison
from hpsearch.results.plots import plot_comparison
from hpsearch.results.report import markdown_table


def write_comparison(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """Write ``compare.png``, ``compare.csv``, ``compare.md`` (table, joint front with its α
    ranges, verdicts) and ``compare.json`` (everything, machine-readable).

    Returns:
        ``{"png": …, "csv": …, "md": …, "json": …}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns, rows = comparison.table()
    paths = {
        "png": out / "compare.png",
        "csv": out / "compare.csv",
        "md": out / "compare.md",
        "json": out / "compare.json",
    }
    plot_comparison(comparison, paths["png"])
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    md = markdown_table(columns, rows)
    u = comparison.union
    ref = ", ".join(f"{r:.4g}" for r in u.reference_raw)
    md += [
        "",
        "HV: normalized units (ideal → 0, nadir → 1 per loss, both from the joint front of all "
        f"studies), reference point ({u.reference[0]:.4g}, {u.reference[1]:.4g}); "
        f"HV_raw: the same front in the losses' own units, reference point ({ref}).",
        "",
        "## Joint front, and the α for which each point minimizes L1 + α·L2",
        "",
        *markdown_table(*comparison.front_rows()),
        "",
        "## Verdicts",
        "",
    ]
    md += [f"- {line}" for line in comparison.verdicts()]
    paths["md"].write_text("\n".join(md) + "\n")
    paths["json"].write_text(json.dumps(comparison.to_json(), indent=1) + "\n")
    return paths
