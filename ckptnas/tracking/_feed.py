"""What a tracker has not logged yet: new results, and new epochs of continued candidates.

A listener is told at every write of ``results.nc``; it must not log the whole run again each
time. :class:`ResultFeed` keeps, per candidate, the status and the number of epochs it handed
out last, and compares them with :meth:`ckptnas.storage.LineageRegistry.finished` (one query):
only a candidate that is new, or whose curve grew since (a scheduler such as ASHA continued it
from its checkpoint), is read in full and handed out again, with the epochs already logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ckptnas.storage import CandidateRecord, CandidateStatus, Curve, LineageRegistry


@dataclass(frozen=True)
class Update:
    """One candidate to log: its record, its whole curve, and how many epochs are logged.

    Attributes
    ----------
    record : CandidateRecord
    curve : list of Curve
        Per epoch ``(train_loss, val_loss, val_metric, epoch_time)``, from the first epoch.
    logged : int
        Epochs of ``curve`` already logged: 0 for a new candidate, more for a continued one.
    finished : int
        Candidates finished (ok or failed) up to this one, in the order they were seen: the
        step of the run's best-so-far.
    best_so_far : float
        The highest objective of the candidates seen up to this one (NaN before the first).
    """

    record: CandidateRecord
    curve: list[Curve]
    logged: int
    finished: int
    best_so_far: float


def _nothing_logged(candidate_id: int) -> int | None:
    return None


class ResultFeed:
    """The results a listener has not logged yet, and the best objective among them all.

    Parameters
    ----------
    logged_before : callable, optional
        Candidate id to the epochs of it that an earlier process logged (a resumed run), or
        ``None`` when it logged nothing of it; asked once per candidate, the first time it is
        seen. By default nothing was.
    """

    def __init__(self, logged_before: Callable[[int], int | None] = _nothing_logged) -> None:
        self._logged_before = logged_before
        self._seen: dict[int, tuple[CandidateStatus, int]] = {}
        self._objectives: dict[int, float] = {}
        #: The highest objective of any candidate seen so far (NaN before the first).
        self.best_so_far = math.nan

    @property
    def n_finished(self) -> int:
        """Candidates seen finished (ok or failed) so far."""
        return len(self._seen)

    def updates(self, registry: LineageRegistry) -> list[Update]:
        """The candidates that finished or trained on since the last call, in id order."""
        out = []
        for cid, (status, epochs, objective) in registry.finished().items():
            seen = self._seen.get(cid)
            if seen == (status, epochs):
                continue
            before = self._logged_before(cid) if seen is None else None
            logged = seen[1] if seen is not None else min(before or 0, epochs)
            self._seen[cid] = (status, epochs)
            if status == CandidateStatus.OK and math.isfinite(objective):
                self._objectives[cid] = objective
                if not objective <= self.best_so_far:  # NaN before the first
                    self.best_so_far = objective
            if before is not None and before >= epochs:
                continue  # an earlier process logged all of it
            record, curve = registry.get(cid), registry.curve(cid)
            out.append(Update(record, curve, logged, len(self._seen), self.best_so_far))
        return out

    def best(self) -> int | None:
        """The id of the successful candidate with the highest objective, or ``None``."""
        if not self._objectives:
            return None
        return max(self._objectives, key=lambda cid: self._objectives[cid])
