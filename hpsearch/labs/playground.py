"""Optimizer playground: the six optimizers on 2-D test functions, as in seed 002.

Trajectories of SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam (torch's own, the same
ones the training core uses) over contour plots of an anisotropic quadratic, Rosenbrock's
valley, a saddle and Beale's function; a learning rate per axis (each coordinate is its own
parameter group) shows zig-zag and overshoot; and an Optuna study per function and optimizer
tunes the learning rate (with its per-step decay, and the momentum where there is one) for the
fewest steps to reach ``f − f* <= tolerance``.

The functions and the trajectory code know nothing of Optuna; :func:`run_playground` is the
one place they meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from hpsearch._lazy import lazy_import
from hpsearch.core.knobs import OPTIMIZERS
from hpsearch.core.options import Option
from hpsearch.labs.budget import check_budget, check_stored_budgets, trials_to_run
from hpsearch.study import keys
from hpsearch.study.limits import RUN_LIMITS
from hpsearch.study.validation import read_table_file

if TYPE_CHECKING:
    import torch

    from hpsearch.core import train
else:  # torch starts with the first trajectory, not when a playground file is checked
    torch = lazy_import("torch", globals())
    train = lazy_import("hpsearch.core.train", globals(), "train")


@dataclass(frozen=True)
class PlaygroundFunction:
    """A 2-D test function with its minimum value, a start point and a plotting window."""

    name: str
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    f_min: float
    start: tuple[float, float]
    window: tuple[float, float, float, float]  # x0, x1, y0, y1
    minima: tuple[tuple[float, float], ...]
    log_levels: bool = False


TEST_FUNCTIONS: dict[str, PlaygroundFunction] = {
    # Curvature 20 times larger along y than along x: one learning rate is too small for x or
    # too large for y, so plain gradient descent zig-zags across the valley.
    "quadratic": PlaygroundFunction(
        "quadratic",
        lambda x, y: 0.05 * x**2 + y**2,
        0.0,
        (-9.0, 2.5),
        (-10.0, 10.0, -3.5, 3.5),
        ((0.0, 0.0),),
    ),
    "rosenbrock": PlaygroundFunction(
        "rosenbrock",
        lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
        0.0,
        (-1.5, 2.0),
        (-2.0, 2.0, -1.0, 3.0),
        ((1.0, 1.0),),
        log_levels=True,
    ),
    # A saddle at the origin between two minima at (0, ±1) (f = −1/4): the start lies almost on
    # the saddle's attracting direction, so an optimizer first slows down near the saddle.
    "saddle": PlaygroundFunction(
        "saddle",
        lambda x, y: 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2,
        -0.25,
        (2.0, 1e-3),
        (-2.5, 2.5, -1.6, 1.6),
        ((0.0, 1.0), (0.0, -1.0)),
    ),
    "beale": PlaygroundFunction(
        "beale",
        lambda x, y: (
            (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2
        ),
        0.0,
        (1.0, 1.4),
        (-1.0, 4.5, -1.5, 2.0),
        ((3.0, 0.5),),
        log_levels=True,
    ),
}


@dataclass(frozen=True)
class Trajectory:
    """Points visited (``steps + 1`` × 2, the start first) and ``f − f*`` at each."""

    points: np.ndarray
    gaps: np.ndarray

    def steps_to(self, tolerance: float) -> int | None:
        """The first step at which ``f − f* <= tolerance``, or None if never."""
        hit = np.flatnonzero(self.gaps <= tolerance)
        return int(hit[0]) if len(hit) else None


def trajectory(
    function: PlaygroundFunction,
    optimizer: str,
    lr: float | tuple[float, float],
    steps: int,
    momentum: float = 0.9,
    lr_decay: float = 1.0,
    start: tuple[float, float] | None = None,
    stop_at: float | None = None,
) -> Trajectory:
    """Run ``optimizer`` on ``function`` for ``steps`` steps.

    Args:
        function: The test function.
        optimizer: One of :data:`hpsearch.OPTIMIZERS`.
        lr: One learning rate, or one per axis ``(lr_x, lr_y)``.
        steps: Number of steps.
        momentum: Momentum of ``momentum`` and ``nesterov``.
        lr_decay: Factor applied to the learning rate after every step.
        start: Start point (default: the function's).
        stop_at: Stop at the first point with ``f − f* <= stop_at`` (the rest stays NaN/inf).

    Returns:
        The :class:`Trajectory`; a run that leaves the finite numbers stops there, its
        remaining gaps set to inf.
    """
    lr_x, lr_y = (lr, lr) if isinstance(lr, int | float) else lr
    x0, y0 = function.start if start is None else start
    x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([y0], dtype=torch.float64, requires_grad=True)
    opt = train.make_optimizer(optimizer, [x], lr_x, momentum)
    # The y coordinate as a second parameter group: its own learning rate, same optimizer.
    opt.add_param_group({"params": [y], "lr": lr_y})
    points = np.full((steps + 1, 2), np.nan)
    gaps = np.full(steps + 1, np.inf)
    # (a stopped or diverged run keeps NaN points and inf gaps after its last step)
    for step in range(steps + 1):
        value = function.f(x, y).sum()
        px, py = float(x.detach()), float(y.detach())
        points[step] = (px, py)
        gap = float(value.detach()) - function.f_min
        if not math.isfinite(gap) or abs(px) > 1e6 or abs(py) > 1e6:
            break
        gaps[step] = max(gap, 0.0)
        if step == steps or (stop_at is not None and gaps[step] <= stop_at):
            break
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        if lr_decay != 1.0:
            for group in opt.param_groups:
                group["lr"] *= lr_decay
    return Trajectory(points=points, gaps=gaps)


# --- the playground file -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlaygroundConfig:
    """A validated playground file (``[playground]`` table).

    Attributes:
        path: The file.
        name: Prefix of the Optuna study names (``<name>-<function>-<optimizer>``).
        functions, optimizers: What to run.
        steps: Step budget of a run.
        tolerance: A run succeeds at the first step with ``f − f* <= tolerance``.
        n_trials: Trials of each study (one per function and optimizer).
        seed: Seed of the samplers.
        threads: Torch threads (default: hpsearch's choice; ``--threads`` beats it).
        lr_low, lr_high: Search range of the learning rate (log scale).
        axis_lr: The two learning rates of the per-axis figure (SGD on the quadratic).
    """

    path: str
    name: str = "playground"
    functions: tuple[str, ...] = tuple(TEST_FUNCTIONS)
    optimizers: tuple[str, ...] = OPTIMIZERS
    steps: int = 300
    tolerance: float = 1e-4
    n_trials: int = 30
    seed: int = 0
    threads: int | None = None
    lr_low: float = 1e-4
    lr_high: float = 1.0
    axis_lr: tuple[float, float] = (0.9, 0.2)


_PLAYGROUND_KEYS = (
    "name",
    "functions",
    "optimizers",
    "steps",
    "tolerance",
    "n_trials",
    "seed",
    "lr_range",
    "axis_lr",
    "threads",
)


_POSITIVE = Option("float", 1.0, low=0, high=1e3, low_open=True, high_open=True)


def load_playground_file(path: str | Path) -> PlaygroundConfig:
    """Read and validate a playground file.

    Raises:
        StudyFileError: Missing file, bad TOML, an unknown key or a value out of range; the
            message names the file, the key and what is allowed.
    """
    check, raw = read_table_file(path, "playground", _PLAYGROUND_KEYS)

    def number(key: str, option: Option) -> Any:
        return check.value(raw.get(key, option.default), f"playground.{key}", option)

    def names(key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        return check.names(raw.get(key, list(allowed)), f"playground.{key}", allowed)

    def pair(key: str, default: tuple[float, float]) -> tuple[float, float]:
        value = raw.get(key, list(default))
        if not isinstance(value, list) or len(value) != 2:
            raise check.fail(
                f"playground.{key}", f"must be two numbers in (0, 1000), got {value!r}"
            )
        low, high = (check.value(v, f"playground.{key}", _POSITIVE) for v in value)
        return low, high

    lr_low, lr_high = pair("lr_range", (1e-4, 1.0))
    if lr_low >= lr_high:
        raise check.fail("playground.lr_range", f"low ({lr_low:g}) must be < high ({lr_high:g})")
    return PlaygroundConfig(
        path=str(path),
        name=check.study_name(raw.get("name", "playground"), "playground.name"),
        functions=names("functions", tuple(TEST_FUNCTIONS)),
        optimizers=names("optimizers", OPTIMIZERS),
        steps=number("steps", Option("int", 300, *RUN_LIMITS["steps"])),
        tolerance=number("tolerance", Option("float", 1e-4, low=1e-12, high=1e3)),
        n_trials=number("n_trials", Option("int", 30, *RUN_LIMITS["n_trials"])),
        seed=number("seed", Option("int", 0, low=0, high=2**32 - 1)),
        threads=(
            number("threads", Option("int", 1, *RUN_LIMITS["threads"]))
            if "threads" in raw
            else None
        ),
        lr_low=lr_low,
        lr_high=lr_high,
        axis_lr=pair("axis_lr", (0.9, 0.2)),
    )


# --- tuning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TunedRun:
    """The best trial of one function × optimizer study and its trajectory."""

    function: str
    optimizer: str
    params: dict[str, float]
    steps: int | None
    trajectory: Trajectory
    study_name: str


def steps_objective(run: Trajectory, steps: int, tolerance: float) -> float:
    """What a study minimizes: the steps to the tolerance; a run that never gets there scores
    ``steps + 1`` plus how many decades it stayed above the tolerance (so TPE can still tell
    near misses from runs that went nowhere)."""
    reached = run.steps_to(tolerance)
    if reached is not None:
        return float(reached)
    best = float(np.min(run.gaps))
    if not math.isfinite(best):
        return float(steps + 1 + 100)
    return steps + 1 + math.log10(max(best, tolerance) / tolerance)


def tune(
    config: PlaygroundConfig,
    function: str,
    optimizer: str,
    storage: str | optuna.storages.BaseStorage,
) -> TunedRun:
    """Run (or continue) the Optuna study of one function and optimizer.

    Tuned: the learning rate (log scale in the file's ``lr_range``), its per-step decay in
    [0.9, 1], and the momentum in [0, 0.99] for ``momentum`` and ``nesterov``.
    """
    fn = TEST_FUNCTIONS[function]
    name = f"{config.name}-{function}-{optimizer}"
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config.seed),
    )
    study.set_user_attr(keys.LAB_FUNCTION, function)
    study.set_user_attr(keys.LAB_OPTIMIZER, optimizer)
    check_budget(study, {"steps": config.steps})

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, config, optimizer)
        run = trajectory(fn, optimizer, steps=config.steps, stop_at=config.tolerance, **params)
        reached = run.steps_to(config.tolerance)
        trial.set_user_attr(keys.LAB_REACHED, reached is not None)
        return steps_objective(run, config.steps, config.tolerance)

    remaining = trials_to_run(study, config.n_trials)  # the target counts the stored trials
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    best = study.best_trial
    params: dict[str, Any] = {k: float(v) for k, v in best.params.items()}
    run = trajectory(fn, optimizer, steps=config.steps, stop_at=config.tolerance, **params)
    return TunedRun(function, optimizer, params, run.steps_to(config.tolerance), run, name)


def _suggest(trial: optuna.Trial, config: PlaygroundConfig, optimizer: str) -> dict[str, Any]:
    params = {
        "lr": trial.suggest_float("lr", config.lr_low, config.lr_high, log=True),
        "lr_decay": trial.suggest_float("lr_decay", 0.9, 1.0),
    }
    if optimizer in ("momentum", "nesterov"):
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    return params


def run_playground(
    config: PlaygroundConfig,
    storage: str | optuna.storages.BaseStorage,
    out: str | Path,
    progress: Callable[[str], None] | None = print,
) -> list[TunedRun]:
    """Tune every function × optimizer, then draw the figures and write the table.

    Writes to ``out``: ``<name>-<function>.png`` (contours and the tuned trajectories),
    ``<name>-axis-lr.png`` (per-axis learning rates on the quadratic) and ``<name>.md`` (steps
    to the tolerance and the tuned parameters).

    Returns:
        The tuned runs, function by function.
    """
    from hpsearch.labs.figures import plot_axis_learning_rates, plot_trajectories

    names = [f"{config.name}-{f}-{o}" for f in config.functions for o in config.optimizers]
    check_stored_budgets(storage, names, {"steps": config.steps})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[TunedRun] = []
    total = len(config.functions) * len(config.optimizers)
    for function in config.functions:
        for optimizer in config.optimizers:
            run = tune(config, function, optimizer, storage)
            runs.append(run)
            if progress is not None:
                shown = "not reached" if run.steps is None else f"{run.steps} steps"
                progress(f"[{len(runs)}/{total}] {function:<10} {optimizer:<9} {shown}")
        mine = [r for r in runs if r.function == function]
        plot_trajectories(
            TEST_FUNCTIONS[function], mine, config, out / f"{config.name}-{function}.png"
        )
    quad = TEST_FUNCTIONS["quadratic"]
    a, b = config.axis_lr
    axis_runs = {
        f"SGD, lr = ({a:g}, {b:g})": trajectory(quad, "sgd", (a, b), 50),
        f"SGD, lr = ({b:g}, {a:g})": trajectory(quad, "sgd", (b, a), 50),
        f"momentum 0.9, lr = ({b / 4:g}, {b / 4:g})": trajectory(quad, "momentum", b / 4, 50),
    }
    plot_axis_learning_rates(quad, axis_runs, out / f"{config.name}-axis-lr.png")
    (out / f"{config.name}.md").write_text(playground_table(config, runs))
    return runs


def playground_table(config: PlaygroundConfig, runs: list[TunedRun]) -> str:
    """Markdown: steps to the tolerance per function (rows) and optimizer (columns), and the
    tuned parameters."""
    optimizers = list(dict.fromkeys(r.optimizer for r in runs))
    functions = list(dict.fromkeys(r.function for r in runs))
    by_key = {(r.function, r.optimizer): r for r in runs}
    lines = [
        f"# Optimizer playground: steps to f − f* <= {config.tolerance:g}",
        "",
        f"Made by `hpsearch playground {config.path}`: {config.n_trials} TPE trials per "
        f"function and optimizer, at most {config.steps} steps; '—' = not reached.",
        "",
        "| function | " + " | ".join(optimizers) + " |",
        "|---|" + "---|" * len(optimizers),
    ]
    for fn in functions:
        cells = []
        for opt in optimizers:
            run = by_key.get((fn, opt))
            cells.append("" if run is None else ("—" if run.steps is None else str(run.steps)))
        lines.append(f"| {fn} | " + " | ".join(cells) + " |")
    lines += ["", "Tuned parameters (lr, per-step lr decay, momentum):", ""]
    lines += ["| function | optimizer | lr | lr_decay | momentum |", "|---|---|---|---|---|"]
    for r in runs:
        momentum = f"{r.params['momentum']:.3f}" if "momentum" in r.params else ""
        lines.append(
            f"| {r.function} | {r.optimizer} | {r.params['lr']:.3g} "
            f"| {r.params['lr_decay']:.4f} | {momentum} |"
        )
    return "\n".join(lines) + "\n"
