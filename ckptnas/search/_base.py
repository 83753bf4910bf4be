"""The strategy base class: an ask/tell interface that never proposes a candidate twice.

A strategy proposes candidates (:meth:`Strategy.ask`: a :class:`Suggestion`, an architecture
and its training hyperparameters) and learns their objective values (:meth:`Strategy.tell`, one
value per objective, NaN for a failed candidate). Unless duplicates are allowed, it never
proposes a suggestion it has proposed before in the run.

A strategy may be seeded (:meth:`Strategy.seed_population`): its first proposals are then
given architectures, such as the best candidates of earlier runs, and mutations of them,
whatever it would have drawn, the way an HPO search is warm-started from earlier trials.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ckptnas.errors import SearchExhaustedError
from ckptnas.search._hyperparameters import HyperparameterSpace, Values
from ckptnas.space import Architecture, ResolvedSpace, SearchSpace
from ckptnas.storage import SearchStage

_MAX_TRIES = 1000


@dataclass(frozen=True)
class Suggestion:
    """A proposed candidate: its architecture and its training hyperparameters.

    Two suggestions are the same when both agree; ``trial`` only lets the strategy that made
    one find its own bookkeeping again (an Optuna trial number) and ``stage`` says how the
    strategy came to propose it (:class:`~ckptnas.storage.SearchStage`, recorded with the
    candidate): neither
    takes part in that.
    """

    arch: Architecture
    params: tuple[tuple[str, float], ...] = ()
    trial: int | None = field(default=None, compare=False)
    stage: str = field(default="", compare=False)

    @classmethod
    def of(
        cls,
        arch: Sequence[int],
        hyperparameters: Mapping[str, float] | None = None,
        trial: int | None = None,
        stage: str = "",
    ) -> Suggestion:
        """A suggestion from an architecture and a mapping of hyperparameters."""
        return cls(
            tuple(int(a) for a in arch),
            tuple(sorted((hyperparameters or {}).items())),
            trial,
            stage,
        )

    @property
    def hyperparameters(self) -> Values:
        """The hyperparameter values by name (empty when none is searched)."""
        return dict(self.params)


class Strategy(ABC):
    """Base class: seeded proposal of unseen candidates.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
    seed : int
    allow_duplicates : bool
        Propose a suggestion again even if it was proposed before.
    hyperparameters : HyperparameterSpace, optional
        Training hyperparameters sampled with each architecture.
    directions : sequence of {"maximize", "minimize"}
        One per objective value :meth:`tell` receives; the first objective is the primary one.
    """

    def __init__(
        self,
        space: SearchSpace | ResolvedSpace,
        seed: int = 0,
        allow_duplicates: bool = False,
        hyperparameters: HyperparameterSpace | None = None,
        directions: Sequence[str] = ("maximize",),
    ) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.allow_duplicates = allow_duplicates
        self.hyperparameters = hyperparameters or HyperparameterSpace()
        self.directions = tuple(directions)
        self.seen: set[Suggestion] = set()
        #: Favour mutating later nodes when mutating (see :meth:`SearchSpace.mutate`).
        self.mutation_bias = 0.0
        #: The architectures it was seeded with, best first (see :meth:`seed_population`).
        self.seed_archs: list[Architecture] = []
        #: Proposals still to be seeded.
        self.to_seed = 0
        self._seed_mutations = 0

    @abstractmethod
    def propose(self) -> Suggestion:
        """One suggestion, possibly already seen."""

    def reject(self, suggestion: Suggestion) -> None:  # noqa: B027  # an optional hook
        """Forget a proposal :meth:`ask` turned down as already seen (nothing to do here)."""

    def ask(self) -> Suggestion:
        """The next candidate to train; a seeded one while any is left (:meth:`seed_population`).

        Raises
        ------
        SearchExhaustedError
            If no unseen suggestion turns up in many tries.
        """
        for _ in range(_MAX_TRIES):
            seeding = self.to_seed > 0
            suggestion = self.propose_seed(self.next_seed()) if seeding else self.propose()
            if self.allow_duplicates or suggestion not in self.seen:
                self.seen.add(suggestion)
                self.to_seed -= seeding
                return suggestion
            self.reject(suggestion)
        raise SearchExhaustedError(
            f"no unseen architecture found in {_MAX_TRIES} proposals; "
            "the search space may be exhausted (set [experiment] allow_duplicates = true)"
        )

    def seed_population(self, archs: Sequence[Sequence[int]], size: int) -> None:
        """Make the next ``size`` proposals ``archs``, then mutations of them.

        Each architecture of ``archs`` (best first; each must be one of this space) is proposed
        once, in order, unless the run proposed it already; once they are all proposed, each
        seeded proposal mutates one of them in turn, best first. Seeded suggestions are tagged
        ``seeded`` (:class:`~ckptnas.storage.SearchStage`) and their hyperparameters drawn as
        usual. With no architectures, nothing is seeded.

        Parameters
        ----------
        archs : sequence of architectures
            Such as the best trained candidates of earlier runs.
        size : int
            Proposals to seed: the first population's size, less the seeded proposals a
            resumed run made before it stopped.
        """
        self.seed_archs = list(dict.fromkeys(tuple(int(a) for a in arch) for arch in archs))
        self.to_seed = max(size, 0) if self.seed_archs else 0

    def next_seed(self) -> Architecture:
        """The next seed the run has not proposed, else a mutation of a seed (best first)."""
        proposed = {suggestion.arch for suggestion in self.seen}
        for arch in self.seed_archs:
            if arch not in proposed:
                return arch
        parent = self.seed_archs[self._seed_mutations % len(self.seed_archs)]
        self._seed_mutations += 1
        return self.space.mutate(parent, self.rng, self.mutation_bias)

    def propose_seed(self, arch: Architecture) -> Suggestion:
        """The seeded suggestion of ``arch``, its hyperparameters drawn (a hook to override)."""
        return Suggestion.of(arch, self.sample_hyperparameters(), stage=SearchStage.SEEDED)

    def tell(self, suggestion: Suggestion, values: Sequence[float]) -> None:
        """Learn a candidate's objective values, one per direction (NaN when it failed)."""
        self.seen.add(suggestion)

    def score(self, values: Sequence[float]) -> float:
        """The primary objective as a score where higher is better; NaN when it has none."""
        value = float(values[0]) if values else math.nan
        return -value if self.directions[0] == "minimize" else value

    def sample_hyperparameters(self) -> Values:
        """Hyperparameter values drawn with the strategy's generator."""
        return self.hyperparameters.sample(self.rng)
