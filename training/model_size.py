"""Refuse networks too big to train before any memory is spent on them.

Flags like ``--hidden 16384,16384,…`` or ``--ngf 1024 --blocks 64`` describe
networks of billions of parameters: building them for real would exhaust the
machine's memory and kill the process instead of saying anything. So the
networks are first built on PyTorch's meta device (shapes only, no memory),
counted, and refused in one line above the bound the loaders also apply
(``gantool.checkpoint.MAX_PARAMETERS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from gantool.checkpoint import MAX_PARAMETERS
from gantool.errors import UsageError

if TYPE_CHECKING:
    from torch import nn


def refuse_oversized(build: Callable[[], Iterable[nn.Module]], flags: str) -> None:
    """UsageError naming ``flags`` when the networks ``build()`` makes hold more than MAX_PARAMETERS together."""
    import torch

    with torch.device("meta"):
        count = sum(parameter.numel() for module in build() for parameter in module.parameters())
    if count > MAX_PARAMETERS:
        raise UsageError(
            f"these networks would have {count:,} parameters, more than gantool trains ({MAX_PARAMETERS:,}): "
            f"use smaller {flags}"
        )
