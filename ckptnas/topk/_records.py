"""The records of full training: its settings, a run's task, and what the run produced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ckptnas.config import Device, Precision
from ckptnas.errors import ConfigError
from ckptnas.runtime import WorkerTask
from ckptnas.storage import CandidateStatus, FullTrainOutcome, Init


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


@dataclass(frozen=True, kw_only=True)
class FullTrainSpec(WorkerTask):
    """Everything a worker needs for one full-training run of a search candidate."""

    run_id: int
    init: Init
    #: Digest of the search checkpoint to start from (``checkpoint`` init only).
    source_digest: str | None
    max_epochs: int
    patience: int
    min_delta: float
    batch_size: int
    learning_rate: float
    device: str = Device.AUTO
    weight_decay: float = 0.0
    dropout: float = 0.0
    #: The floating-point type of the forward passes (``[training] precision``).
    precision: str = Precision.FLOAT32

    def result(self, status: CandidateStatus, **fields: Any) -> FullTrainResult:
        """This run's result record with ``status`` and the given fields."""
        return FullTrainResult(
            run_id=self.run_id,
            candidate_id=self.candidate_id,
            init=self.init,
            status=status,
            **fields,
        )


#: What one full-training run produced: the storage record ``topk.sqlite`` keeps (see
#: :class:`ckptnas.storage.FullTrainOutcome`).
FullTrainResult = FullTrainOutcome
