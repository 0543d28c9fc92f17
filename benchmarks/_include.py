"""Tables in the documents are included from the results files, never retyped.

A document marks an included section of a results file with two comments::

    <!-- include benchmarks/results/own_study.md "## Known fronts: ..." -->
    ...the section's lines, from the line after that heading to the next heading of its level...
    <!-- end include -->

``<!-- include FILE "HEADING" table 2 -->`` takes only the section's second Markdown table
(counted from 1), for a document that shows a table without the notes around it.

``python benchmarks/_include.py README.md docs/*.md`` rewrites every such block from its file
(after a benchmark was re-run with --write-results); ``tests/test_readme.py`` fails when a
block differs from its file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(
    r'(<!-- include (?P<path>\S+) "(?P<heading>[^"]+)"(?: table (?P<table>\d+))? -->\n)'
    r"(?P<body>.*?)(?P<end><!-- end include -->)",
    re.DOTALL,
)


def section(path: str, heading: str) -> str:
    """The lines of ``path`` under ``heading`` up to the next heading of the same or a higher
    level, blank lines at both ends dropped, ending in a newline."""
    lines = (ROOT / path).read_text().splitlines()
    if heading not in lines:
        raise ValueError(f"{path} has no heading {heading!r}")
    start = lines.index(heading) + 1
    level = len(heading) - len(heading.lstrip("#"))
    end = next(
        (
            i
            for i in range(start, len(lines))
            if re.match(r"#{1,%d} " % level, lines[i])  # noqa: UP031 (a regex quantifier)
        ),
        len(lines),
    )
    return "\n".join(lines[start:end]).strip("\n") + "\n"


def table(text: str, number: int) -> str:
    """The ``number``-th Markdown table (counted from 1) of ``text``, ending in a newline."""
    tables: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    if not 1 <= number <= len(tables):
        raise ValueError(f"no table {number}: the section has {len(tables)}")
    return "\n".join(tables[number - 1]) + "\n"


def included(match: re.Match[str]) -> str:
    """What an include block holds: the section, or the one table of it that it names."""
    text = section(match["path"], match["heading"])
    return text if match["table"] is None else table(text, int(match["table"]))


def refreshed(text: str) -> str:
    """``text`` with every include block rewritten from its file."""
    return BLOCK.sub(lambda m: m.group(1) + included(m) + m.group("end"), text)


def stale_blocks(text: str) -> list[str]:
    """The include blocks of ``text`` that differ from their files (as ``path: heading``)."""
    return [
        f"{m['path']}: {m['heading']}" for m in BLOCK.finditer(text) if m["body"] != included(m)
    ]


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        text = path.read_text()
        new = refreshed(text)
        if new != text:
            path.write_text(new)
            print(f"refreshed {name}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
