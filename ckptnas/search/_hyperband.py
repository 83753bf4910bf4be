"""Asynchronous Hyperband (Li et al., 2020): several ASHA brackets of different minimum epochs.

Bracket ``s`` is successive halving whose candidates start at rung ``s`` of the ladder
``min_epochs * reduction_factor ** k`` (up to ``max_epochs``): bracket 0 is ASHA itself, the
most aggressive; the last starts higher and stops fewer candidates early. New candidates are
spread over the brackets in the proportions of synchronous Hyperband (bracket ``s`` gets
``ceil((s_max + 1) / (s_max - s + 1) * reduction_factor ** (s_max - s))`` of each cycle), in a
fixed interleaved order: the bracket of the ``k``-th candidate follows from ``k`` alone, so a
resumed run finds every candidate's bracket without storing it. Rungs are counted on the one
ladder, whatever a candidate's bracket.
"""

from __future__ import annotations

import math
from typing import Self

from ckptnas.config import SearchConfig, rung_epochs
from ckptnas.errors import ConfigError
from ckptnas.search._asha import SuccessiveHalving, check_rungs
from ckptnas.search._scheduler import CandidateState, Continue, New, Scheduler, option

__all__ = ["Hyperband", "bracket_cycle"]


def bracket_cycle(weights: list[int]) -> list[int]:
    """One cycle of brackets, each ``weights[s]`` times, interleaved (smooth round robin).

    Examples
    --------
    >>> bracket_cycle([3, 1])
    [0, 0, 1, 0]
    """
    credit = [0] * len(weights)
    cycle = []
    for _ in range(sum(weights)):
        credit = [c + w for c, w in zip(credit, weights, strict=True)]
        s = max(range(len(weights)), key=lambda b: (credit[b], -b))
        credit[s] -= sum(weights)
        cycle.append(s)
    return cycle


class Hyperband(Scheduler):
    """Asynchronous Hyperband: ``[search] scheduler = "hyperband"``.

    Parameters
    ----------
    min_epochs, max_epochs, reduction_factor : int
        The rung ladder, as for ASHA.
    brackets : int, optional
        How many brackets (``[search.scheduler_options] brackets``); all the ladder allows
        by default, one being ASHA.

    Examples
    --------
    >>> hyperband = Hyperband(1, 4, 2)
    >>> hyperband.rung_epochs, hyperband.cycle
    ((1, 2, 4), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    """

    options = ("brackets",)

    def __init__(
        self, min_epochs: int, max_epochs: int, reduction_factor: int, brackets: int = 0
    ) -> None:
        super().__init__(rung_epochs(min_epochs, max_epochs, reduction_factor))
        n = brackets or len(self.rung_epochs)
        if not 0 < n <= len(self.rung_epochs):
            raise ValueError(f"brackets = {n} must be between 1 and {len(self.rung_epochs)}")
        top = len(self.rung_epochs) - 1
        self.brackets = [
            SuccessiveHalving(self.rung_epochs[s], max_epochs, reduction_factor) for s in range(n)
        ]
        weights = [
            math.ceil((top + 1) / (top - s + 1) * reduction_factor ** (top - s)) for s in range(n)
        ]
        self.cycle = bracket_cycle(weights)
        #: New candidates started so far; the next one's bracket follows from it.
        self.n_started = 0

    @classmethod
    def from_config(cls, search: SearchConfig, training_epochs: int) -> Self:
        """The ladder of ``[search]``, ``brackets`` from ``[search.scheduler_options]``."""
        top = search.max_epochs or training_epochs
        brackets = search.scheduler_options.get("brackets", 0)
        return cls(search.min_epochs, top, search.reduction_factor, brackets)

    @classmethod
    def check_options(cls, search: SearchConfig, training_epochs: int) -> None:
        """Refuse rungs without room between them and more brackets than rungs."""
        super().check_options(search, training_epochs)
        check_rungs(search, training_epochs)
        top = search.max_epochs or training_epochs
        n = len(rung_epochs(search.min_epochs, top, search.reduction_factor))
        brackets = option(search, "brackets", 1, 1)
        if brackets > n:
            raise ConfigError(
                f"[search.scheduler_options] brackets = {brackets} must not exceed the {n} "
                "rungs of min_epochs, max_epochs and reduction_factor"
            )

    def new_epochs(self) -> int:
        """The first rung of the next new candidate's bracket."""
        return self.brackets[self._next_bracket()].first_epochs

    def continuation(self) -> Continue | None:
        """The due promotion of any bracket that goes highest (ties to the lower bracket)."""
        due = [p for b in self.brackets if (p := b.next_promotion()) is not None]
        if not due:
            return None
        best = max(due, key=lambda p: p.epochs)
        return Continue(*best)

    def started(self, candidate_id: int, decision: New | Continue) -> None:
        """Place a new candidate in its bracket, or mark a promotion there."""
        super().started(candidate_id, decision)
        if isinstance(decision, New):
            self.n_started += 1
        else:
            bracket = self.brackets[self.candidates[candidate_id].bracket]
            bracket.mark_promoted(candidate_id, decision.epochs)

    def _next_bracket(self) -> int:
        return self.cycle[self.n_started % len(self.cycle)]

    def _state(self, candidate_id: int, epochs: int) -> CandidateState:
        return CandidateState(candidate_id, epochs, epochs, bracket=self._next_bracket())

    def _reported(self, state: CandidateState) -> None:
        self.brackets[state.bracket].report(state.candidate_id, state.curve)

    def _replayed(self, state: CandidateState) -> None:
        self._reported(state)
        self.brackets[state.bracket].mark_promoted(state.candidate_id, state.target_epochs)
