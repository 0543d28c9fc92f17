"""What a training run is told: its knobs (:class:`TrainConfig`) and their domains.

Declarations only, no torch, so that study files can be checked without starting it.
Adding a knob is one field of :class:`TrainConfig` with its domain in :data:`TRAIN_PARAMS`:
the study-file key, its validation, the trial attributes and population mode's per-member
record all follow from these two tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpsearch.core.aggregators import AGGREGATOR_NAMES
from hpsearch.core.options import Option
from hpsearch.errors import check_choice, check_fields

OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# "jd": Jacobian descent, the two gradients combined by an aggregator (hpsearch.core.aggregators).
INNER_METHODS: tuple[str, ...] = ("linear", "chebyshev", "mdmm", "jd")
# "batch": flood the mini-batch mean task loss (Ishida et al., 2020); "sample": flood each
# sample's loss before averaging (iFlood, Xie et al., ICLR 2022).
FLOOD_MODES: tuple[str, ...] = ("batch", "sample")
NORMALIZATIONS: tuple[str, ...] = ("initial", "none")
# The inner methods that can aim into a concave stretch, and the knob each aims with: Chebyshev's
# weight w of L1, MDMM's budget epsilon on L2 (``hpsearch fill --method``).
AIMING_KNOBS: dict[str, str] = {"chebyshev": "w", "mdmm": "epsilon"}
# Why `hpsearch fill --method jd` is refused (measured in benchmarks/results/fonseca_fleming.md,
# "Can the preference weight aim?").
JD_CANNOT_AIM = (
    "fill aims with chebyshev or mdmm; jd (Jacobian descent) cannot aim into a stretch: its "
    "preference weight w moves where a run ends less than the run's start does (upgrad, "
    "dualproj, config) or sends it to an end of the front (aligned_mtl)"
)

# The domain of every training knob and budget field, declared once: TrainConfig validates
# itself against it, and study files (hpsearch.study.config) offer the same table.
TRAIN_PARAMS: dict[str, Option] = {
    "optimizer": Option("categorical", "adam", choices=OPTIMIZERS, help="optimizer"),
    "lr": Option("float", 1e-3, low=0, low_open=True, help="learning rate"),
    "momentum": Option("float", 0.9, low=0, high=1, high_open=True, help="momentum/nesterov"),
    "lr_decay": Option("float", 1.0, low=0, high=1, low_open=True, help="lr factor per epoch"),
    "alpha": Option("float", 0.0, low=0, help="weight of L2 in flood(L1) + alpha*L2"),
    "flood": Option("float", 0.0, low=0, help="flood level b on L1 (0 = off)"),
    "flood_mode": Option(
        "categorical", "batch", choices=FLOOD_MODES, help="flood the batch mean or each sample"
    ),
    "backstitch": Option("float", 0.0, low=0, help="backstitch scale (0 = off)"),
    "backstitch_interval": Option(
        "int", 1, low=1, high=100_000, help="backstitch every n mini-batches"
    ),
    "method": Option("categorical", "linear", choices=INNER_METHODS, help="inner scalarization"),
    "w": Option(
        "float",
        0.5,
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        help="Chebyshev weight of L1; jd's preference weight of L1",
    ),
    "aggregator": Option(
        "categorical", "upgrad", choices=AGGREGATOR_NAMES, help="jd: how the gradients combine"
    ),
    "ideal1": Option("float", 0.0, help="Chebyshev ideal point, L1"),
    "ideal2": Option("float", 0.0, help="Chebyshev ideal point, L2"),
    "normalize": Option(
        "categorical", "initial", choices=NORMALIZATIONS, help="Chebyshev normalization"
    ),
    "epsilon": Option("float", 1.0, low=0, help="MDMM budget: L2 <= epsilon"),
    "damping": Option("float", 10.0, low=0, help="MDMM damping c"),
    "lambda_lr": Option("float", 0.01, low=0, low_open=True, help="MDMM multiplier step size"),
    # None: the run's seed. "trial" is resolved by the study layer to one seed per trial.
    "init_seed": Option(
        "int",
        None,
        low=0,
        high=2**32 - 1,
        words=("trial",),
        help='seed of the initial weights (default: the study seed; "trial": one per trial)',
    ),
}
TRAIN_BUDGET: dict[str, Option] = {
    "epochs": Option("int", 20, low=1, high=100_000, help="passes over the training split"),
    "batch_size": Option("int", 64, low=1, high=1_000_000, help="mini-batch size"),
}
# An MDMM run is feasible when its validation L2 is at most ε + FEASIBILITY_TOL·max(ε, 1e-3):
# the multiplier makes L2 oscillate around the budget, so "exactly below" would be noise.
FEASIBILITY_TOL = 0.01


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run.

    Attributes:
        optimizer: One of :data:`OPTIMIZERS`.
        lr: Learning rate (> 0).
        momentum: Momentum of ``"momentum"`` and ``"nesterov"`` (in [0, 1)).
        lr_decay: Factor applied to the learning rate after every epoch (1 = constant).
        alpha: Weight α of ``L2`` in ``flood(L1) + α·L2`` (>= 0), for ``method="linear"``.
        flood: Flood level b; when b > 0 the task loss becomes ``|L1 − b| + b`` (every method).
        flood_mode: ``"batch"`` floods the mini-batch mean of the task loss; ``"sample"``
            (iFlood) floods each sample's loss, ``mean_i(|ℓ_i − b| + b)``.
        backstitch: Backstitch scale α_b (Wang, Povey et al., 2017); 0 = off. On a
            backstitched mini-batch the optimizer first steps with learning rate ``−α_b·η``
            (ascent), then, with the gradient recomputed on the same mini-batch, with
            ``(1 + α_b)·η``.
        backstitch_interval: Backstitch every n-th mini-batch (the others take a plain step).
        method: Inner scalarization, one of :data:`INNER_METHODS`.
        w: Chebyshev weight of L1, in (0, 1); L2 gets ``1 − w``. For ``method="jd"``, the
            preference weight of L1 of the aggregators that take one (``AIMING_AGGREGATORS``).
        aggregator: For ``method="jd"``, how the two gradients combine into one step: one of
            :data:`~hpsearch.core.aggregators.AGGREGATOR_NAMES` (torchjd's aggregators).
        ideal1, ideal2: Chebyshev ideal point z (losses are >= 0, so 0 is a valid ideal).
        normalize: Chebyshev normalization: ``"initial"`` divides ``L_i − z_i`` by its value for
            the initial model on the whole training split, so both terms start at 1;
            ``"none"`` uses the raw losses.
        epsilon: MDMM budget ε of the constraint ``L2 <= ε``.
        damping: MDMM damping c (the ``c·(L2 − ε)`` term of the multiplier).
        lambda_lr: MDMM step size of the multiplier's ascent ``λ ← max(0, λ + η_λ·(L2 − ε))``.
        epochs: Passes over the training split.
        batch_size: Rows per mini-batch.
        seed: Seeds the batch order, and the initialisation unless ``init_seed`` is set.
        init_seed: Seeds the initial weights and any sampling inside the model (dropout, a
            VAE's noise); None: ``seed``. Runs that differ only in it see the same mini-batches
            from different starting points.
    """

    optimizer: str = TRAIN_PARAMS["optimizer"].default
    lr: float = TRAIN_PARAMS["lr"].default
    momentum: float = TRAIN_PARAMS["momentum"].default
    lr_decay: float = TRAIN_PARAMS["lr_decay"].default
    alpha: float = TRAIN_PARAMS["alpha"].default
    flood: float = TRAIN_PARAMS["flood"].default
    flood_mode: str = TRAIN_PARAMS["flood_mode"].default
    backstitch: float = TRAIN_PARAMS["backstitch"].default
    backstitch_interval: int = TRAIN_PARAMS["backstitch_interval"].default
    method: str = TRAIN_PARAMS["method"].default
    w: float = TRAIN_PARAMS["w"].default
    aggregator: str = TRAIN_PARAMS["aggregator"].default
    ideal1: float = TRAIN_PARAMS["ideal1"].default
    ideal2: float = TRAIN_PARAMS["ideal2"].default
    normalize: str = TRAIN_PARAMS["normalize"].default
    epsilon: float = TRAIN_PARAMS["epsilon"].default
    damping: float = TRAIN_PARAMS["damping"].default
    lambda_lr: float = TRAIN_PARAMS["lambda_lr"].default
    epochs: int = TRAIN_BUDGET["epochs"].default
    batch_size: int = TRAIN_BUDGET["batch_size"].default
    seed: int = 0
    init_seed: int | None = None

    @property
    def weights_seed(self) -> int:
        """The seed of the initial weights: ``init_seed``, or ``seed`` when it is None."""
        return self.seed if self.init_seed is None else self.init_seed

    @property
    def backstitched(self) -> bool:
        """Whether some mini-batches take backstitch's extra ascent step (``backstitch > 0``)."""
        return self.backstitch > 0

    def __post_init__(self) -> None:
        domains = {**TRAIN_PARAMS, **TRAIN_BUDGET}
        for name, option in domains.items():
            if option.type == "categorical":
                check_choice(name, getattr(self, name), option.choices)
        check_fields(
            self,
            {
                name: option.contains(value) and not isinstance(value, str)
                for name, option in domains.items()
                if option.type != "categorical"
                and not ((value := getattr(self, name)) is None and option.default is None)
            },
        )
