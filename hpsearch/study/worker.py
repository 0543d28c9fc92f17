"""One worker process of a multi-process study: ``python -m hpsearch.study.worker`` reads its
assignment as JSON on stdin and runs trials until the study has its target.

:func:`hpsearch.study.runner.run_workers` starts these. The assignment travels on stdin, not
on the command line, and the storage URL in ``$HPSEARCH_STORAGE``: a password never shows in
``ps``.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from hpsearch.errors import run_reporting_errors
from hpsearch.study.config import load_study_file
from hpsearch.study.runner import WorkerAssignment, run_study
from hpsearch.study.storage import storage_from_environment


def _work(assignment: WorkerAssignment) -> int:
    config = load_study_file(assignment.study_file)
    # Workers started together must not draw the same parameters.
    offset = int.from_bytes(os.urandom(4), "little")
    options = dataclasses.replace(assignment.options, sampler_seed_offset=offset)
    # The launching process owns the dashboard's note and figures: publish=None.
    summary = run_study(config, storage_from_environment(), options, publish=None)
    print(
        f"worker {os.getpid()}: study {summary.study_name!r} has "
        f"{summary.counted_after}/{summary.target} trials"
    )
    return 0


def main() -> int:
    assignment = WorkerAssignment.from_json(sys.stdin.read())
    return run_reporting_errors(lambda: _work(assignment), prog="hpsearch worker")


if __name__ == "__main__":
    sys.exit(main())
