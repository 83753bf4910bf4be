"""``[training]``: how each candidate is trained."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ckptnas.config._fields import choice, non_negative, option, positive


class Device(StrEnum):
    """``[training] device``: where candidates train (``auto``: a GPU when the worker has one)."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Precision(StrEnum):
    """``[training] precision``: the floating-point type of forward passes in training.

    Weights, optimizer state and checkpoints are float32 either way; ``bfloat16`` runs the
    forward passes (training, validation, the latency measurement) under
    :func:`torch.autocast`, and the losses in float32.
    """

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: how each candidate is trained."""

    epochs: int = option(2, positive, "> 0")
    batch_size: int = option(64, positive, "> 0")
    learning_rate: float = option(1e-3, positive, "> 0")
    device: str = choice(Device.AUTO)
    precision: str = choice(Precision.FLOAT32)
    #: How long one candidate may run on its worker, in seconds; one past it is stopped (its
    #: worker restarted) and recorded as failed. 0: no limit.
    max_seconds: float = option(0.0, non_negative, ">= 0 (0: no limit)")
    #: Time each candidate's forward pass once it is trained (``latency``); always on when
    #: ``[search] objectives`` has ``latency``. Off by default: six passes over 256 rows took
    #: 4 ms, 4% of a one-epoch quickstart candidate's ~100 ms epoch.
    measure_latency: bool = option(False)
