"""The ``hpsearch`` command: parses arguments and calls the library."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from optuna.trial import TrialState

from hpsearch.core.knobs import AIMING_KNOBS

# Only modules that do not import torch at the top: `list`, `show` and `--help` start fast.
# The commands that train import what they need when they run.
from hpsearch.errors import (
    EXIT_USAGE,
    HpsearchError,
    StudyFileError,
    did_you_mean,
    run_reporting_errors,
)
from hpsearch.results.points import Reading, points_of_study
from hpsearch.results.report import (
    format_table,
    list_studies,
    load_stored_study,
    points_table,
)
from hpsearch.study.limits import check_limit
from hpsearch.study.storage import (
    DEFAULT_STORAGE,
    GRACE_INTERVALS,
    HEARTBEAT_SECONDS,
    STORAGE_ENV,
    describe_storage,
    open_storage,
    storage_from_environment,
)

if TYPE_CHECKING:
    from hpsearch.core.threads import ThreadPlan
    from hpsearch.results.compare import Comparison
    from hpsearch.study.runner import Publisher, RunSummary


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


class _OneLineErrorParser(argparse.ArgumentParser):
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


def _limited_int(name: str) -> Callable[[str], int]:
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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be in [0, 65535], got {value}")
    return value


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        default=None,
        help=(
            f"Optuna storage URL (default: ${STORAGE_ENV} if set, else {DEFAULT_STORAGE}, a file "
            f"in the working directory); a URL with a password is better given in ${STORAGE_ENV}"
        ),
    )


def _reference_point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected two numbers L1,L2 (e.g. 1.0,25), got {text!r}")
    return values[0], values[1]


def _assignment(text: str) -> tuple[str, object]:
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


def _name_pair(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected two names KEY1,KEY2, got {text!r}")
    return parts[0], parts[1]


def _index_pair(text: str) -> tuple[int, int]:
    try:
        first, second = (int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two indices I,J (e.g. 0,2), got {text!r}"
        ) from None
    return first, second


def _add_reading(p: argparse.ArgumentParser) -> None:
    """How to read a study hpsearch did not make (any Optuna study)."""
    p.add_argument(
        "--alpha",
        metavar="PARAM",
        help="the parameter that holds alpha, the weight of L2 in L1 + alpha*L2 (default: "
        "alpha, where the trials have it)",
    )
    p.add_argument(
        "--losses",
        type=_name_pair,
        metavar="KEY1,KEY2",
        help="a single-objective study: the two user attributes that hold L1 and L2 (default: "
        "those hpsearch.record writes)",
    )
    p.add_argument(
        "--objectives",
        type=_index_pair,
        metavar="I,J",
        help="a study of three or more objectives: the two to trade off (indices from 0)",
    )


def _reading(args: argparse.Namespace) -> Reading:
    return Reading(alpha=args.alpha, losses=args.losses, objectives=args.objectives)


def _add_reference(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ref",
        type=_reference_point,
        metavar="L1,L2",
        help="fixed reference point of the hypervolumes, in the losses' own units (default: "
        "1.1 x the joint front's range beyond its ideal point, per loss)",
    )


def _add_threads(p: argparse.ArgumentParser, from_study_file: bool = False) -> None:
    default = (
        "the study file's threads, else $OMP_NUM_THREADS, else the usable cores divided by "
        "the workers"
        if from_study_file
        else "$OMP_NUM_THREADS, else the usable cores"
    )
    p.add_argument(
        "--threads",
        type=_limited_int("threads"),
        metavar="N",
        help=f"torch threads per training process (default: {default})",
    )


def _choose_threads(
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


# Default trials of `hpsearch fill`: a follow-up that hpsearch trains, or a plan for your loop.
FILL_TRIALS = 30
PLAN_TRIALS = 8


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hpsearch`` and its subcommands."""
    parser = _OneLineErrorParser(
        prog="hpsearch",
        description="Hyperparameter-search studies about loss trade-offs (alpha, flooding, "
        "learning rate, optimizer) with Optuna.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run or continue the study of a study file",
        description="Run a study file until the study has its target number "
        "of trials. Rerunning continues the stored study; it neither restarts "
        "nor overshoots. With --workers N, N processes share the study.",
    )
    worker = sub.add_parser(
        "worker",
        help="join a study from any machine and run trials until it has its target",
        description="Join the study of a study file on a shared storage (PostgreSQL for many "
        "machines) and run trials until the study, all workers together, has its target "
        "number of trials. Start as many as you like, at any time.",
    )
    for p in (run, worker):
        p.add_argument("study_file", metavar="STUDY_FILE", help="TOML study file (see studies/)")
        _add_storage(p)
        p.add_argument(
            "--n-trials",
            type=_limited_int("n_trials"),
            metavar="N",
            help="target number of trials of the study, stored ones and other workers' "
            "included (default: the file's n_trials)",
        )
        p.add_argument(
            "--timeout",
            type=_positive_float,
            metavar="S",
            help="start no new trial after S seconds (default: the file's timeout)",
        )
        p.add_argument(
            "--batch",
            type=_limited_int("batch"),
            metavar="K",
            help="population mode: ask for K trials at once and train them as one batched "
            "model (default: the file's batch, 1)",
        )
        p.add_argument(
            "--heartbeat",
            type=_positive_int,
            default=HEARTBEAT_SECONDS,
            metavar="S",
            help="seconds between heartbeats of a running trial; a trial silent for "
            f"{GRACE_INTERVALS} beats (its worker was killed) is retried by another worker "
            f"(default: {HEARTBEAT_SECONDS}; SQLite and PostgreSQL storages)",
        )
        p.add_argument(
            "--seed",
            type=_limited_int("seed"),
            metavar="S",
            help="seed of the sampler and of training (default: the file's seed)",
        )
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        p.add_argument(
            "--no-dashboard",
            action="store_true",
            help="do not write the optuna-dashboard note, figures and PNG artifact (saves "
            "about 2 s of start-up per process)",
        )
        _add_threads(p, from_study_file=True)
    run.add_argument(
        "--workers",
        type=_limited_int("workers"),
        default=1,
        metavar="N",
        help="run the study in N worker processes sharing the storage (default: 1)",
    )

    check = sub.add_parser(
        "check",
        help="validate study files without running them",
        description="Validate study files: exit 0 when all are valid, "
        "2 with one line per bad file otherwise.",
    )
    check.add_argument("study_files", nargs="+", metavar="STUDY_FILE")
    check.add_argument(
        "--imports",
        action="store_true",
        help="also run the code a file's study.imports lists (off by default: checking a "
        "file runs none of its code)",
    )

    lst = sub.add_parser(
        "list",
        help="list the studies in a storage",
        description="List studies with trial counts and best value "
        "(scalarized) or Pareto-front size (pareto).",
    )
    _add_storage(lst)

    show = sub.add_parser(
        "show",
        help="best trials or Pareto front of a study, and the diagnosis",
        description="Print the best trials of a scalarized study, or the Pareto front of a "
        "pareto study, with both losses, the metric and the searched parameters, then the "
        "diagnosis: can linear alpha reach every point of the front? Reads any Optuna study: "
        "two objectives (a maximized one in its own sign), or one objective whose trials "
        "record both losses (hpsearch.record, or --losses).",
    )
    show.add_argument("study", metavar="STUDY", help="study name")
    _add_storage(show)
    _add_reading(show)
    show.add_argument(
        "--top",
        type=_positive_int,
        default=10,
        metavar="N",
        help="rows for a scalarized study (default: 10)",
    )
    show.add_argument(
        "--plot",
        metavar="PNG",
        help="also draw the trials in (validation L1, validation L2) with their Pareto front, "
        "and the course of the search, to this PNG file",
    )

    cmp = sub.add_parser(
        "compare",
        help="put studies in one objective space: fronts, hypervolume, scalarization gap",
        description="Compare studies of the same setup in (validation L1, validation L2): "
        "per study the Pareto size, hypervolume (one normalization and reference point for "
        "all), the scalarization gap HV(front) - HV(supported part), and a verdict on what "
        "linear alpha can reach. Writes compare.png, compare.csv and compare.md to --out.",
    )
    cmp.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
    _add_storage(cmp)
    _add_reading(cmp)
    cmp.add_argument(
        "--out",
        default="compare",
        metavar="DIR",
        help="folder for compare.png/.csv/.md/.json (default: ./compare)",
    )
    _add_reference(cmp)

    fill = sub.add_parser(
        "fill",
        help="run a follow-up study aimed into the stretches of a front that linear alpha skips",
        description="Diagnose STUDY's front; for each concave stretch (or unresolved hole), "
        "queue trials of a follow-up study (same setup, data, budget and seed; its own name) "
        "whose MDMM epsilon or Chebyshev w aims inside it, run them, and print the combined "
        "front with the hypervolume before and after. Rerunning continues the follow-up.",
    )
    fill.add_argument("study", metavar="STUDY", help="the study to fill (e.g. a linear-alpha one)")
    _add_storage(fill)
    fill.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: print the knob values (Chebyshev w with its ideal point and "
        "scales, or MDMM epsilon) that aim into each stretch, for your own training loop; "
        "works on any Optuna study",
    )
    fill.add_argument(
        "--enqueue",
        action="store_true",
        help="--plan, and also queue those trials into STUDY (enqueue_trial), so that your next "
        "study.optimize(objective) runs them; your objective reads them with hpsearch.fill_aim",
    )
    _add_reading(fill)
    fill.add_argument(
        "--method",
        choices=tuple(AIMING_KNOBS),
        default="chebyshev",
        help="inner method of the follow-up: chebyshev (weight w, normalize none; default) or "
        "mdmm (epsilon = a budget for L2; its multiplier must converge within the budget: see "
        "--set lambda_lr=...)",
    )
    fill.add_argument(
        "--set",
        type=_assignment,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a parameter of the follow-up (TOML value), e.g. --set lambda_lr=0.5; repeatable",
    )
    fill.add_argument(
        "--n-trials",
        type=_positive_int,
        metavar="N",
        help="trials of the follow-up, spread over the stretches by their length (default: "
        f"{FILL_TRIALS}; {PLAN_TRIALS} with --plan)",
    )
    fill.add_argument(
        "--study-file",
        metavar="FILE",
        help="the study file of STUDY, if it is no longer where it was run from",
    )
    fill.add_argument(
        "--name", metavar="NAME", help="name of the follow-up study (default: STUDY-fill-METHOD)"
    )
    fill.add_argument(
        "--out", metavar="DIR", help="also write compare.png/.csv/.md/.json of both to DIR"
    )
    _add_reference(fill)
    fill.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_threads(fill)
    fill.add_argument(
        "--no-dashboard", action="store_true", help="do not publish to optuna-dashboard"
    )

    imp = sub.add_parser(
        "importance",
        help="which searched parameter matters most: fANOVA or PED-ANOVA importances",
        description="Per target (each objective of the study and the validation metric), the "
        "share of its variation over the complete trials that each searched parameter "
        "explains, by Optuna's fANOVA (a random forest, seeded) or PED-ANOVA. Each column sums "
        "to 1. The same chart is in the dashboard once a run of the study ends.",
    )
    imp.add_argument("study", metavar="STUDY", help="study name")
    _add_storage(imp)
    imp.add_argument(
        "--evaluator",
        choices=("fanova", "ped_anova"),
        default="fanova",
        help="fanova (default) or ped_anova",
    )
    imp.add_argument("--plot", metavar="PNG", help="also draw the importances to this PNG file")
    imp.add_argument("--json", metavar="FILE", help="also write them as JSON to this file")
    imp.add_argument(
        "--no-dashboard",
        action="store_true",
        help="do not save the chart to the study for optuna-dashboard (then the storage is "
        "only read)",
    )

    dash = sub.add_parser(
        "dashboard",
        help="serve optuna-dashboard on a storage",
        description="Serve optuna-dashboard on the storage until Ctrl-C. "
        "It shows running studies live.",
    )
    _add_storage(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    dash.add_argument("--port", type=_port, default=8080, help="port (default: 8080)")

    play = sub.add_parser(
        "playground",
        help="optimizer playground: tune and draw six optimizers on 2-D test functions",
        description="For every test function and optimizer of the playground file, tune the "
        "learning rate (and its decay, and the momentum) with Optuna for the fewest steps to "
        "the tolerance, then draw the trajectories over contour plots and write a table.",
    )
    play.add_argument("playground_file", metavar="PLAYGROUND_FILE", help="TOML file")
    _add_storage(play)
    play.add_argument(
        "--out",
        default="playground",
        metavar="DIR",
        help="folder for the figures and the table (default: ./playground)",
    )
    play.add_argument(
        "--n-trials",
        type=_limited_int("n_trials"),
        metavar="N",
        help="target number of trials of each function x optimizer study, stored ones "
        "included (default: the file's n_trials)",
    )
    play.add_argument(
        "--steps",
        type=_limited_int("steps"),
        metavar="S",
        help="step budget of one run, the playground's epochs (default: the file's steps; a "
        "stored study continues only at the budget it was tuned with)",
    )
    _add_threads(play)

    mgs = sub.add_parser(
        "mgs",
        help="train for a non-differentiable metric: MGS vs REINFORCE vs cross-entropy",
        description="Tune MLE-guided parameter search (sigma, alpha, lambda, n, lr), REINFORCE "
        "and cross-entropy training with Optuna on the metric of an [mgs] study file, re-run "
        "the best of each over several seeds, and draw the metric against wall time.",
    )
    mgs.add_argument("mgs_file", metavar="MGS_FILE", help="TOML file with an [mgs] table")
    _add_storage(mgs)
    mgs.add_argument(
        "--out", default="mgs", metavar="DIR", help="folder for the figure and table (./mgs)"
    )
    mgs.add_argument(
        "--n-trials",
        type=_limited_int("n_trials"),
        metavar="N",
        help="target number of trials of each estimator's study, stored ones included "
        "(default: the file's n_trials)",
    )
    mgs.add_argument(
        "--epochs",
        type=_limited_int("epochs"),
        metavar="E",
        help="epochs of every training run, tuning and re-runs (default: the file's epochs; a "
        "stored study continues only at the budget it was tuned with)",
    )
    _add_threads(mgs)
    return parser


def _run_options(args: argparse.Namespace) -> dict:
    # What `run` and `worker` pass on alike (see their shared arguments in build_parser).
    return {
        "storage": args.storage,
        "n_trials": args.n_trials,
        "timeout": args.timeout,
        "seed": args.seed,
        "batch": args.batch,
        "heartbeat": args.heartbeat,
        "progress": not args.no_progress,
        "publish": None if args.no_dashboard else _publisher(args.storage),
    }


def _publisher(storage: str) -> Publisher:
    """Publishes a running study to the dashboard, its PNG into ``storage``'s artifacts."""

    def publish(study: Any, final: bool) -> None:  # an optuna.Study
        # Imported on the first call: plotly and optuna_dashboard are slow to import.
        from hpsearch.results.publish import artifact_dir, publish_study

        publish_study(study, artifact_dir(storage) if final else None)

    return publish


def _cmd_run(args: argparse.Namespace) -> int:
    from hpsearch.study.config import load_study_file

    options = _run_options(args)
    config = load_study_file(args.study_file)  # a bad file writes nothing
    plan = _choose_threads(args, args.workers, config.threads)
    # Opened once for the run, its dashboard refreshes and the table printed after it (the
    # workers open it from its URL, each in its process).
    store = open_storage(args.storage, heartbeat=args.heartbeat)
    from hpsearch.study.runner import run_study, run_workers  # starts torch

    def announce() -> None:
        print(plan.describe(), file=sys.stderr)

    if args.workers > 1:
        summary = run_workers(
            args.study_file, args.workers, **options, threads=plan.threads, on_start=announce
        )
    else:
        summary = run_study(config, **{**options, "storage": store}, on_start=announce)
    _print_summary(summary, args.storage)
    study = load_stored_study(store, summary.study_name)
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):  # not all diverged
        print(format_table(*points_table(study, points_of_study(study), top=5)))
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from hpsearch.study.config import load_study_file

    config = load_study_file(args.study_file)
    plan = _choose_threads(args, in_file=config.threads)
    store = open_storage(args.storage, heartbeat=args.heartbeat)
    from hpsearch.study.runner import run_study  # starts torch

    summary = run_study(
        config,
        **{**_run_options(args), "storage": store},
        on_start=lambda: print(plan.describe(), file=sys.stderr),
        # Workers started together must not draw the same parameters.
        sampler_seed_offset=int.from_bytes(os.urandom(4), "little"),
    )
    _print_summary(summary, args.storage)
    return 0


