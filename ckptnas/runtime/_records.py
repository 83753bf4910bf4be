"""The records that travel between the client and the workers: frozen dataclasses only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ckptnas.config import Device
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.space import Architecture
from ckptnas.storage import CandidateStatus


@dataclass(frozen=True)
class TrainingSettings:
    """How a worker trains a candidate (the ``[training]`` and ``[transfer]`` tables)."""

    epochs: int
    batch_size: int
    learning_rate: float
    freeze: bool
    device: str = Device.AUTO


@dataclass(frozen=True, kw_only=True)
class WorkerTask:
    """What every task on a worker starts from: a candidate's network, its data and its seed.

    The dataset is not part of it: a worker builds the dataset once, from ``data_key``.
    """

    candidate_id: int
    arch: Architecture
    #: The search space, as :meth:`~ckptnas.space.ResolvedSpace.to_dict` describes it.
    space: dict[str, Any]
    run_dir: str
    data_key: str
    #: Seeds the weights' initialisation and the batch order.
    seed: int


@dataclass(frozen=True, kw_only=True)
class CandidateSpec(WorkerTask):
    """Everything a worker needs to train one candidate of a search."""

    settings: TrainingSettings
    plan: TransferPlan = SCRATCH
    donor_digest: str | None = None


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """What a task on a worker produced.

    ``train_loss``, ``val_loss``, ``val_metric`` and ``epoch_time`` hold one value per epoch
    trained; a failed task keeps its partial curves and says why in ``error``.
    """

    candidate_id: int
    status: CandidateStatus
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    val_metric: tuple[float, ...] = ()
    epoch_time: tuple[float, ...] = ()
    n_params: int = 0
    worker: str = ""
    device: str = ""
    start_time: float = math.nan
    end_time: float = math.nan
    checkpoint_digest: str | None = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class CandidateResult(TaskResult):
    """What training one candidate of a search produced, and the transfer it started from."""

    plan: TransferPlan = field(default=SCRATCH)

    @property
    def objective(self) -> float:
        """The final validation metric; NaN when the candidate failed."""
        if self.status != CandidateStatus.OK or not self.val_metric:
            return math.nan
        return self.val_metric[-1]
