"""The ``hpsearch`` command: parses arguments and calls the library.

One class per command (:class:`hpsearch.cli._base.Command`), each owning its arguments, in a
module by what it does: ``running`` (run, worker), ``checking``, ``reading`` (list, show,
compare, importance), ``filling``, ``serving`` (dashboard) and ``labs`` (playground, mgs).
Only modules that do not import torch are imported here: ``list``, ``show`` and ``--help``
start fast; the commands that train import what they need when they run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hpsearch.cli._base import Command, OneLineErrorParser
from hpsearch.cli.checking import Check
from hpsearch.cli.filling import Fill
from hpsearch.cli.labs import Mgs, Playground
from hpsearch.cli.reading import Compare, Importance, List, Show
from hpsearch.cli.running import Run, Worker
from hpsearch.cli.serving import Dashboard
from hpsearch.errors import run_reporting_errors
from hpsearch.study.storage import storage_from_environment

# In the order `hpsearch --help` lists them.
COMMANDS: tuple[type[Command], ...] = (
    Run, Worker, Check, List, Show, Compare, Fill, Importance, Dashboard, Playground, Mgs,
)  # fmt: skip


def build_parser() -> OneLineErrorParser:
    """The argument parser of ``hpsearch``: one subparser per command of :data:`COMMANDS`."""
    parser = OneLineErrorParser(
        prog="hpsearch",
        description="Hyperparameter-search studies about loss trade-offs (alpha, flooding, "
        "learning rate, optimizer) with Optuna.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command_class in COMMANDS:
        command = command_class()
        p = sub.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(p)
        p.set_defaults(handler=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hpsearch``; returns the exit code.

    Errors the user can fix print one line (``hpsearch: error: …``) and exit 2 (study file or
    arguments) or 1 (storage); Ctrl-C exits 130 with what was stored kept.
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "storage", "") is None:
        args.storage = storage_from_environment()
    return run_reporting_errors(lambda: args.handler.run(args))


if __name__ == "__main__":
    sys.exit(main())
