"""What every ``hpsearch`` command shares: the :class:`Command` base class, argument types
that refuse in one line, and the options several commands take (storage, threads, the
reference point, how to read a study hpsearch did not make)."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from hpsearch.errors import EXIT_USAGE, HpsearchError, did_you_mean
from hpsearch.results.points import Reading
from hpsearch.study.limits import check_limit
from hpsearch.study.storage import DEFAULT_STORAGE, STORAGE_ENV, writable, writable_folder

if TYPE_CHECKING:
    from hpsearch.core.threads import ThreadPlan
    from hpsearch.study.runner import Publisher


class Command(ABC):
    """One ``hpsearch`` command: its name and texts, its arguments, and what it does.

    The top-level parser adds one subparser per command from these; each command owns its
    arguments (:meth:`add_arguments`), and :meth:`run` only turns them into calls of the
    library.
    """

    name: ClassVar[str]
    help: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments."""

    @abstractmethod
    def run(self, args: argparse.Namespace) -> int:
        """Do it; return the exit code (errors are raised, see :mod:`hpsearch.errors`)."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # An invalid choice (a command, --method) also names the choice meant, if one is close.
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as e:
            hint = did_you_mean(value, action.choices or ())
            raise argparse.ArgumentError(action, e.message + hint) from None


def limited_int(name: str) -> Callable[[str], int]:
    """An argparse type for the run limit ``name``: the same caps as the study file's."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        problem = check_limit(name, value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def device_name(text: str) -> str:
    """A device's name, by form (whether it is there is checked when the run starts)."""
    from hpsearch.core.device import check_device_name

    try:
        return check_device_name(text)
    except HpsearchError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def port(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535], got {value}")
    return value


def output_file(suffix: str) -> Callable[[str], Path]:
    """An argument type for a file a command writes (``--plot PNG``, ``--json FILE``),
    checked before any work: it ends in ``suffix``, is not a folder, and its folder exists
    (never created: a typo would put the file elsewhere) and can be written."""

    def checked(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(
                f"{text} is a folder; give a file name such as {path / ('out' + suffix)}"
            )
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"give a file name ending in {suffix}, got {text!r}")
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"no folder {str(folder)!r} for {text}")
        if not writable(path):
            raise argparse.ArgumentTypeError(f"cannot write {text}: read-only or not yours")
        return path

    return checked


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Name a failure to write a command's output file as that (a full or read-only disk
    there), not as a fault of the study's storage."""
    try:
        yield
    except OSError as e:
        if not e.filename:
            raise  # no file named: it may be the storage's (a journal's write)
        where, mine = Path(e.filename).resolve(), Path(path).resolve()
        if where != mine and mine not in where.parents:
            raise  # another file's fault (a journal storage's): named as a storage fault
        raise HpsearchError(f"cannot write {path}: {e.strerror or e}") from None


def output_folder(text: str) -> Path:
    """An argument type for a folder a command writes its files to (``--out DIR``), checked
    before any work: not a file; created if missing, inside a folder that exists; writable."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {str(folder)!r} for {text}")
    if not writable_folder(folder):
        raise argparse.ArgumentTypeError(f"cannot write in {str(folder)!r}: read-only or not yours")
    return path


def add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        default=None,
        metavar="URL",
        help=(
            f"Optuna storage URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE}, a file "
            f"in the working directory); a URL with a password is better given in ${STORAGE_ENV}"
        ),
    )


def reference_point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected two numbers L1,L2 (e.g. 1.0,25), got {text!r}")
    return values[0], values[1]


def assignment(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"] if sep and key.strip() else None
    except tomllib.TOMLDecodeError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE with a TOML value (lambda_lr=0.5, optimizer='sgd'), got {text!r}"
        )
    return key.strip(), parsed


def name_pair(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two names KEY1,KEY2, got {text!r}")
    return parts[0], parts[1]


def index_pair(text: str) -> tuple[int, int]:
    try:
        first, second = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two indices I,J (e.g. 0,2), got {text!r}"
        ) from None
    return first, second


def add_reading(p: argparse.ArgumentParser) -> None:
    """How to read a study hpsearch did not make (any Optuna study)."""
    p.add_argument(
        "--alpha",
        metavar="PARAM",
        help="the parameter that holds alpha, the weight of L2 in L1 + alpha*L2 (default: "
        "alpha, where the trials have it)",
    )
    p.add_argument(
        "--losses",
        type=name_pair,
        metavar="KEY1,KEY2",
        help="a single-objective study: the two user attributes that hold L1 and L2 (default: "
        "those hpsearch.record writes)",
    )
    p.add_argument(
        "--objectives",
        type=index_pair,
        metavar="I,J",
        help="a study of three or more objectives: the two to trade off (indices from 0)",
    )


def reading(args: argparse.Namespace) -> Reading:
    return Reading(alpha=args.alpha, losses=args.losses, objectives=args.objectives)


def add_reference(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ref",
        type=reference_point,
        metavar="L1,L2",
        help="fixed reference point of the hypervolumes, in the losses' own units (default: "
        "1.1 x the joint front's range beyond its ideal point, per loss)",
    )


def add_threads(p: argparse.ArgumentParser, from_study_file: bool = False) -> None:
    default = (
        "the study file's threads, else $OMP_NUM_THREADS, else the usable cores divided by "
        "the workers"
        if from_study_file
        else "$OMP_NUM_THREADS, else the usable cores"
    )
    p.add_argument(
        "--threads",
        type=limited_int("threads"),
        metavar="N",
        help=f"torch threads per training process (default: {default})",
    )


def choose_threads(
    args: argparse.Namespace, workers: int = 1, in_file: int | None = None
) -> ThreadPlan:
    """Choose the torch threads of each training process and apply them to this one (a
    launcher of workers passes them on instead). Called before torch is imported, so that
    OpenMP starts with them; the caller prints ``plan.describe()`` once the inputs are valid
    (a command that fails prints its one error line, nothing before it)."""
    from hpsearch.core.threads import apply_threads, plan_threads

    if args.threads is not None:
        plan = plan_threads(workers, args.threads)
    else:
        plan = plan_threads(workers, in_file, "the study file's threads")
    if workers == 1:
        apply_threads(plan.threads, follow_load=plan.chosen)
    return plan


def announce_threads(args: argparse.Namespace, in_file: int | None) -> int:
    """Choose and apply the threads of a command that trains one study file at a time (see
    :func:`choose_threads`), say so on stderr, and return them."""
    plan = choose_threads(args, in_file=in_file)
    print(plan.describe(), file=sys.stderr)
    return plan.threads


def publisher(storage: str) -> Publisher:
    """Publishes a running study to the dashboard, its PNG into ``storage``'s artifacts."""

    def publish(study: Any, final: bool) -> None:  # an optuna.Study
        # Imported on the first call: plotly and optuna_dashboard are slow to import.
        from hpsearch.results.publish import artifact_dir, publish_study

        publish_study(study, artifact_dir(storage) if final else None)

    return publish
