"""The scheduler protocol: how long each candidate trains, and which one trains on.

A scheduler is told each result (a candidate's validation metric per epoch trained so far) and
asked what to run next: a new candidate (:class:`New`), a continuation of one to more epochs
(:class:`Continue`) or nothing yet (``None``). It never reaches into the loop that asks it; the
loop keeps the epoch budget and the registry. Every scheduler names the *rungs* it decides at
(the epochs after which a candidate may be stopped or continued): :meth:`Scheduler.rung_of` is
the one place that turns a candidate's epochs into the rung it reached, for the results file.

A new scheduler is one module with one :class:`Scheduler` subclass and one line in
:data:`ckptnas.search._registry.SCHEDULERS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ckptnas.config import Config, SearchConfig
from ckptnas.errors import ConfigError
from ckptnas.plugins import registry

__all__ = [
    "CandidateState",
    "Continue",
    "Decision",
    "New",
    "Scheduler",
    "make_scheduler",
    "option",
]


@dataclass(frozen=True)
class New:
    """Train a new candidate for ``epochs`` epochs."""

    epochs: int


@dataclass(frozen=True)
class Continue:
    """Train candidate ``candidate_id`` on, from its checkpoint, to ``epochs`` epochs in all."""

    candidate_id: int
    epochs: int


#: What a scheduler answers when asked what to run next; ``None``: nothing yet.
Decision = New | Continue | None


@dataclass
class CandidateState:
    """What a scheduler knows of one candidate."""

    candidate_id: int
    #: Epochs of its first training (the :class:`New` it was started with).
    first_epochs: int
    #: Epochs it was last sent to reach.
    target_epochs: int
    #: Validation metric after each epoch trained (higher is better); empty until it succeeds.
    curve: list[float] = field(default_factory=list)
    #: The bracket it belongs to (schedulers with several, such as Hyperband; else 0).
    bracket: int = 0
    #: Whether the scheduler decided that it trains no further.
    stopped: bool = False

    @property
    def trained(self) -> int:
        """Epochs trained successfully so far."""
        return len(self.curve)

    @property
    def in_flight(self) -> bool:
        """Whether it was sent to train further than it has."""
        return self.target_epochs > self.trained


class Scheduler(ABC):
    """How long candidates train: told each result, asked what to run next.

    Parameters
    ----------
    rung_epochs : sequence of int
        The epochs after which the scheduler decides, lowest first; the last is the longest
        training any candidate gets.
    """

    #: The keys of ``[search.scheduler_options]`` the scheduler takes.
    options: ClassVar[tuple[str, ...]] = ()
    #: Whether candidates may be continued (workers then keep their training state).
    continues: ClassVar[bool] = True

    def __init__(self, rung_epochs: Sequence[int]) -> None:
        self.rung_epochs = tuple(rung_epochs)
        self.candidates: dict[int, CandidateState] = {}

    # -- configuration ---------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_config(cls, search: SearchConfig, training_epochs: int) -> Self:
        """The scheduler ``[search]`` describes (``[training] epochs`` as the default length)."""

    @classmethod
    def check(cls, config: Config) -> None:
        """Check ``[search.scheduler_options]``, then the epoch budget against a first training.

        Called once every table of a configuration is read.

        Raises
        ------
        ConfigError
            Naming the key at fault.
        """
        cls.check_options(config.search, config.training.epochs)
        first = cls.from_config(config.search, config.training.epochs).first_epochs
        budget = config.experiment.max_training_epochs
        if budget and budget < first:
            raise ConfigError(
                f"[experiment] max_training_epochs = {budget} is less than the {first} epochs "
                "one candidate trains"
            )

    @classmethod
    def check_options(cls, search: SearchConfig, training_epochs: int) -> None:
        """Refuse options the scheduler does not take; subclasses check their values too.

        Raises
        ------
        ConfigError
            Naming the key at fault.
        """
        for key in search.scheduler_options:
            if key not in cls.options:
                takes = ", ".join(cls.options) or "none"
                raise ConfigError(
                    f"[search.scheduler_options] {key!r} is not an option of scheduler "
                    f"{search.scheduler!r} (its options: {takes})"
                )

    # -- what it knows ---------------------------------------------------------------------
    @property
    def first_epochs(self) -> int:
        """Epochs of the lowest rung."""
        return self.rung_epochs[0]

    @property
    def max_epochs(self) -> int:
        """Epochs of the longest training any candidate gets."""
        return self.rung_epochs[-1]

    def rung_of(self, epochs: int) -> int:
        """The highest rung a candidate trained ``epochs`` epochs reached; -1 for none."""
        return sum(e <= epochs for e in self.rung_epochs) - 1

    # -- decisions -------------------------------------------------------------------------
    def new_epochs(self) -> int:
        """Epochs the next new candidate trains."""
        return self.first_epochs

    def continuation(self) -> Continue | None:
        """The candidate to train on now, if one is due (none by default)."""
        return None

    def next(self, affordable: Callable[[int], bool]) -> Decision:
        """What to run next: a due continuation first, else a new candidate.

        Parameters
        ----------
        affordable : callable
            Whether so many more epochs of training stay within the run's budget.
        """
        step = self.continuation()
        if step is not None:
            more = step.epochs - self.candidates[step.candidate_id].trained
            if affordable(more):
                return step
        epochs = self.new_epochs()
        return New(epochs) if affordable(epochs) else None

    def started(self, candidate_id: int, decision: New | Continue) -> None:
        """Learn that a decision was acted on (``candidate_id`` names the new candidate)."""
        if isinstance(decision, New):
            self.candidates[candidate_id] = self._state(candidate_id, decision.epochs)
        else:
            self.candidates[candidate_id].target_epochs = decision.epochs

    def on_result(self, candidate_id: int, curve: Sequence[float]) -> None:
        """Learn a successfully trained candidate's whole validation curve."""
        state = self.candidates[candidate_id]
        state.curve = [float(v) for v in curve]
        self._reported(state)

    # -- resume ----------------------------------------------------------------------------
    def replay(self, recorded: Sequence[tuple[int, int, Sequence[float]]]) -> None:
        """Relearn a run's candidates, in the order they were registered.

        Parameters
        ----------
        recorded : sequence of (candidate id, target epochs, curve)
            The curve of the validation metric, empty for a candidate that failed or is
            pending; target epochs 0 when the run recorded none (the first rung then).
        """
        for candidate_id, target, curve in recorded:
            self.started(candidate_id, New(self.new_epochs()))
            state = self.candidates[candidate_id]
            state.target_epochs = max(target or state.first_epochs, len(curve))
            state.curve = [float(v) for v in curve]
        for state in self.candidates.values():
            if state.curve:
                self._replayed(state)

    # -- hooks -----------------------------------------------------------------------------
    def _state(self, candidate_id: int, epochs: int) -> CandidateState:
        """The state of a new candidate (subclasses add its bracket)."""
        return CandidateState(candidate_id, epochs, epochs)

    def _reported(self, state: CandidateState) -> None:  # noqa: B027  # optional hook
        """React to a new result of ``state``'s candidate."""

    def _replayed(self, state: CandidateState) -> None:
        """Relearn a recorded candidate with a curve; by default as if it had just reported."""
        self._reported(state)


def option(search: SearchConfig, key: str, default: int, low: int) -> int:
    """An integer of ``[search.scheduler_options]``, at least ``low``, or a one-line error."""
    value: Any = search.scheduler_options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(
            f"[search.scheduler_options] {key} = {value!r} must be an integer >= {low}"
        )
    return value


def make_scheduler(config: Config) -> Scheduler:
    """The scheduler ``[search] scheduler`` names, made from ``[search]``."""
    cls: type[Scheduler] = registry("scheduler").get(config.search.scheduler)
    return cls.from_config(config.search, config.training.epochs)
