"""The epoch budget of a search: ``[experiment] max_training_epochs``.

Training epochs are the fair unit when searches are compared, whatever their scheduler:
:class:`EpochBudget` counts the epochs of every task submitted (finished or not) and how many
each candidate has behind it, and says whether more training is affordable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ckptnas.storage import CandidateRecord, CandidateStatus, Curve


class EpochBudget:
    """Epochs committed and trained per candidate.

    Parameters
    ----------
    budget : int
        ``[experiment] max_training_epochs``; 0 for no limit.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        #: Epochs of every task submitted so far, finished or not.
        self.committed = 0
        #: Epochs each successfully trained candidate has behind it.
        self.trained: dict[int, int] = {}

    def affordable(self, epochs: int) -> bool:
        """Whether ``epochs`` more training stay within ``max_training_epochs``."""
        return not self.budget or self.committed + epochs <= self.budget

    def replay(
        self,
        records: Iterable[CandidateRecord],
        curves: Mapping[int, Sequence[Curve]],
        first_epochs: int,
    ) -> list[CandidateRecord]:
        """Count a registry's candidates; returns those being continued when the client stopped.

        A candidate recorded before targets were (schema version 1) counts the epochs of its
        curve, or ``first_epochs`` while it is pending.
        """
        continuing = []
        for record in records:
            curve = curves.get(record.id, [])
            target = max(record.target_epochs or first_epochs, len(curve))
            self.committed += target
            if record.status != CandidateStatus.OK:
                continue
            self.trained[record.id] = len(curve)
            if target > len(curve):
                continuing.append(record)
        return continuing

    def started(self, epochs: int) -> None:
        """Count a new candidate's training."""
        self.committed += epochs

    def continued(self, candidate_id: int, epochs: int) -> int:
        """Count a continuation to ``epochs``; returns the epochs the candidate starts from."""
        done = self.trained[candidate_id]
        self.committed += epochs - done
        return done

    def reported(self, candidate_id: int, epochs: int) -> None:
        """Learn how many epochs a successfully trained candidate has behind it."""
        self.trained[candidate_id] = epochs
