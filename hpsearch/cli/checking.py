"""``hpsearch check``: validate study files without running them."""

from __future__ import annotations

import argparse
import sys

from hpsearch.cli._base import Command
from hpsearch.errors import EXIT_USAGE, StudyFileError


class Check(Command):
    name = "check"
    help = "validate study files without running them"
    description = (
        "Validate study files: exit 0 when all are valid, 2 with one line per bad file otherwise."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study_files", nargs="+", metavar="STUDY_FILE")
        parser.add_argument(
            "--imports",
            action="store_true",
            help="also run the code a file's study.imports lists (off by default: checking a "
            "file runs none of its code)",
        )

    def run(self, args: argparse.Namespace) -> int:
        bad = 0
        for path in args.study_files:
            try:
                summary = check_one(path, args.imports)
            except StudyFileError as e:
                print(f"hpsearch: error: {e}", file=sys.stderr)
                bad += 1
            else:
                print(f"{path}: ok ({summary})")
        return EXIT_USAGE if bad else 0


def check_one(path: str, run_imports: bool) -> str:
    """Validate a study, playground or MGS file (told apart by its table) and describe it."""
    from hpsearch.study.config import load_study_file
    from hpsearch.study.validation import read_toml_file

    tables = set(read_toml_file(path))
    if tables == {"playground"}:
        from hpsearch.labs.playground import load_playground_file

        pg = load_playground_file(path)
        return (
            f"{pg.name}: playground, {len(pg.functions)} functions x {len(pg.optimizers)} "
            f"optimizers, {pg.n_trials} trials each"
        )
    if tables == {"mgs"}:
        from hpsearch.labs.mgs_study import load_mgs_file

        mg = load_mgs_file(path)
        return f"{mg.name}: mgs, {mg.metric} on {mg.dataset}, {mg.n_trials} trials per estimator"
    config = load_study_file(path, run_imports=run_imports)
    return (
        f"{config.name}: {config.mode}, {config.setup} on {config.dataset}, "
        f"{config.n_trials} trials, sampler {config.sampler}"
    )
