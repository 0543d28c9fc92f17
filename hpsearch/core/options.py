"""The domain of a hyperparameter (:class:`Option`): its type and the values it may take.

Declarations only, no torch: study files are validated against these tables by ``check`` and
``list`` without starting torch (a second of start-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# The largest float a float32 tensor holds: what a float hyperparameter may be at most.
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Option:
    """The domain of one hyperparameter: its type and the values it may take.

    Attributes:
        type: ``"float"``, ``"int"`` or ``"categorical"``.
        default: Value used when a study file does not set it.
        low: Smallest allowed value (numbers only), or None for no bound.
        high: Largest allowed value, or None for no bound.
        low_open: True when ``low`` itself is not allowed (``lr > 0``).
        high_open: True when ``high`` itself is not allowed (``momentum < 1``).
        choices: The allowed values of a categorical option.
        words: Strings a number option also takes as a fixed value, each standing for a value
            decided later (``init_seed = "trial"``: one seed per trial).
        help: One line for documentation and error messages.
    """

    type: str
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    words: tuple[str, ...] = ()
    help: str = ""

    def allowed(self) -> str:
        """Describe the allowed values in words, for error messages."""
        if self.type == "categorical":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        # Floats stop at float32's range, shown rounded down ("3.4e+38") so it is allowed.
        top = "3.4e+38" if self.type == "float" else "inf"
        lo = f"[-{top}" if self.type == "float" else "(-inf"
        if self.low is not None:
            lo = ("(" if self.low_open else "[") + self._bound(self.low)
        hi = f"{top}]" if self.type == "float" else "inf)"
        if self.high is not None:
            hi = self._bound(self.high) + (")" if self.high_open else "]")
        number = f"{'an integer' if self.type == 'int' else 'a number'} in {lo}, {hi}"
        return " or ".join([number, *(repr(w) for w in self.words)])

    def _bound(self, value: float) -> str:
        # An int bound in full (2**32 - 1 is a seed's top, not "4.29497e+09").
        return str(int(value)) if self.type == "int" else f"{value:g}"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is allowed (type and range)."""
        if self.type == "categorical":
            return value in self.choices and type(value) is type(self.choices[0])
        if isinstance(value, str):
            return value in self.words
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.type == "int" and not isinstance(value, int):
            return False
        # NaN and ±inf are never a usable hyperparameter, nor a number that training's float32
        # tensors would turn into inf.
        if not math.isfinite(value) or (self.type == "float" and abs(value) > FLOAT32_MAX):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )
