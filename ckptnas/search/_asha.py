"""Asynchronous successive halving (ASHA; Li et al., 2018): which candidate trains on.

Every candidate first trains to the lowest rung (``min_epochs``). Rung ``k`` is
``min_epochs * reduction_factor ** k`` epochs, up to ``max_epochs`` (which is always the top
rung). Whenever a worker is free, the client asks :meth:`SuccessiveHalving.next_promotion`:
going down from the highest rung, the first candidate among the best ``1 / reduction_factor``
of a rung's results that was not promoted yet goes up one rung, continuing from its own
checkpoint. Nothing waits for a rung to fill, so workers never idle; a candidate that looked
good early may be promoted later, when more results have come in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Self

from ckptnas.config import SearchConfig, rung_epochs
from ckptnas.errors import ConfigError
from ckptnas.search._scheduler import CandidateState, Continue, New, Scheduler

__all__ = ["ASHA", "Promotion", "Rung", "SuccessiveHalving", "rung_epochs"]


class Promotion(NamedTuple):
    """A candidate to continue, and the epochs it is to reach."""

    candidate_id: int
    epochs: int


@dataclass
class Rung:
    """The results reported at one rung and which of them were promoted from it."""

    epochs: int
    #: Candidate id to its score at this rung (higher is better).
    scores: dict[int, float] = field(default_factory=dict)
    promoted: set[int] = field(default_factory=set)

    def best(self, n: int) -> list[int]:
        """The ``n`` best candidates, ties to the earlier one."""
        return sorted(self.scores, key=lambda c: (-self.scores[c], c))[:n]


class SuccessiveHalving:
    """The rungs of a run and the promotion rule of ASHA.

    Parameters
    ----------
    min_epochs, max_epochs : int
        Epochs of the lowest and the top rung.
    reduction_factor : int
        One in this many results of a rung is promoted; the next rung trains this many times
        as long.

    Examples
    --------
    >>> asha = SuccessiveHalving(1, 4, 2)
    >>> for candidate, score in enumerate([0.1, 0.5]):
    ...     asha.report(candidate, [score])
    >>> asha.next_promotion()
    Promotion(candidate_id=1, epochs=2)
    """

    def __init__(self, min_epochs: int, max_epochs: int, reduction_factor: int) -> None:
        self.reduction_factor = reduction_factor
        self.rungs = [Rung(e) for e in rung_epochs(min_epochs, max_epochs, reduction_factor)]

    @property
    def first_epochs(self) -> int:
        """Epochs a new candidate trains."""
        return self.rungs[0].epochs

    @property
    def max_epochs(self) -> int:
        """Epochs of the top rung."""
        return self.rungs[-1].epochs

    def rung_of(self, epochs: int) -> int:
        """The highest rung a candidate trained ``epochs`` epochs reached; -1 for none."""
        return sum(rung.epochs <= epochs for rung in self.rungs) - 1

    def report(self, candidate_id: int, scores: Sequence[float]) -> None:
        """Record a candidate's per-epoch scores (higher is better) at every rung they reach.

        A NaN score (a failed candidate) enters no rung.
        """
        for rung in self.rungs:
            if len(scores) >= rung.epochs and math.isfinite(scores[rung.epochs - 1]):
                rung.scores[candidate_id] = float(scores[rung.epochs - 1])

    def mark_promoted(self, candidate_id: int, epochs: int) -> None:
        """Record that a candidate was sent on to ``epochs``, from every rung below it."""
        for rung in self.rungs:
            if rung.epochs < epochs:
                rung.promoted.add(candidate_id)

    def next_promotion(self) -> Promotion | None:
        """The candidate to continue now, if any (Li et al., 2018, Algorithm 2).

        From the highest rung down: the first of a rung's best ``len // reduction_factor``
        results that was not promoted yet.
        """
        for k in range(len(self.rungs) - 2, -1, -1):
            rung = self.rungs[k]
            for candidate in rung.best(len(rung.scores) // self.reduction_factor):
                if candidate not in rung.promoted:
                    return Promotion(candidate, self.rungs[k + 1].epochs)
        return None


def check_rungs(search: SearchConfig, training_epochs: int) -> None:
    """Refuse rungs without room between them: ``min_epochs`` must be below the top."""
    top = search.max_epochs or training_epochs
    if search.min_epochs >= top:
        raise ConfigError(
            f"[search] min_epochs = {search.min_epochs} must be below max_epochs = {top} "
            f"when scheduler = {search.scheduler!r} (max_epochs 0 means [training] epochs)"
        )


class ASHA(Scheduler):
    """Asynchronous successive halving as a :class:`~ckptnas.search.Scheduler`.

    Parameters
    ----------
    min_epochs, max_epochs, reduction_factor : int
        As for :class:`SuccessiveHalving`; ``[search]`` keys of the same names.

    Examples
    --------
    >>> asha = ASHA(1, 4, 2)
    >>> for candidate, score in enumerate([0.1, 0.5]):
    ...     asha.started(candidate, asha.next(lambda epochs: True))
    ...     asha.on_result(candidate, [score])
    >>> asha.next(lambda epochs: True)
    Continue(candidate_id=1, epochs=2)
    """

    def __init__(self, min_epochs: int, max_epochs: int, reduction_factor: int) -> None:
        self.halving = SuccessiveHalving(min_epochs, max_epochs, reduction_factor)
        super().__init__(tuple(rung.epochs for rung in self.halving.rungs))

    @classmethod
    def from_config(cls, search: SearchConfig, training_epochs: int) -> Self:
        """Rungs from ``[search] min_epochs``, ``max_epochs`` and ``reduction_factor``."""
        top = search.max_epochs or training_epochs
        return cls(search.min_epochs, top, search.reduction_factor)

    @classmethod
    def check_options(cls, search: SearchConfig, training_epochs: int) -> None:
        """Refuse options, and rungs without room between them."""
        super().check_options(search, training_epochs)
        check_rungs(search, training_epochs)

    def continuation(self) -> Continue | None:
        """The next promotion of successive halving, if one is due."""
        promotion = self.halving.next_promotion()
        return None if promotion is None else Continue(*promotion)

    def started(self, candidate_id: int, decision: New | Continue) -> None:
        """Learn a new candidate, or mark a promoted one as promoted from the rungs below."""
        super().started(candidate_id, decision)
        if isinstance(decision, Continue):
            self.halving.mark_promoted(candidate_id, decision.epochs)

    def _reported(self, state: CandidateState) -> None:
        self.halving.report(state.candidate_id, state.curve)

    def _replayed(self, state: CandidateState) -> None:
        self.halving.report(state.candidate_id, state.curve)
        self.halving.mark_promoted(state.candidate_id, state.target_epochs)
