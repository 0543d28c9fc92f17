"""``hpsearch run`` and ``hpsearch worker``: train the trials of a study file."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from hpsearch.cli._base import (
    Command,
    add_storage,
    add_threads,
    choose_threads,
    device_name,
    limited_int,
    positive_float,
    positive_int,
    publisher,
)
from hpsearch.core.device import DEVICE_NAMES, resolve_device
from hpsearch.results.points import points_of_study
from hpsearch.results.report import format_table, load_stored_study, points_table
from hpsearch.study.storage import (
    GRACE_INTERVALS,
    HEARTBEAT_SECONDS,
    describe_storage,
    open_storage,
)

if TYPE_CHECKING:
    from hpsearch.study.config import StudyConfig
    from hpsearch.study.runner import Publisher, RunOptions, RunSummary


class _StudyRun(Command):
    """What ``run`` and ``worker`` share: the study file and the options of a run."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "study_file", metavar="STUDY_FILE", help="TOML study file (see studies/)"
        )
        add_storage(parser)
        parser.add_argument(
            "--n-trials",
            type=limited_int("n_trials"),
            metavar="N",
            help="target number of trials of the study, stored ones and other workers' "
            "included (default: the file's n_trials)",
        )
        parser.add_argument(
            "--timeout",
            type=positive_float,
            metavar="S",
            help="start no new trial after S seconds (default: the file's timeout)",
        )
        parser.add_argument(
            "--batch",
            type=limited_int("batch"),
            metavar="K",
            help="population mode: ask for K trials at once and train them as one batched "
            "model (default: the file's batch, 1)",
        )
        parser.add_argument(
            "--heartbeat",
            type=positive_int,
            default=HEARTBEAT_SECONDS,
            metavar="S",
            help="seconds between heartbeats of a running trial; a trial silent for "
            f"{GRACE_INTERVALS} beats (its worker was killed) is retried by another worker "
            f"(default: {HEARTBEAT_SECONDS}; SQLite and PostgreSQL storages)",
        )
        parser.add_argument(
            "--seed",
            type=limited_int("seed"),
            metavar="S",
            help="seed of the sampler and of training (default: the file's seed)",
        )
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        parser.add_argument(
            "--no-dashboard",
            action="store_true",
            help="do not write the optuna-dashboard note, figures and PNG artifact (saves "
            "about 2 s of start-up per process)",
        )
        add_threads(parser, from_study_file=True)
        parser.add_argument(
            "--device",
            type=device_name,
            metavar="DEVICE",
            help=f"where to train: {', '.join(DEVICE_NAMES)} (auto: a GPU where there is one); "
            "the data is moved there once (default: the file's device, cpu)",
        )

    @staticmethod
    def options(args: argparse.Namespace, threads: int, **more: Any) -> RunOptions:
        """What both pass on to the run loop (see their shared arguments above)."""
        from hpsearch.study.runner import RunOptions  # starts torch

        return RunOptions(
            n_trials=args.n_trials,
            timeout=args.timeout,
            seed=args.seed,
            batch=args.batch,
            heartbeat=args.heartbeat,
            threads=threads,
            device=args.device,
            progress=not args.no_progress,
            **more,
        )

    @staticmethod
    def check_run(args: argparse.Namespace, config: StudyConfig) -> None:
        """Refuse, in one line and before the storage is opened or anything written, a
        device that is not there (``--device``, else the file's) and a population batch
        (``--batch``, else the file's) the study's inner method cannot train."""
        from hpsearch.study.config import check_batch_method

        resolve_device(args.device or config.device)
        check_batch_method(config, args.batch or config.batch)

    @staticmethod
    def publish(args: argparse.Namespace) -> Publisher | None:
        return None if args.no_dashboard else publisher(args.storage)


class Run(_StudyRun):
    name = "run"
    help = "run or continue the study of a study file"
    description = (
        "Run a study file until the study has its target number of trials. Rerunning "
        "continues the stored study; it neither restarts nor overshoots. With --workers N, N "
        "processes share the study."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--workers",
            type=limited_int("workers"),
            default=1,
            metavar="N",
            help="run the study in N worker processes sharing the storage (default: 1)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.study.config import load_study_file

        config = load_study_file(args.study_file)  # a bad file writes nothing
        plan = choose_threads(args, args.workers, config.threads)
        self.check_run(args, config)
        # Opened once for the run, its dashboard refreshes and the table printed after it (the
        # workers open it from its URL, each in its process).
        store = open_storage(args.storage, heartbeat=args.heartbeat)
        from hpsearch.study.runner import run_study, run_workers  # starts torch

        options = self.options(args, plan.threads, workers=args.workers)

        def announce() -> None:
            print(plan.describe(), file=sys.stderr)

        if args.workers > 1:
            summary = run_workers(
                args.study_file, args.storage, options, self.publish(args), announce
            )
        else:
            summary = run_study(config, store, options, self.publish(args), announce)
        print_summary(summary, args.storage)
        study = load_stored_study(store, summary.study_name)
        if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):  # not all diverged
            print(format_table(*points_table(study, points_of_study(study), top=5)))
        return 0


class Worker(_StudyRun):
    name = "worker"
    help = "join a study from any machine and run trials until it has its target"
    description = (
        "Join the study of a study file on a shared storage (PostgreSQL for many machines) "
        "and run trials until the study, all workers together, has its target number of "
        "trials. Start as many as you like, at any time."
    )

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.study.config import load_study_file

        config = load_study_file(args.study_file)
        plan = choose_threads(args, in_file=config.threads)
        self.check_run(args, config)
        store = open_storage(args.storage, heartbeat=args.heartbeat)
        from hpsearch.study.runner import run_study  # starts torch

        # Workers started together must not draw the same parameters.
        offset = int.from_bytes(os.urandom(4), "little")
        options = self.options(args, plan.threads, sampler_seed_offset=offset)
        announce = lambda: print(plan.describe(), file=sys.stderr)  # noqa: E731
        summary = run_study(config, store, options, self.publish(args), announce)
        print_summary(summary, args.storage)
        return 0


def print_summary(summary: RunSummary, storage: str) -> None:
    print(
        f"study {summary.study_name!r}: {summary.counted_after}/{summary.target} trials "
        f"({summary.counted_after - summary.counted_before} new, {summary.failed} diverged) "
        f"in {describe_storage(storage)}"
    )
