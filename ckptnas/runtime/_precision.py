"""``[training] precision`` as the context that forward passes run in.

With ``bfloat16`` the forward passes of training, validation and the latency measurement run
under :func:`torch.autocast`: matrix products and convolutions compute in bfloat16, while the
weights, Adam's state and the checkpoints stay float32, so warm-start transfer and checkpoint
files are the same whatever the precision. Callers compute losses from outputs cast to float32.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ckptnas.config import Precision


def forward_precision(
    precision: str, device: torch.device
) -> contextlib.AbstractContextManager[Any]:
    """The context a forward pass runs in: bfloat16 autocast, or nothing for float32.

    Parameters
    ----------
    precision : {"float32", "bfloat16"}
    device : torch.device
        Where the model and its inputs are (autocast works per device type).

    Examples
    --------
    >>> with forward_precision("bfloat16", torch.device("cpu")):
    ...     torch.ones(2, 3) @ torch.ones(3, 1)
    tensor([[3.],
            [3.]], dtype=torch.bfloat16)
    """
    if Precision(precision) == Precision.BFLOAT16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