def _print_summary(summary: RunSummary, storage: str) -> None:
    print(
        f"study {summary.study_name!r}: {summary.counted_after}/{summary.target} trials "
        f"({summary.counted_after - summary.counted_before} new, {summary.failed} diverged) "
        f"in {describe_storage(storage)}"
    )


def _cmd_check(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.study_files:
        try:
            summary = _check_one(path, args.imports)
        except StudyFileError as e:
            print(f"hpsearch: error: {e}", file=sys.stderr)
            bad += 1
        else:
            print(f"{path}: ok ({summary})")
    return EXIT_USAGE if bad else 0


def _check_one(path: str, run_imports: bool) -> str:
    """Validate a study, playground or MGS file (told apart by its table) and describe it."""
    from hpsearch.study.config import load_study_file, read_toml_file

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


def _cmd_list(args: argparse.Namespace) -> int:
    rows = list_studies(args.storage)
    if not rows:
        print(f"no studies in {describe_storage(args.storage)}")
        return 0
    columns = [
        "study",
        "mode",
        "dataset",
        "setup",
        "complete",
        "pruned",
        "failed",
        "running",
        "best",
        "pareto",
    ]
    print(
        format_table(
            columns,
            [
                [
                    r.name,
                    r.mode,
                    r.dataset,
                    r.setup,
                    r.complete,
                    r.pruned,
                    r.failed,
                    r.running,
                    r.best,
                    r.pareto_size,
                ]
                for r in rows
            ],
        )
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from hpsearch.results.diagnose import describe_fill, diagnosis_of

    store = open_storage(args.storage, must_exist=True, read_only=True)  # once per command
    study = load_stored_study(store, args.study)
    points = points_of_study(study, _reading(args))  # read once: table, figure, diagnosis
    if args.plot:
        from hpsearch.results.plots import plot_study  # matplotlib only when a figure is asked for

        written = plot_study(points, args.plot)
        print(f"wrote {written}", file=sys.stderr)
    print(format_table(*points_table(study, points, top=args.top)))
    diagnosis = diagnosis_of(points)
    print(f"\ndiagnosis: {diagnosis.verdict}")
    if diagnosis.fill is not None:
        print(describe_fill(diagnosis.fill))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from hpsearch.results.compare import compare_studies, format_comparison

    comparison = compare_studies(args.storage, args.studies, args.ref, _reading(args))
    print(format_comparison(comparison))
    _write_comparison(comparison, args.out)
    return 0


def _write_comparison(comparison: Comparison, out: str) -> None:
    from hpsearch.results.compare import write_comparison

    paths = write_comparison(comparison, out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


def _cmd_fill(args: argparse.Namespace) -> int:
    if args.plan or args.enqueue:
        return _fill_plan(args)
    given = [f"--{k}" for k in ("alpha", "losses", "objectives") if getattr(args, k) is not None]
    if given:
        raise HpsearchError(
            f"{', '.join(given)}: only with --plan (a study hpsearch trains is read as its "
            "study file says)"
        )
    plan = _choose_threads(args)
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
        publish=None if args.no_dashboard else _publisher(args.storage),
        on_start=lambda: print(plan.describe(), file=sys.stderr),
    )
    print(format_comparison(result.comparison))
    before, after = result.before, result.after
    print(
        f"\nhypervolume of {args.study!r}: {before.hypervolume:.4f} before, "
        f"{after.hypervolume:.4f} with {result.plan.config.name!r} "
        f"({before.hypervolume_raw:.4g} -> {after.hypervolume_raw:.4g} in raw units, reference "
        f"({after.reference_raw[0]:.4g}, {after.reference_raw[1]:.4g}))"
    )
    if args.out:
        _write_comparison(result.comparison, args.out)
    return 0


def _fill_plan(args: argparse.Namespace) -> int:
    """``fill --plan [--enqueue]``: the knob values for the user's own loop (trains nothing)."""
    from hpsearch.results.aim import plan_fill

    store = open_storage(args.storage, must_exist=True, read_only=not args.enqueue)
    study = load_stored_study(store, args.study)
    reading = _reading(args)
    plan = plan_fill(
        study,
        n=args.n_trials or PLAN_TRIALS,
        method=args.method,
        alpha=reading.alpha,
        losses=reading.losses,
        objectives=reading.objectives,
    )
    print(f"diagnosis: {plan.diagnosis.verdict}\n")
    print(format_table(*plan.table()))
    if plan.minimized_form:
        print(f"\n{plan.minimized_form}")
    if args.enqueue:
        queued = plan.enqueue(study)
        print(
            f"\nqueued {queued} trials into {args.study!r}: run your study.optimize(objective) "
            "for them (hpsearch.fill_aim(trial) gives each its knobs), then hpsearch show "
            f"{args.study}",
            file=sys.stderr,
        )
    return 0


def _cmd_importance(args: argparse.Namespace) -> int:
    import json

    from hpsearch.results.importance import (
        format_importances,
        plot_importances,
        study_importances,
    )
    from hpsearch.results.report import load_stored_study

    store = open_storage(args.storage, must_exist=True, read_only=args.no_dashboard)
    study = load_stored_study(store, args.study)
    result = study_importances(study, args.evaluator)
    print(format_importances(result))
    if not args.no_dashboard:
        from hpsearch.results.publish import publish_importances

        publish_importances(study, result)
        print(f"saved the chart to {args.study!r} for optuna-dashboard", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot_importances(result, args.plot)}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_dict(), f, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from hpsearch.results.dashboard import serve_dashboard  # imports the dashboard only when needed

    serve_dashboard(args.storage, host=args.host, port=args.port)
    return 0


def _overridden(config: Any, **flags: Any) -> Any:
    """A lab file's config with the flags given on the command line (None: the file's value)."""
    import dataclasses

    return dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})


