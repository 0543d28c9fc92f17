"""The rules of every figure of a study, decided once from the data and drawn by matplotlib
(:mod:`hpsearch.results.plots`) and plotly (:mod:`hpsearch.results.publish`, the dashboard)
alike: what the axes show (:func:`objective_limits`), what colours the trials
(:func:`trade_off_colour`), and which loss curves are drawn (:func:`representative_front`).
NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpsearch.results.points import StudyPoints

# --- What the axes show --------------------------------------------------------------------
#
# The outlier rule, per loss: the axis spans (1) every value within Tukey's fences around the
# quartiles of all trials' values, Q1 − k·IQR to Q3 + k·IQR, and (2) the whole Pareto front,
# always. Quartiles are not moved by the outliers themselves (min/max or mean ± sd are: one
# diverged run at L2 ≈ 500 stretched the axis tenfold and squashed the front flat); since the
# front is always kept, no trade-off the study found is ever hidden, only dominated runs far
# from the bulk are cut. Points beyond the limits are drawn at the axis edge as triangles
# pointing outwards and counted in the legend (and the largest value named).
#
# Scale: when every value is positive, the fences are first taken on log10 of the values, with
# k = LOG_FENCE; if the values they keep span more than LOG_SPREAD×, the axis is logarithmic
# (penalties span orders of magnitude across α: a linear axis would squash most of the front
# against zero). Otherwise the axis is linear, fenced on the values with k = FENCE (Tukey's
# "far out" 3). On a log axis the inner 1.5 is enough: the IQR of log10 values is already wide
# there (often a decade), so 1.5·IQR reaches tens of times beyond the upper quartile, and a run
# further out than that is in another regime (diverged), not a point of the trade-off.
#
# And only where it pays: when the points beyond the fences would stretch the axis less than
# STRETCH times, nothing is cut (a point drawn in place beats a triangle when it squashes
# nothing).
FENCE = 3.0
LOG_FENCE = 1.5
LOG_SPREAD = 100.0
STRETCH = 2.0
# Quartiles of fewer points say nothing: below this, nothing is cut.
MIN_POINTS_TO_CLIP = 5
# Margin beyond the kept values, as a fraction of their span; the edge markers sit in it.
PAD = 0.06
# Most loss curves a figure draws: more are unreadable (60 Pareto trials were).
MAX_CURVES = 7


@dataclass(frozen=True)
class AxisRange:
    """What one axis shows.

    Attributes:
        lo, hi: The kept values' extremes (data units); points beyond them are clipped.
        log: Whether the axis is on a log scale.
    """

    lo: float
    hi: float
    log: bool

    def _to(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def _from(self, v: float) -> float:
        return 10.0**v if self.log else v

    @property
    def _span(self) -> float:
        span = self._to(self.hi) - self._to(self.lo)
        return span if span > 0 else (0.5 if self.log else max(abs(self.hi) * 0.1, 1.0))

    @property
    def limits(self) -> tuple[float, float]:
        """The axis limits, margin included (data units)."""
        pad = PAD * self._span
        return self._from(self._to(self.lo) - pad), self._from(self._to(self.hi) + pad)

    @property
    def plotly_range(self) -> list[float]:
        """The limits as plotly wants them (log10 units on a log axis)."""
        return [self._to(v) for v in self.limits]

    def edge(self, side: int) -> float:
        """Where a point beyond the limits is drawn: in the margin on that side (±1)."""
        pad = 0.6 * PAD * self._span
        return self._from(self._to(self.hi) + pad if side > 0 else self._to(self.lo) - pad)

    def side(self, values: np.ndarray) -> np.ndarray:
        """-1 below the kept range, +1 above it, 0 within (NaN: 0, it is not drawn)."""
        v = np.asarray(values, float)
        with np.errstate(invalid="ignore"):
            return np.where(v > self.hi, 1, np.where(v < self.lo, -1, 0))


def _within_fences(values: np.ndarray, k: float) -> np.ndarray:
    """Which values lie within Q1 − k·IQR .. Q3 + k·IQR (all, for too few or no spread)."""
    if len(values) < MIN_POINTS_TO_CLIP:
        return np.ones(len(values), bool)
    q1, q3 = np.percentile(values, [25, 75])
    iqr = q3 - q1
    if iqr <= 0:  # no spread in the bulk: the fences say nothing
        return np.ones(len(values), bool)
    return np.asarray((values >= q1 - k * iqr) & (values <= q3 + k * iqr))


def robust_range(values: np.ndarray, keep: np.ndarray, allow_log: bool = True) -> AxisRange:
    """The range one axis shows (see the outlier rule above).

    Args:
        values: Every point's value on this axis.
        keep: Points the axis must show whatever their value (the Pareto front).
        allow_log: Whether a log scale may be chosen (not where straight lines must stay
            straight, as a convex hull's edges).
    """
    v = np.asarray(values, float)
    finite = np.isfinite(v)
    if not finite.any():
        return AxisRange(0.0, 1.0, False)
    vals, must = v[finite], np.asarray(keep, bool)[finite]
    if allow_log and (vals > 0).all():
        logs = np.log10(vals)
        shown = vals[_worth_clipping(logs, _within_fences(logs, LOG_FENCE) | must)]
        if shown.max() / shown.min() > LOG_SPREAD:
            return AxisRange(float(shown.min()), float(shown.max()), True)
    shown = vals[_worth_clipping(vals, _within_fences(vals, FENCE) | must)]
    return AxisRange(float(shown.min()), float(shown.max()), False)


def _worth_clipping(values: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``kept`` if cutting the other values narrows the axis more than STRETCH times, else
    all: a point drawn where it is beats a triangle at the edge when it squashes nothing."""
    return kept if np.ptp(values) > STRETCH * np.ptp(values[kept]) else np.ones_like(kept)


@dataclass(frozen=True)
class ObjectiveLimits:
    """What an objective-space figure shows: its two axes and the points beyond them.

    Attributes:
        x, y: The axes (L1, L2).
        sides: n × 2: per point and axis, -1 below the limits, +1 above, 0 within.
        xy: The points (n × 2, raw).
    """

    x: AxisRange
    y: AxisRange
    sides: np.ndarray
    xy: np.ndarray

    @property
    def beyond(self) -> np.ndarray:
        """Which points lie beyond the limits (drawn at the edge)."""
        return np.asarray((self.sides != 0).any(1))

    @property
    def n_beyond(self) -> int:
        return int(self.beyond.sum())

    def pinned(self) -> np.ndarray:
        """The points where they are drawn: those beyond the limits moved to the edge."""
        out = self.xy.astype(float, copy=True)
        for axis, rng in ((0, self.x), (1, self.y)):
            for side in (-1, 1):
                out[self.sides[:, axis] == side, axis] = rng.edge(side)
        return out

    def directions(self) -> list[str]:
        """Per point, where it lies beyond the limits: ``"up"``, ``"down"``, ``"right"``,
        ``"left"``, or ``""`` (within). Beyond both axes, L2's side is named."""
        names = {(0, 1): "up", (0, -1): "down", (1, 0): "right", (-1, 0): "left"}
        out = []
        for sx, sy in self.sides.tolist():
            out.append("" if sx == sy == 0 else names[(0, sy)] if sy else names[(sx, 0)])
        return out

    def note(self, names: tuple[str, str] = ("L1", "L2")) -> str:
        """``"N points beyond the axis limits …"``, or ``""`` when there are none."""
        n = self.n_beyond
        if n == 0:
            return ""
        worst = []
        for axis, name in enumerate(names):
            up = self.sides[:, axis] == 1
            if up.any():
                worst.append(f"{name} up to {np.max(self.xy[up, axis]):.4g}")
            down = self.sides[:, axis] == -1
            if down.any():
                worst.append(f"{name} down to {np.min(self.xy[down, axis]):.4g}")
        s = "" if n == 1 else "s"
        return f"{n} point{s} beyond the axis limits, drawn at the edge ({', '.join(worst)})"


def objective_limits(xy: np.ndarray, keep: np.ndarray, allow_log: bool = True) -> ObjectiveLimits:
    """The axes of an objective-space figure: per loss, :func:`robust_range` of the points,
    the front (``keep``) always inside, and which points fall beyond them.

    Args:
        xy: n × 2 (validation L1, validation L2).
        keep: Boolean mask of the points that must be shown (the Pareto front).
        allow_log: Whether a log scale may be chosen.
    """
    xy = np.asarray(xy, float).reshape(-1, 2)
    keep = np.asarray(keep, bool)
    x = robust_range(xy[:, 0], keep, allow_log)
    y = robust_range(xy[:, 1], keep, allow_log)
    sides = np.stack([x.side(xy[:, 0]), y.side(xy[:, 1])], axis=1)
    return ObjectiveLimits(x=x, y=y, sides=sides.reshape(-1, 2), xy=xy)


def representative_front(
    xy: np.ndarray, front: np.ndarray, knee: int = -1, k: int = MAX_CURVES
) -> list[tuple[int, str]]:
    """At most ``k`` front trials that show the front: its two ends, its knee, and the rest
    evenly spaced along it (by arc length, each loss scaled to the front's range).

    Args:
        xy: n × 2 points.
        front: Indices (into ``xy``) of the front, by increasing L1 (``FrontAnalysis.front``).
        knee: Index (into ``xy``) of the knee, or -1.
        k: The most trials to return.

    Returns:
        ``(index, role)`` by increasing L1; role is ``"min L1"``, ``"min L2"``,
        ``"knee"`` or ``""``.
    """
    front = np.asarray(front, int)
    if len(front) == 0 or k < 1:
        return []
    roles: dict[int, str] = {int(front[0]): "min L1"}
    if len(front) > 1 and k >= 2:
        roles[int(front[-1])] = "min L2"
    if knee >= 0 and knee in set(front.tolist()) and len(roles) < k:
        roles[int(knee)] = "knee"
    pts = np.asarray(xy, float)[front]
    span = np.ptp(pts, axis=0)
    z = (pts - pts.min(0)) / np.where(span > 0, span, 1.0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(z, axis=0).T))])
    free = k - len(roles)
    if free > 0 and len(front) > len(roles):
        for target in np.linspace(0, arc[-1], free + 2)[1:-1]:
            order = np.argsort(np.abs(arc - target), kind="stable")
            pick = next((int(front[i]) for i in order if int(front[i]) not in roles), None)
            if pick is not None:
                roles[pick] = ""
    position = {int(i): p for p, i in enumerate(front)}
    return sorted(roles.items(), key=lambda item: position[item[0]])


