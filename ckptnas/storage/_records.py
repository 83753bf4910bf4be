"""The records storage keeps: what crosses into a run's files, as frozen dataclasses.

The layers above build these records and hand them over (the search its transfer plans, the
runtime what a candidate produced, full training what a run produced); storage never needs to
know the classes those layers use for their own work. A record here names only what is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from ckptnas.config import Config
from ckptnas.space import Architecture
from ckptnas.storage._states import CandidateStatus, Init


@dataclass(frozen=True)
class Transfer:
    """What a candidate inherited: the donor, the tensors copied from it, how much they hold.

    :class:`ckptnas.search.TransferPlan` is a transfer with what a worker needs to carry it out.

    Attributes
    ----------
    donor : int or None
        The donor candidate's id, ``None`` for training from scratch.
    tensors : tuple of str
        Names of the recipient's tensors that are copied.
    prefix_length : int
        Number of leading architecture choices the two candidates share.
    n_params : int
        Number of scalars copied.
    run : str
        The donor's run, when it is a candidate of an earlier run (``[transfer] donor_runs``):
        that run directory's absolute path; empty for a donor of this run.
    """

    donor: int | None = None
    tensors: tuple[str, ...] = ()
    prefix_length: int = 0
    n_params: int = 0
    run: str = ""

    @property
    def is_warm(self) -> bool:
        """Whether anything is copied."""
        return self.donor is not None and bool(self.tensors)


#: Nothing inherited: random weights.
NO_TRANSFER = Transfer()


@dataclass(frozen=True, kw_only=True)
class TaskOutcome:
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
class CandidateOutcome(TaskOutcome):
    """What training one candidate of a search produced, and the transfer it started from."""

    plan: Transfer = field(default=NO_TRANSFER)
    #: Median seconds of a forward pass over 256 validation rows, measured when the candidate
    #: finished (NaN when it failed).
    latency: float = math.nan
    #: The value of each of ``[search] objectives``, computed once by the client that records
    #: the candidate (what the strategy is told); empty until then.
    objective_values: tuple[float, ...] = ()

    @property
    def objective(self) -> float:
        """The final validation metric; NaN when the candidate failed."""
        if self.status != CandidateStatus.OK or not self.val_metric:
            return math.nan
        return self.val_metric[-1]


@dataclass(frozen=True, kw_only=True)
class FullTrainOutcome(TaskOutcome):
    """What one full-training run of a search candidate produced."""

    run_id: int
    init: Init
    #: The epoch whose weights early stopping kept (1-based; 0 when none was finite).
    best_epoch: int = 0
    #: The validation metric of that epoch.
    final_metric: float = math.nan
    #: Seconds to build the model and, for ``checkpoint``, read and verify the checkpoint.
    setup_time: float = math.nan
    #: The metric of the kept epoch's weights on the held-out test rows (NaN: none held out).
    test_metric: float = math.nan


@dataclass(frozen=True, kw_only=True)
class RunMeta:
    """A search's description: its configuration, its space and the data it learns from.

    Attributes
    ----------
    config : Config
        The resolved configuration.
    space : dict
        The search space as its ``to_dict`` describes it, with its ``node_names``.
    dataset, task, metric : str
        The data's name, ``classification`` or ``regression``, and the validation metric.
    created : str
        When the run was made (ISO 8601, UTC); a resumed run keeps the first one recorded.
    """

    config: Config
    space: dict[str, Any]
    dataset: str
    task: str
    metric: str
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def values(self) -> dict[str, str]:
        """The registry's ``meta`` rows, key to text (``created`` left out)."""
        return {
            "config": self.config.to_toml(),
            "space": json.dumps(self.space),
            "dataset": self.dataset,
            "task": self.task,
            "metric": self.metric,
            "policy": str(self.config.transfer.policy),
            "freeze": str(int(self.config.transfer.freeze)),
            "precision": str(self.config.training.precision),
            "seed": str(self.config.experiment.seed),
        }


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate of the lineage registry, as read back."""

    id: int
    arch: Architecture
    status: CandidateStatus
    parent: int | None
    transferred: tuple[str, ...]
    prefix_length: int
    n_params: int
    n_params_transferred: int
    objective: float
    checkpoint_digest: str | None
    donor_usable: bool
    worker: str
    device: str
    submit_time: float
    start_time: float
    end_time: float
    attempts: int
    error: str
    note: str
    #: Training hyperparameters searched for this candidate (empty when none were).
    hyperparameters: dict[str, float]
    #: Epochs the candidate is to have trained once its latest task ends (0: not recorded,
    #: a run written before version 2); more than its curve holds while it is being continued.
    target_epochs: int
    #: Median seconds of a forward pass over 256 validation rows (NaN when not measured).
    latency: float
    #: The stage of the search that proposed it, as its strategy said (see
    #: :attr:`ckptnas.search.Suggestion.stage`; empty in runs written before version 3).
    stage: str = ""
    #: The value of each of ``[search] objectives`` at its last training (NaN for a failed
    #: candidate; empty in runs written before version 4, and while it is pending).
    objective_values: tuple[float, ...] = ()
    #: The run of its parent when that is a candidate of an earlier run (its directory's
    #: absolute path; empty for a parent of this run, and in runs written before version 5).
    parent_run: str = ""
    #: Why the run deleted its checkpoint (a :class:`~ckptnas.storage.Deletion`: ``useful``
    #: or ``max_bytes``); empty while it is kept, and in runs written before version 6.
    checkpoint_deleted: str = ""
    #: When its checkpoint was deleted (seconds since the epoch; NaN while it is kept).
    deleted_time: float = math.nan

    @property
    def parent_label(self) -> str:
        """The parent as shown: its id, ``run:id`` for one of an earlier run, or empty.

        ``run`` is the name of that run's directory (``last-week:17``).
        """
        if self.parent is None:
            return ""
        if self.parent_run:
            return f"{PurePath(self.parent_run).name}:{self.parent}"
        return str(self.parent)

    @property
    def frac_params_transferred(self) -> float:
        """Share of the candidate's scalars copied from its parent."""
        return self.n_params_transferred / self.n_params if self.n_params else 0.0
