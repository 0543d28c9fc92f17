"""Where training runs: a device name of a study file or ``--device``, checked and resolved.

``cpu``, ``cuda`` (the current CUDA device), ``cuda:N`` and ``auto`` (CUDA when torch sees a
GPU, else the CPU). The name's form is checked with the study file, before torch is needed;
whether the device is there, when a run starts (:func:`resolve_device`), in one line.

Training runs where its data lies: :meth:`hpsearch.core.data.Dataset.to` moves the splits once,
and models are initialised on the CPU from its seeded generator, then moved, so a run starts
from the same weights and draws the same mini-batches on every device.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from hpsearch.errors import HpsearchError

if TYPE_CHECKING:
    import torch

DEVICE_NAMES = ("cpu", "cuda", "cuda:N", "auto")
_FORM = re.compile(r"cpu|cuda|cuda:\d+|auto")


def check_device_name(name: object) -> str:
    """``name`` when it has one of the forms of :data:`DEVICE_NAMES`, else a one-line error."""
    if isinstance(name, str) and _FORM.fullmatch(name):
        return name
    raise HpsearchError(f"unknown device {name!r}; allowed: {', '.join(DEVICE_NAMES)}")


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` stands for, checked to be there.

    Raises:
        HpsearchError: An unknown name, or a CUDA device this torch or machine does not have.
    """
    import torch

    check_device_name(name)
    if name == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda" if available else "cpu")
    if not available:
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        raise HpsearchError(
            f"device {name!r}: no CUDA device here (torch {torch.__version__}, {build}); "
            "use device 'cpu', or 'auto' to take a GPU only where there is one"
        )
    if name == "cuda":  # torch's current CUDA device, chosen when training starts
        return torch.device("cuda")
    count = torch.cuda.device_count()  # (no CUDA context: the launcher trains nothing)
    index = int(name.partition(":")[2])
    if index >= count:
        raise HpsearchError(
            f"device {name!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", index)
