"""Regularized (aging) evolution, the strategy of the published experiments."""

from __future__ import annotations

import math
from collections import deque

from ckptnas.search._base import Strategy
from ckptnas.space import Architecture, ResolvedSpace, SearchSpace


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al., 2019), as in DeepHyper.

    Until ``population_size`` candidates have reported, architectures are drawn at random.
    Then each child is a one-node mutation of the best of ``sample_size`` members drawn from the
    population, and the population keeps only the ``population_size`` most recent reports, so
    old members age out whatever their score. Failed candidates never join the population.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
    population_size, sample_size : int
    mutation_bias : float
        Favour mutating later nodes (see :meth:`SearchSpace.mutate`).
    seed : int
    allow_duplicates : bool
    """

    # The algorithm's published parameters, one keyword each as [search] names them.
    def __init__(  # noqa: PLR0913
        self,
        space: SearchSpace | ResolvedSpace,
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
