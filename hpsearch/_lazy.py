"""A module imported on first use: what keeps torch out of commands that never train.

``torch`` takes a second or more to import (far more on a loaded machine), and ``--help``,
``check``, ``list``, ``show`` and ``compare`` need none of it. Modules that declare setups and
models next to their torch code bind ``torch`` to a :func:`lazy_import` proxy; the first
attribute looked up through it imports the module and rebinds the global to the real module,
so code that runs (training) pays for the proxy once, not per call.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    def __init__(self, module: str, namespace: dict[str, Any], alias: str) -> None:
        self._module = module
        self._namespace = namespace
        self._alias = alias

    def _load(self) -> ModuleType:
        module = importlib.import_module(self._module)
        if self._namespace.get(self._alias) is self:
            self._namespace[self._alias] = module  # later lookups skip the proxy
        return module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._load(), name)

    def __repr__(self) -> str:
        return f"<module {self._module!r}, imported on first use>"


def lazy_import(module: str, namespace: dict[str, Any], alias: str | None = None) -> Any:
    """A stand-in for ``module`` bound in ``namespace`` (a module's ``globals()``) under
    ``alias`` (default: the module's name): it imports the module on first attribute use."""
    return _LazyModule(module, namespace, alias or module)
