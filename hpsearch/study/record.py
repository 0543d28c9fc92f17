"""What your own training loop stores on its Optuna trials for hpsearch to read.

:func:`record`, called once per epoch, keeps the validation losses (and a metric) of the run
as hpsearch's own trials keep them: the latest values in ``val_loss1``/``val_loss2``/
``val_metric`` and the per-epoch history. The diagnosis reads the history to tell converged
runs from runs still moving, and the dashboard draws it as loss curves.

:func:`fill_aim` is the other direction: the knobs that ``hpsearch fill --enqueue`` gave a
queued trial (None for an ordinary one).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import optuna

from hpsearch.core.knobs import AIMING_KNOBS
from hpsearch.errors import HpsearchError
from hpsearch.study import keys

# Each running trial's history, kept here so that a call reads nothing from the storage: one
# write per epoch (1-3 ms on SQLite), not a read and four writes.
_HISTORIES: weakref.WeakKeyDictionary[optuna.Trial, dict[str, list[float]]] = (
    weakref.WeakKeyDictionary()
)


def record(
    trial: optuna.Trial,
    loss1: Any,
    loss2: Any,
    metric: Any = None,
    epoch: int | None = None,
) -> None:
    """Store one epoch's validation losses (and metric) on ``trial``: one storage write.

    The history is the trial's user attribute ``history`` (``val_loss1``, ``val_loss2`` and
    ``val_metric`` lists, epoch ``i + 1`` at index ``i``); the latest values are its last.

    Args:
        trial: The running trial.
        loss1: This epoch's validation L1 (a number or a 0-d tensor).
        loss2: This epoch's validation L2.
        metric: A validation metric to show beside them, if any.
        epoch: The epoch, from 1 (default: the one after the last recorded). Recording an
            epoch again replaces it and forgets the later ones (a restarted run).

    Raises:
        HpsearchError: A value that is not a number, or an epoch below 1.
    """
    row = {keys.VAL_LOSS1: _number("loss1", loss1), keys.VAL_LOSS2: _number("loss2", loss2)}
    if metric is not None:
        row[keys.VAL_METRIC] = _number("metric", metric)
    history = _HISTORIES.get(trial)
    if history is None:  # first call in this process (or a trial object made anew)
        history = {k: list(v) for k, v in (trial.user_attrs.get(keys.HISTORY) or {}).items()}
        _HISTORIES[trial] = history
    done = len(history.get(keys.VAL_LOSS1, []))
    at = done if epoch is None else int(epoch) - 1
    if at < 0:
        raise HpsearchError(f"record: epoch={epoch!r} must be >= 1")
    for key in set(history) | set(row):
        column = history.get(key, [])[:at]
        column += [math.nan] * (at - len(column))  # every column one entry per epoch
        column.append(row.get(key, math.nan))
        history[key] = column
    trial.set_user_attr(keys.HISTORY, history)


def recorded(history: dict[str, list[float]] | None, key: str) -> float | None:
    """The last value of ``key`` in a history that :func:`record` wrote (None if none)."""
    column = (history or {}).get(key) or []
    return float(column[-1]) if column else None


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HpsearchError(f"record: {name} must be a number, got {value!r}") from None
    return number


@dataclass(frozen=True)
class Aim:
    """The knobs of a trial that ``hpsearch fill --enqueue`` queued into a stretch.

    Attributes:
        method: ``"chebyshev"`` or ``"mdmm"``.
        value: Chebyshev's weight ``w`` of L1, or MDMM's budget ``ε`` on L2.
        ideal, scales: The Chebyshev ideal point and scales ``w`` was computed for.
        stretch: Which stretch of the diagnosis (0 = smallest L1) it aims into.
        params: The other parameters, from the run that reached the stretch's nearer end
            (also queued as the trial's fixed parameters).
    """

    method: str
    value: float
    ideal: tuple[float, float] = (0.0, 0.0)
    scales: tuple[float, float] = (1.0, 1.0)
    stretch: int = 0
    params: dict[str, Any] | None = None

    @property
    def knob(self) -> str:
        """The knob's name: ``w`` or ``epsilon``."""
        return AIMING_KNOBS[self.method]

    def scalarizer(self, **mdmm_options: float) -> Any:
        """:class:`hpsearch.Chebyshev` or :class:`hpsearch.MDMM` with these knobs (for MDMM,
        ``damping`` and ``lambda_lr`` may be given)."""
        from hpsearch.core.scalarize import MDMM, Chebyshev

        if self.method == "chebyshev":
            return Chebyshev(self.value, self.ideal, self.scales)
        return MDMM(self.value, **mdmm_options)

    def to_attr(self) -> dict[str, Any]:
        """The user attribute stored on the queued trial."""
        return {
            "method": self.method,
            self.knob: self.value,
            "ideal": list(self.ideal),
            "scales": list(self.scales),
            "stretch": self.stretch,
            "params": dict(self.params or {}),
        }

    @classmethod
    def from_attr(cls, attr: dict[str, Any]) -> Aim:
        method = attr["method"]
        return cls(
            method=method,
            value=float(attr[AIMING_KNOBS[method]]),
            ideal=(float(attr["ideal"][0]), float(attr["ideal"][1])),
            scales=(float(attr["scales"][0]), float(attr["scales"][1])),
            stretch=int(attr.get("stretch", 0)),
            params=dict(attr.get("params") or {}),
        )


def fill_aim(trial: optuna.Trial | optuna.trial.FrozenTrial) -> Aim | None:
    """The :class:`Aim` that ``hpsearch fill --enqueue`` queued ``trial`` with, or None."""
    attr = trial.user_attrs.get(keys.FILL_AIM)
    return None if attr is None else Aim.from_attr(attr)
