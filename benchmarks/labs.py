"""The labs' results: the optimizer playground and MGS, from their shipped study files.

Runs ``hpsearch playground studies/playground.toml`` and ``hpsearch mgs studies/mgs-digits.toml``
through the library (the same functions as the commands), in a fresh temporary storage, so
the results in the README come from a script here and a rerun starts from nothing.

Writes ``playground/`` (``playground.md`` and its figures) and ``mgs/`` (``mgs-digits.md``,
``mgs-digits.png``) to --out (default: a temporary folder, printed); ``--write-results``
writes them to benchmarks/results/.

Usage: python benchmarks/labs.py [--only playground|mgs] [--quick] [--out DIR | --write-results]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import optuna
import torch
from _common import Run, add_output_arguments, parse_args

from hpsearch.labs.mgs_study import load_mgs_file, run_mgs_study
from hpsearch.labs.playground import load_playground_file, run_playground

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"n_trials": 3, "epochs": 2, "steps": 50}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("playground", "mgs"), help="run one lab only")
    add_output_arguments(parser, ", ".join(f"{v} {k}" for k, v in QUICK.items()))
    args = parse_args(parser)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run = Run(args, "labs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "playground"):
            # The tables name the file as a user would type it, from the repository's root.
            config = dataclasses.replace(
                load_playground_file(ROOT / "studies" / "playground.toml"),
                path="studies/playground.toml",
            )
            if args.quick:
                config = dataclasses.replace(
                    config, n_trials=QUICK["n_trials"], steps=QUICK["steps"]
                )
            out = run.out / "playground"
            run_playground(config, f"sqlite:///{tmp}/playground.db", out)
            run.written += sorted(out.iterdir())
        if args.only in (None, "mgs"):
            config = dataclasses.replace(
                load_mgs_file(ROOT / "studies" / "mgs-digits.toml"), path="studies/mgs-digits.toml"
            )
            if args.quick:
                config = dataclasses.replace(
                    config, n_trials=QUICK["n_trials"], epochs=QUICK["epochs"]
                )
            out = run.out / "mgs"
            run_mgs_study(
                config, f"sqlite:///{tmp}/mgs.db", out, lambda m: print(m, file=sys.stderr)
            )
            run.written += sorted(out.iterdir())
    run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
