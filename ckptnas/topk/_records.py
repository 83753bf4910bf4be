"""The records of full training: its settings, a run's task, and what the run produced."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ckptnas.errors import ConfigError
from ckptnas.space import Architecture
from ckptnas.storage import CandidateStatus, Init


@dataclass(frozen=True)
class TopKSettings:
    """How the best candidates are fully trained.

    Attributes
    ----------
    k : int
        How many of the search's best candidates.
    max_epochs : int
        Epochs at most per run.
    patience : int
        Stop after this many epochs without a lower validation loss.
    min_delta : float
        An improvement must lower the validation loss by more than this.
    """

    k: int = 5
    max_epochs: int = 50
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("k", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"top-K {name} = {getattr(self, name)} must be >= 1")
        if self.min_delta < 0:
            raise ConfigError(f"top-K min_delta = {self.min_delta} must be >= 0")


@dataclass(frozen=True)
class FullTrainSpec:
    """Everything a worker needs for one full-training run."""

    run_id: int
    candidate_id: int
    init: Init
    arch: Architecture
    space: dict[str, Any]
    run_dir: str
    data_key: str
    source_digest: str | None
    seed: int
    max_epochs: int
    patience: int
    min_delta: float
    batch_size: int
    learning_rate: float
    device: str = "auto"


@dataclass(frozen=True)
class FullTrainResult:
    """What one full-training run produced; curves hold one value per epoch trained."""

    run_id: int
    candidate_id: int
    init: Init
    status: CandidateStatus
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    val_metric: tuple[float, ...] = ()
    epoch_time: tuple[float, ...] = ()
    best_epoch: int = 0
    final_metric: float = math.nan
    setup_time: float = math.nan
    n_params: int = 0
    checkpoint_digest: str | None = None
    worker: str = ""
    device: str = ""
    start_time: float = math.nan
    end_time: float = math.nan
    error: str = ""
