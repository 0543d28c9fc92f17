"""``hpsearch fill``: aim Chebyshev w or MDMM ε into the stretches linear α skipped, by a
follow-up study hpsearch trains, or (``--plan``, ``--enqueue``) for your own training loop."""

from __future__ import annotations

import argparse
import sys

from hpsearch.cli._base import (
    Command,
    add_reading,
    add_reference,
    add_storage,
    add_threads,
    announce_threads,
    assignment,
    output_folder,
    positive_int,
    publisher,
    reading,
)
from hpsearch.cli.reading import write_comparison
from hpsearch.core.knobs import AIMING_KNOBS
from hpsearch.errors import HpsearchError
from hpsearch.results.report import format_table, load_stored_study
from hpsearch.study.storage import open_storage

# Default trials: a follow-up that hpsearch trains, or a plan for your loop.
FILL_TRIALS = 30
PLAN_TRIALS = 8


class Fill(Command):
    name = "fill"
    help = "run a follow-up study aimed into the stretches of a front that linear alpha skips"
    description = (
        "Diagnose STUDY's front; for each concave stretch (or unresolved hole), queue trials "
        "of a follow-up study (same setup, data, budget and seed; its own name) whose MDMM "
        "epsilon or Chebyshev w aims inside it, run them, and print the combined front with "
        "the hypervolume before and after. Rerunning continues the follow-up."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "study", metavar="STUDY", help="the study to fill (e.g. a linear-alpha one)"
        )
        add_storage(parser)
        add_plan_arguments(parser)
        parser.add_argument(
            "--method",
            # "jd" is accepted here only to be refused with the reason (in run).
            choices=(*AIMING_KNOBS, "jd"),
            default="chebyshev",
            metavar="{" + ",".join(AIMING_KNOBS) + "}",
            help="inner method of the follow-up: chebyshev (weight w, normalize none; default) or "
            "mdmm (epsilon = a budget for L2; its multiplier must converge within the budget: see "
            "--set lambda_lr=...)",
        )
        parser.add_argument(
            "--set",
            type=assignment,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="fix a parameter of the follow-up (TOML value), e.g. --set lambda_lr=0.5; "
            "repeatable",
        )
        parser.add_argument(
            "--n-trials",
            type=positive_int,
            metavar="N",
            help="trials of the follow-up, spread over the stretches by their length (default: "
            f"{FILL_TRIALS}; {PLAN_TRIALS} with --plan)",
        )
        parser.add_argument(
            "--study-file",
            metavar="FILE",
            help="the study file of STUDY, if it is no longer where it was run from",
        )
        parser.add_argument(
            "--name",
            metavar="NAME",
            help="name of the follow-up study (default: STUDY-fill-METHOD)",
        )
        parser.add_argument(
            "--out",
            type=output_folder,
            metavar="DIR",
            help="also write compare.png/.csv/.md/.json of both to DIR",
        )
        add_reference(parser)
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        add_threads(parser)
        parser.add_argument(
            "--no-dashboard", action="store_true", help="do not publish to optuna-dashboard"
        )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.results.aim import check_fill_method

        check_fill_method(args.method)  # jd refused with why, before the storage is opened
        if args.plan or args.enqueue:
            return plan(args)
        given = [
            f"--{k}" for k in ("alpha", "losses", "objectives") if getattr(args, k) is not None
        ]
        if given:
            raise HpsearchError(
                f"{', '.join(given)}: only with --plan (a study hpsearch trains is read as its "
                "study file says)"
            )
        from hpsearch.results.compare import format_comparison
        from hpsearch.results.fill import run_fill  # starts torch

        result = run_fill(
            args.storage,
            args.study,
            method=args.method,
            n_trials=args.n_trials or FILL_TRIALS,
            study_file=args.study_file,
            name=args.name,
            reference_raw=args.ref,
            overrides=dict(args.set),
            progress=not args.no_progress,
            publish=None if args.no_dashboard else publisher(args.storage),
            on_start=lambda config: announce_threads(args, config.threads),
        )
        print(format_comparison(result.comparison))
        before, after = result.before, result.after
        print(
            f"\nhypervolume of {args.study!r}: {before.hypervolume:.4f} before, "
            f"{after.hypervolume:.4f} with {result.plan.config.name!r} "
            f"({before.hypervolume_raw:.4g} -> {after.hypervolume_raw:.4g} in raw units, "
            f"reference ({after.reference_raw[0]:.4g}, {after.reference_raw[1]:.4g}))"
        )
        if args.out:
            write_comparison(result.comparison, args.out)
        return 0


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """``--plan``, ``--enqueue`` and how to read a study hpsearch did not make: aiming for the
    user's own loop."""
    parser.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: print the knob values (Chebyshev w with its ideal point and "
        "scales, or MDMM epsilon) that aim into each stretch, for your own training loop; "
        "works on any Optuna study",
    )
    parser.add_argument(
        "--enqueue",
        action="store_true",
        help="--plan, and also queue those trials into STUDY (enqueue_trial), so that your "
        "next study.optimize(objective) runs them; your objective reads them with "
        "hpsearch.fill_aim",
    )
    add_reading(parser)


def plan(args: argparse.Namespace) -> int:
    """``fill --plan [--enqueue]``: the knob values for the user's own loop (trains nothing)."""
    from hpsearch.results.aim import plan_fill

    store = open_storage(args.storage, must_exist=True, read_only=not args.enqueue)
    study = load_stored_study(store, args.study)
    how = reading(args)
    aimed = plan_fill(
        study,
        n=args.n_trials or PLAN_TRIALS,
        method=args.method,
        alpha=how.alpha,
        losses=how.losses,
        objectives=how.objectives,
    )
    print(f"diagnosis: {aimed.diagnosis.verdict}\n")
    print(format_table(*aimed.table()))
    if aimed.minimized_form:
        print(f"\n{aimed.minimized_form}")
    if args.enqueue:
        queued = aimed.enqueue(study)
        print(
            f"\nqueued {queued} trials into {args.study!r}: run your study.optimize(objective) "
            "for them (hpsearch.fill_aim(trial) gives each its knobs), then hpsearch show "
            f"{args.study}",
            file=sys.stderr,
        )
    return 0