# --- What colours the trials -----------------------------------------------------------
#
# The knob that trades one loss for the other, in this order: a study that searched α is
# coloured by α, a Chebyshev study by w, an MDMM study by ε, a flooding study by b; a study
# that searched none of them by trial number. Logarithmic past COLOUR_LOG_SPREAD× (the knobs
# are searched on log scales over orders of magnitude).
TRADE_OFF_PARAMS: tuple[str, ...] = ("alpha", "w", "epsilon", "flood")
COLOUR_LOG_SPREAD = 10.0
_SYMBOLS = {"alpha": "α", "w": "w", "epsilon": "ε", "flood": "b"}


@dataclass(frozen=True)
class ColourRule:
    """What colours a study's trials.

    Attributes:
        name: The parameter (``alpha``, ``w``, ``epsilon``, ``flood``), or ``trial``.
        values: Per trial, the value its colour stands for.
        log: Whether the colour scale is logarithmic.
    """

    name: str
    values: np.ndarray
    log: bool

    @property
    def label(self) -> str:
        """The colour bar's title: the knob's symbol, "(log)" on a log scale."""
        symbol = _SYMBOLS.get(self.name, self.name)
        return f"{symbol} (log)" if self.log else symbol


def trade_off_colour(points: StudyPoints) -> ColourRule:
    """The :class:`ColourRule` of a study's trials (see the rule above)."""
    name = next((p for p in TRADE_OFF_PARAMS if p in points.params), None)
    if name is None:
        return ColourRule("trial", points.numbers.astype(float), log=False)
    values = points.params[name]
    spread = values.max() / values.min() if np.all(values > 0) else 0.0
    return ColourRule(name, values, log=bool(spread > COLOUR_LOG_SPREAD))
