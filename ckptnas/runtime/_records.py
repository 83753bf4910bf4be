"""The records that travel between the client and the workers: frozen dataclasses only.

What a worker sends back is storage's record (:class:`ckptnas.storage.CandidateOutcome`): the
registry keeps it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ckptnas.config import Device, Precision
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.space import Architecture
from ckptnas.storage import CandidateOutcome, RunDir, TaskOutcome


@dataclass(frozen=True)
class TrainingSettings:
    """How a worker trains a candidate (the ``[training]`` and ``[transfer]`` tables)."""

    epochs: int
    batch_size: int
    learning_rate: float
    freeze: bool
    device: str = Device.AUTO
    #: Adam's L2 penalty on the weights.
    weight_decay: float = 0.0
    #: Probability of zeroing a hidden unit in training (the space's dropout layers).
    dropout: float = 0.0
    #: The floating-point type of the forward passes (``[training] precision``).
    precision: str = Precision.FLOAT32
    #: Save frozen inherited tensors once: refer to them in the donor's blob (``[transfer] dedup``).
    dedup: bool = True
    #: Time the trained candidate's forward pass (its ``latency``); NaN is recorded without.
    measure_latency: bool = True

    def with_hyperparameters(self, values: Mapping[str, float]) -> TrainingSettings:
        """These settings with the searched hyperparameters of one candidate in place."""
        changes: dict[str, Any] = dict(values)
        if "batch_size" in changes:
            changes["batch_size"] = int(changes["batch_size"])
        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class WorkerTask:
    """What every task on a worker starts from: a candidate's network, its data and its seed.

    The dataset is not part of it: a worker builds the dataset once, from ``data_key``.
    """

    candidate_id: int
    arch: Architecture
    #: The search space, as :meth:`~ckptnas.space.ResolvedSpace.to_dict` describes it.
    space: dict[str, Any]
    #: The run directory, absolute: a worker's working directory may be another.
    run_dir: RunDir
    data_key: str
    #: Seeds the weights' initialisation and the batch order.
    seed: int


@dataclass(frozen=True, kw_only=True)
class CandidateSpec(WorkerTask):
    """Everything a worker needs to train one candidate of a search."""

    settings: TrainingSettings
    plan: TransferPlan = SCRATCH
    donor_digest: str | None = None
    #: Epochs already trained: more than 0 continues the candidate from its own checkpoint to
    #: ``settings.epochs`` (successive halving promoted it).
    start_epoch: int = 0
    #: The digest of the checkpoint a continued candidate starts from.
    own_digest: str | None = None
    #: Save the optimizer and random states with the checkpoint, so it can be continued.
    keep_state: bool = False


#: What a task on a worker produced: the storage record (see :class:`ckptnas.storage.TaskOutcome`).
TaskResult = TaskOutcome
#: What training one candidate of a search produced: the storage record the registry keeps
#: (see :class:`ckptnas.storage.CandidateOutcome`).
CandidateResult = CandidateOutcome
