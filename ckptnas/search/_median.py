"""The median stopping rule (Golovin et al., 2017): stop a candidate that trails the median.

Every candidate trains ``grace_epochs`` first, then on in steps of ``step_epochs`` up to
``max_epochs``. After each step, a candidate at ``t`` epochs is stopped when the best
validation metric it reached so far is below the median of the other candidates' running
averages (the mean of their metric over their first ``t`` epochs), counting only candidates
that trained ``t`` epochs or more, and only once there are ``min_candidates`` of them; else it
is continued. Decisions are made as results come in, so nothing waits for other candidates.

On resume, a candidate recorded with no continuation pending and fewer than ``max_epochs``
epochs is decided again from what the run holds then (a decision to stop is not recorded).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Self

from ckptnas.config import SearchConfig
from ckptnas.errors import ConfigError
from ckptnas.search._scheduler import CandidateState, Continue, New, Scheduler, option

__all__ = ["MedianStopping", "step_epochs"]


def step_epochs(grace: int, step: int, top: int) -> tuple[int, ...]:
    """The epochs after which the rule decides: ``grace``, then every ``step``, then ``top``.

    Examples
    --------
    >>> step_epochs(2, 3, 10)
    (2, 5, 8, 10)
    """
    return (*range(grace, top, step), top)


class MedianStopping(Scheduler):
    """The median stopping rule: ``[search] scheduler = "median"``.

    Parameters
    ----------
    grace_epochs : int
        Epochs every candidate trains before the rule applies (default ``[search]
        min_epochs``).
    step_epochs : int
        Epochs between two decisions (default ``grace_epochs``).
    max_epochs : int
        Epochs of the longest training (``[search] max_epochs``, else ``[training] epochs``).
    min_candidates : int
        Other candidates needed at an epoch before anyone is stopped there (default 3).

    Examples
    --------
    >>> rule = MedianStopping(1, 1, 3, min_candidates=2)
    >>> for candidate, curve in enumerate([[0.5], [0.6], [0.2]]):
    ...     rule.started(candidate, New(1))
    ...     rule.on_result(candidate, curve)
    >>> rule.candidates[2].stopped, rule.next(lambda epochs: True)
    (True, Continue(candidate_id=0, epochs=2))
    """

    options = ("grace_epochs", "step_epochs", "min_candidates")

    def __init__(
        self, grace_epochs: int, step_epochs_: int, max_epochs: int, min_candidates: int = 3
    ) -> None:
        super().__init__(step_epochs(grace_epochs, step_epochs_, max_epochs))
        self.min_candidates = min_candidates
        #: Candidates the rule let through, waiting for a worker, oldest first.
        self.due: deque[int] = deque()

    @classmethod
    def from_config(cls, search: SearchConfig, training_epochs: int) -> Self:
        """From ``[search] min_epochs``, ``max_epochs`` and ``[search.scheduler_options]``."""
        opts = search.scheduler_options
        grace = opts.get("grace_epochs", search.min_epochs)
        top = search.max_epochs or training_epochs
        return cls(grace, opts.get("step_epochs", grace), top, opts.get("min_candidates", 3))

    @classmethod
    def check_options(cls, search: SearchConfig, training_epochs: int) -> None:
        """Refuse options that are not positive integers, and a grace as long as training."""
        super().check_options(search, training_epochs)
        grace = option(search, "grace_epochs", search.min_epochs, 1)
        option(search, "step_epochs", grace, 1)
        option(search, "min_candidates", 3, 1)
        top = search.max_epochs or training_epochs
        if grace >= top:
            raise ConfigError(
                f"[search.scheduler_options] grace_epochs = {grace} must be below max_epochs = "
                f"{top} when scheduler = 'median' (max_epochs 0 means [training] epochs)"
            )

    def continuation(self) -> Continue | None:
        """The oldest candidate the rule let through, to its next step."""
        if not self.due:
            return None
        state = self.candidates[self.due[0]]
        return Continue(state.candidate_id, self.rung_epochs[self.rung_of(state.trained) + 1])

    def started(self, candidate_id: int, decision: New | Continue) -> None:
        """Learn a new candidate, or that a due one is on its way."""
        super().started(candidate_id, decision)
        if isinstance(decision, Continue):
            self.due.remove(candidate_id)

    def median_at(self, epochs: int, besides: int) -> float | None:
        """The median running average at ``epochs`` of the candidates but ``besides``.

        ``None`` while fewer than ``min_candidates`` trained that long.
        """
        averages = [
            math.fsum(s.curve[:epochs]) / epochs
            for s in self.candidates.values()
            if s.candidate_id != besides
            and s.trained >= epochs
            and all(map(math.isfinite, s.curve[:epochs]))
        ]
        return statistics.median(averages) if len(averages) >= self.min_candidates else None

    def _reported(self, state: CandidateState) -> None:
        t = state.trained
        if state.in_flight or state.stopped or t >= self.max_epochs:
            return
        median = self.median_at(t, state.candidate_id)
        best = max(state.curve, default=math.nan)
        if median is not None and not best >= median:  # NaN trails every median
            state.stopped = True
        elif state.candidate_id not in self.due:
            self.due.append(state.candidate_id)
