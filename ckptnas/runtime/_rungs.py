"""The client's side of successive halving and of the epoch budget.

:class:`Rungs` counts the training epochs a search has committed (the fair unit when searches
are compared: ``[experiment] max_training_epochs``), and, with ``[search] scheduler = "asha"``,
knows how far each candidate trained and which one to continue next. Without a scheduler every
candidate trains ``[training] epochs`` and nothing is promoted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ckptnas.config import Config, Scheduler
from ckptnas.search import Promotion, SuccessiveHalving
from ckptnas.storage import CandidateRecord, CandidateStatus, Curve


class Rungs:
    """Epochs committed and trained per candidate, and ASHA's promotions when it is on.

    Parameters
    ----------
    config : Config
    """

    def __init__(self, config: Config) -> None:
        search = config.search
        epochs = search.rungs(config.training.epochs)
        self.halving = (
            SuccessiveHalving(epochs[0], epochs[-1], search.reduction_factor)
            if search.scheduler == Scheduler.ASHA
            else None
        )
        #: Epochs a new candidate trains.
        self.first_epochs = epochs[0]
        #: Epochs of the longest training any candidate gets.
        self.max_epochs = epochs[-1]
        self.budget = config.experiment.max_training_epochs
        #: Epochs of every task submitted so far, finished or not.
        self.committed = 0
        #: Epochs each successfully trained candidate has behind it.
        self.trained: dict[int, int] = {}

    def affordable(self, epochs: int) -> bool:
        """Whether ``epochs`` more training stay within ``max_training_epochs``."""
        return not self.budget or self.committed + epochs <= self.budget

    def replay(
        self, records: Iterable[CandidateRecord], curves: Mapping[int, Sequence[Curve]]
    ) -> list[CandidateRecord]:
        """Learn a registry's candidates; returns those being continued when the client stopped.

        A candidate recorded before targets were (schema version 1) counts the epochs of its
        curve, or those of a full training while it is pending.
        """
        continuing = []
        for record in records:
            curve = curves.get(record.id, [])
            target = max(record.target_epochs or self.first_epochs, len(curve))
            self.committed += target
            if record.status != CandidateStatus.OK:
                continue
            self.trained[record.id] = len(curve)
            if self.halving is not None:
                self.halving.report(record.id, [c[2] for c in curve])
                self.halving.mark_promoted(record.id, target)
            if target > len(curve):
                continuing.append(record)
        return continuing

    def started(self, epochs: int) -> None:
        """Count a new candidate's training."""
        self.committed += epochs

    def next_promotion(self) -> Promotion | None:
        """The candidate to continue now, if ASHA is on, one is due and the budget allows it."""
        if self.halving is None:
            return None
        promotion = self.halving.next_promotion()
        if promotion is None:
            return None
        if not self.affordable(promotion.epochs - self.trained[promotion.candidate_id]):
            return None
        return promotion

    def promote(self, promotion: Promotion) -> int:
        """Count a promotion's training; returns the epochs the candidate starts from."""
        assert self.halving is not None
        done = self.trained[promotion.candidate_id]
        self.halving.mark_promoted(promotion.candidate_id, promotion.epochs)
        self.committed += promotion.epochs - done
        return done

    def reported(self, candidate_id: int, val_metric: Sequence[float]) -> None:
        """Learn a successfully trained candidate's whole validation curve."""
        self.trained[candidate_id] = len(val_metric)
        if self.halving is not None:
            self.halving.report(candidate_id, val_metric)