def _cmd_playground(args: argparse.Namespace) -> int:
    import optuna

    from hpsearch.labs.playground import load_playground_file, run_playground

    config = _overridden(
        load_playground_file(args.playground_file), n_trials=args.n_trials, steps=args.steps
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is one line per study
    plan = _choose_threads(args)
    store = open_storage(args.storage)
    print(plan.describe(), file=sys.stderr)
    run_playground(config, store, args.out)
    print(f"wrote the figures and {config.name}.md to {args.out}/", file=sys.stderr)
    return 0


def _cmd_mgs(args: argparse.Namespace) -> int:
    import optuna

    from hpsearch.labs.mgs_study import load_mgs_file, run_mgs_study

    config = _overridden(load_mgs_file(args.mgs_file), n_trials=args.n_trials, epochs=args.epochs)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # progress is one line per estimator
    plan = _choose_threads(args)
    store = open_storage(args.storage)
    print(plan.describe(), file=sys.stderr)
    run_mgs_study(config, store, args.out)
    print(f"wrote {config.name}.png and {config.name}.md to {args.out}/", file=sys.stderr)
    return 0


_COMMANDS = {
    "run": _cmd_run,
    "worker": _cmd_worker,
    "check": _cmd_check,
    "list": _cmd_list,
    "show": _cmd_show,
    "compare": _cmd_compare,
    "fill": _cmd_fill,
    "importance": _cmd_importance,
    "dashboard": _cmd_dashboard,
    "playground": _cmd_playground,
    "mgs": _cmd_mgs,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hpsearch``; returns the exit code.

    Errors the user can fix print one line (``hpsearch: error: …``) and exit 2 (study file or
    arguments) or 1 (storage); Ctrl-C exits 130 with what was stored kept.
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "storage", "") is None:
        args.storage = storage_from_environment()
    return run_reporting_errors(lambda: _COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
