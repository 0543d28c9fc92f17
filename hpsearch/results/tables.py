"""Tables as text: aligned plain text for the terminal, Markdown for reports (no Optuna, so
a benchmark on a host without it can write its tables)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_table", "markdown_table"]


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    # A name may hold a newline or a tab (Optuna allows any string): shown escaped, so that
    # it cannot split a row.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(v))


def markdown_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a Markdown table (None as an empty cell)."""
    md = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    md += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return md


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    """Align a table in plain text, numbers to 4 significant digits."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(items: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(items, widths, strict=True)).rstrip()

    lines = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    return "\n".join(lines)
