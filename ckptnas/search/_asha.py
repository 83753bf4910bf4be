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
from typing import NamedTuple

from ckptnas.config import rung_epochs

__all__ = ["Promotion", "Rung", "SuccessiveHalving", "rung_epochs"]


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
