"""Search strategies with an ask/tell interface: random search and regularized evolution.

A strategy proposes architectures (:meth:`Strategy.ask`) and learns their objectives
(:meth:`Strategy.tell`, higher is better, NaN for a failed candidate). Unless duplicates are
allowed, it never proposes an architecture it has proposed before in the run.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque

import numpy as np

from ckptnas.config import Config
from ckptnas.errors import SearchExhaustedError
from ckptnas.space import Architecture, SearchSpace

_MAX_TRIES = 1000


class Strategy(ABC):
    """Base class: seeded proposal of unseen architectures.

    Parameters
    ----------
    space : SearchSpace
    seed : int
    allow_duplicates : bool
        Propose architectures again even if they were proposed before.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, allow_duplicates: bool = False) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.allow_duplicates = allow_duplicates
        self.seen: set[Architecture] = set()

    @abstractmethod
    def propose(self) -> Architecture:
        """One architecture, possibly already seen."""

    def ask(self) -> Architecture:
        """The next architecture to train.

        Raises
        ------
        SearchExhaustedError
            If no unseen architecture turns up in many tries.
        """
        for _ in range(_MAX_TRIES):
            arch = self.propose()
            if self.allow_duplicates or arch not in self.seen:
                self.seen.add(arch)
                return arch
        raise SearchExhaustedError(
            f"no unseen architecture found in {_MAX_TRIES} proposals; "
            "the search space may be exhausted (set [experiment] allow_duplicates = true)"
        )

    def tell(self, arch: Architecture, objective: float) -> None:
        """Learn a candidate's objective (NaN when it failed)."""
        self.seen.add(arch)


class RandomSearch(Strategy):
    """Every architecture drawn uniformly, one choice per node."""

    def propose(self) -> Architecture:
        return self.space.sample(self.rng)


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al., 2019), as in DeepHyper.

    Until ``population_size`` candidates have reported, architectures are drawn at random.
    Then each child is a one-node mutation of the best of ``sample_size`` members drawn from the
    population, and the population keeps only the ``population_size`` most recent reports, so
    old members age out whatever their score. Failed candidates never join the population.

    Parameters
    ----------
    space : SearchSpace
    population_size, sample_size : int
    mutation_bias : float
        Favour mutating later nodes (see :meth:`SearchSpace.mutate`).
    seed : int
    allow_duplicates : bool
    """

    def __init__(
        self,
        space: SearchSpace,
        population_size: int = 10,
        sample_size: int = 3,
        mutation_bias: float = 0.0,
        seed: int = 0,
        allow_duplicates: bool = False,
    ) -> None:
        super().__init__(space, seed, allow_duplicates)
        if not 0 < sample_size <= population_size:
            raise ValueError("sample_size must be in 1..population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_bias = mutation_bias
        self.population: deque[tuple[Architecture, float]] = deque(maxlen=population_size)

    def propose(self) -> Architecture:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng, self.mutation_bias)

    def tell(self, arch: Architecture, objective: float) -> None:
        super().tell(arch, objective)
        if math.isfinite(objective):
            self.population.append((arch, objective))


def make_strategy(config: Config, space: SearchSpace) -> Strategy:
    """The strategy a :class:`~ckptnas.config.Config` names."""
    seed, dupes = config.experiment.seed, config.experiment.allow_duplicates
    if config.search.strategy == "random":
        return RandomSearch(space, seed=seed, allow_duplicates=dupes)
    return RegularizedEvolution(
        space,
        population_size=config.search.population_size,
        sample_size=config.search.sample_size,
        mutation_bias=config.search.mutation_bias,
        seed=seed,
        allow_duplicates=dupes,
    )
