"""The commands that read stored studies: ``list``, ``show``, ``compare``, ``importance``.

They import neither torch nor plotly unless a figure is asked for: they start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from hpsearch.cli._base import (
    Command,
    add_reading,
    add_reference,
    add_storage,
    output_file,
    output_folder,
    positive_int,
    reading,
    writing,
)
from hpsearch.results.points import points_of_study
from hpsearch.results.report import format_table, list_studies, load_stored_study, points_table
from hpsearch.study.storage import describe_storage, open_storage

if TYPE_CHECKING:
    from hpsearch.results.compare import Comparison

# The columns of `hpsearch list`, and the StudyRow field each shows.
LIST_COLUMNS = {
    "study": "name",
    "mode": "mode",
    "dataset": "dataset",
    "setup": "setup",
    "complete": "complete",
    "pruned": "pruned",
    "failed": "failed",
    "running": "running",
    "best": "best",
    "pareto": "pareto_size",
}


class List(Command):
    name = "list"
    help = "list the studies in a storage"
    description = (
        "List studies with trial counts and best value (scalarized) or Pareto-front size (pareto)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_storage(parser)

    def run(self, args: argparse.Namespace) -> int:
        rows = list_studies(args.storage)
        if not rows:
            print(f"no studies in {describe_storage(args.storage)}")
            return 0
        table = [[getattr(r, field) for field in LIST_COLUMNS.values()] for r in rows]
        print(format_table(list(LIST_COLUMNS), table))
        return 0


class Show(Command):
    name = "show"
    help = "best trials or Pareto front of a study, and the diagnosis"
    description = (
        "Print the best trials of a scalarized study, or the Pareto front of a pareto study, "
        "with both losses, the metric and the searched parameters, then the diagnosis: can "
        "linear alpha reach every point of the front? Reads any Optuna study: two objectives "
        "(a maximized one in its own sign), or one objective whose trials record both losses "
        "(hpsearch.record, or --losses)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name")
        add_storage(parser)
        add_reading(parser)
        parser.add_argument(
            "--top",
            type=positive_int,
            default=10,
            metavar="N",
            help="rows for a scalarized study (default: 10)",
        )
        parser.add_argument(
            "--plot",
            type=output_file(".png"),
            metavar="PNG",
            help="also draw the trials in (validation L1, validation L2) with their Pareto front, "
            "and the course of the search, to this PNG file",
        )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.results.diagnose import describe_fill, diagnosis_of

        store = open_storage(args.storage, must_exist=True, read_only=True)  # once per command
        study = load_stored_study(store, args.study)
        points = points_of_study(study, reading(args))  # read once: table, figure, diagnosis
        if args.plot:
            from hpsearch.results.plots import plot_study  # matplotlib only for a figure

            with writing(args.plot):
                written = plot_study(points, args.plot)
            print(f"wrote {written}", file=sys.stderr)
        print(format_table(*points_table(study, points, top=args.top)))
        if left_out := points.non_finite():
            print(f"({left_out} complete trials left off the front: an infinite or NaN loss)")
        diagnosis = diagnosis_of(points)
        print(f"\ndiagnosis: {diagnosis.verdict}")
        if diagnosis.fill is not None:
            print(describe_fill(diagnosis.fill))
        return 0


class Compare(Command):
    name = "compare"
    help = "put studies in one objective space: fronts, hypervolume, scalarization gap"
    description = (
        "Compare studies of the same setup in (validation L1, validation L2): per study the "
        "Pareto size, hypervolume (one normalization and reference point for all), the "
        "scalarization gap HV(front) - HV(supported part), and a verdict on what linear alpha"
        " can reach. Writes compare.png, compare.csv and compare.md to --out."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
        add_storage(parser)
        add_reading(parser)
        parser.add_argument(
            "--out",
            type=output_folder,
            default="compare",
            metavar="DIR",
            help="folder for compare.png/.csv/.md/.json (default: ./compare)",
        )
        add_reference(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.results.compare import compare_studies, format_comparison

        comparison = compare_studies(args.storage, args.studies, args.ref, reading(args))
        print(format_comparison(comparison))
        write_comparison(comparison, args.out)
        return 0


def write_comparison(comparison: Comparison, out: str) -> None:
    """Write compare.png/.csv/.md/.json to ``out`` and say so."""
    from hpsearch.results.export import write_comparison as write

    with writing(out):
        paths = write(comparison, out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


class Importance(Command):
    name = "importance"
    help = "which searched parameter matters most: fANOVA or PED-ANOVA importances"
    description = (
        "Per target (each objective of the study and the validation metric), the share of its"
        " variation over the complete trials that each searched parameter explains, by "
        "Optuna's fANOVA (a random forest, seeded) or PED-ANOVA. Each column sums to 1. The "
        "same chart is in the dashboard once a run of the study ends."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name")
        add_storage(parser)
        parser.add_argument(
            "--evaluator",
            choices=("fanova", "ped_anova"),
            default="fanova",
            help="fanova (default) or ped_anova",
        )
        parser.add_argument(
            "--plot",
            type=output_file(".png"),
            metavar="PNG",
            help="also draw the importances to this PNG file",
        )
        parser.add_argument(
            "--json",
            type=output_file(".json"),
            metavar="JSON",
            help="also write them as JSON to this file",
        )
        parser.add_argument(
            "--no-dashboard",
            action="store_true",
            help="do not save the chart to the study for optuna-dashboard (then the storage is "
            "only read)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.results.importance import (
            format_importances,
            plot_importances,
            study_importances,
        )

        store = open_storage(args.storage, must_exist=True, read_only=args.no_dashboard)
        study = load_stored_study(store, args.study)
        result = study_importances(study, args.evaluator)
        print(format_importances(result))
        if not args.no_dashboard:
            from hpsearch.results.publish import publish_importances

            publish_importances(study, result)
            print(f"saved the chart to {args.study!r} for optuna-dashboard", file=sys.stderr)
        if args.plot:
            with writing(args.plot):
                print(f"wrote {plot_importances(result, args.plot)}", file=sys.stderr)
        if args.json:
            with writing(args.json), open(args.json, "w") as f:
                json.dump(result.to_dict(), f, indent=1)
            print(f"wrote {args.json}", file=sys.stderr)
        return 0
