"""``hpsearch playground`` and ``hpsearch mgs``: the labs, run from a file of their own; one
handler (:class:`LabCommand`) for both."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from abc import abstractmethod
from typing import Any, ClassVar

from hpsearch.cli._base import (
    Command,
    add_storage,
    add_threads,
    announce_threads,
    limited_int,
    output_folder,
    writing,
)
from hpsearch.study.storage import open_storage


class LabCommand(Command):
    """A lab run from its file: the file's config with the flags given (``--n-trials`` and
    the run budget), progress one line per study, results written to ``--out``.

    Attributes:
        file_argument: The name of the file argument.
        file_help: Its help.
        budget: The config field of the run budget its flag overrides (``steps``, ``epochs``).
        budget_metavar, budget_help: That flag's metavar and help.
        out_help: The help of ``--out`` (its default is the command's name).
        trials_help: The help of ``--n-trials``.
    """

    file_argument: ClassVar[str]
    file_help: ClassVar[str]
    budget: ClassVar[str]
    budget_metavar: ClassVar[str]
    budget_help: ClassVar[str]
    out_help: ClassVar[str]
    trials_help: ClassVar[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.file_argument, metavar=self.file_argument.upper(), help=self.file_help
        )
        add_storage(parser)
        parser.add_argument(
            "--out", type=output_folder, default=self.name, metavar="DIR", help=self.out_help
        )
        parser.add_argument(
            "--n-trials", type=limited_int("n_trials"), metavar="N", help=self.trials_help
        )
        parser.add_argument(
            f"--{self.budget}",
            type=limited_int(self.budget),
            metavar=self.budget_metavar,
            help=self.budget_help,
        )
        add_threads(parser)

    @abstractmethod
    def load(self, path: str) -> Any:
        """The lab's config, read from its file."""

    @abstractmethod
    def launch(self, config: Any, storage: Any, out: str) -> None:
        """Run the lab."""

    @abstractmethod
    def written(self, config: Any) -> str:
        """What the run wrote, for the last line."""

    def run(self, args: argparse.Namespace) -> int:
        import optuna

        config = self.load(getattr(args, self.file_argument))
        flags = {"n_trials": args.n_trials, self.budget: getattr(args, self.budget)}
        config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress: one line per study
        store = open_storage(args.storage)
        announce_threads(args, config.threads)
        with writing(args.out):
            self.launch(config, store, args.out)
        print(f"wrote {self.written(config)} to {args.out}/", file=sys.stderr)
        return 0


class Playground(LabCommand):
    name = "playground"
    help = "optimizer playground: tune and draw six optimizers on 2-D test functions"
    description = (
        "For every test function and optimizer of the playground file, tune the learning rate"
        " (and its decay, and the momentum) with Optuna for the fewest steps to the "
        "tolerance, then draw the trajectories over contour plots and write a table."
    )
    file_argument, budget = "playground_file", "steps"
    file_help = "TOML file"
    out_help = "folder for the figures and the table (default: ./playground)"
    trials_help = (
        "target number of trials of each function x optimizer study, stored ones included "
        "(default: the file's n_trials)"
    )
    budget_metavar = "S"
    budget_help = (
        "step budget of one run, the playground's epochs (default: the file's steps; a stored "
        "study continues only at the budget it was tuned with)"
    )

    def load(self, path: str) -> Any:
        from hpsearch.labs.playground import load_playground_file

        return load_playground_file(path)

    def launch(self, config: Any, storage: Any, out: str) -> None:
        from hpsearch.labs.playground import run_playground

        run_playground(config, storage, out)

    def written(self, config: Any) -> str:
        return f"the figures and {config.name}.md"


class Mgs(LabCommand):
    name = "mgs"
    help = "train for a non-differentiable metric: MGS vs REINFORCE vs cross-entropy"
    description = (
        "Tune MLE-guided parameter search (sigma, alpha, lambda, n, lr), REINFORCE and cross-"
        "entropy training with Optuna on the metric of an [mgs] study file, re-run the best "
        "of each over several seeds, and draw the metric against wall time."
    )
    file_argument, budget = "mgs_file", "epochs"
    file_help = "TOML file with an [mgs] table"
    out_help = "folder for the figure and table (./mgs)"
    trials_help = (
        "target number of trials of each estimator's study, stored ones included (default: "
        "the file's n_trials)"
    )
    budget_metavar = "E"
    budget_help = (
        "epochs of every training run, tuning and re-runs (default: the file's epochs; a stored "
        "study continues only at the budget it was tuned with)"
    )

    def load(self, path: str) -> Any:
        from hpsearch.labs.mgs_study import load_mgs_file

        return load_mgs_file(path)

    def launch(self, config: Any, storage: Any, out: str) -> None:
        from hpsearch.labs.mgs_study import run_mgs_study

        run_mgs_study(config, storage, out)

    def written(self, config: Any) -> str:
        return f"{config.name}.png and {config.name}.md"
