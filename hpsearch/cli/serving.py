"""``hpsearch dashboard``: optuna-dashboard on a storage."""

from __future__ import annotations

import argparse

from hpsearch.cli._base import Command, add_storage, port


class Dashboard(Command):
    name = "dashboard"
    help = "serve optuna-dashboard on a storage"
    description = (
        "Serve optuna-dashboard on the storage until Ctrl-C. It shows running studies live."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_storage(parser)
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
        )
        parser.add_argument("--port", type=port, default=8080, help="port (default: 8080)")

    def run(self, args: argparse.Namespace) -> int:
        from hpsearch.results.dashboard import serve_dashboard  # the dashboard only when asked

        serve_dashboard(args.storage, host=args.host, port=args.port)
        return 0
