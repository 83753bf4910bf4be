"""Regularized (aging) evolution, the strategy of the published experiments."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from ckptnas.search._base import Strategy, Suggestion
from ckptnas.search._hyperparameters import HyperparameterSpace
from ckptnas.space import ResolvedSpace, SearchSpace
from ckptnas.storage import SearchStage


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al., 2019), as in DeepHyper.

    Until ``population_size`` candidates have reported, architectures are drawn at random;
    a seeded strategy (:meth:`~ckptnas.search.Strategy.seed_population`) proposes its seeds
    instead, then mutations of them, so that no member of its first population is random.
    Then each child is a one-node mutation of the best of ``sample_size`` members drawn from the
    population, and the population keeps only the ``population_size`` most recent reports, so
    old members age out whatever their score. Failed candidates never join the population.
    A child keeps its parent's hyperparameters, one of them drawn again half of the time.
    With several objectives, members are compared by the first.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
    population_size, sample_size : int
    mutation_bias : float
        Favour mutating later nodes (see :meth:`SearchSpace.mutate`).
    seed : int
    allow_duplicates : bool
    hyperparameters : HyperparameterSpace, optional
    directions : sequence of {"maximize", "minimize"}
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
        hyperparameters: HyperparameterSpace | None = None,
        directions: Sequence[str] = ("maximize",),
    ) -> None:
        super().__init__(space, seed, allow_duplicates, hyperparameters, directions)
        if not 0 < sample_size <= population_size:
            raise ValueError("sample_size must be in 1..population_size")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_bias = mutation_bias
        #: Members and their scores (the primary objective, higher is better).
        self.population: deque[tuple[Suggestion, float]] = deque(maxlen=population_size)

    def propose(self) -> Suggestion:
        if len(self.population) < self.population_size:
            if self.seed_archs:
                return self.propose_seed(self.next_seed())
            return Suggestion.of(
                self.space.sample(self.rng),
                self.sample_hyperparameters(),
                stage=SearchStage.INITIAL_POPULATION,
            )
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])[0]
        arch = self.space.mutate(parent.arch, self.rng, self.mutation_bias)
        values = parent.hyperparameters
        if self.hyperparameters and self.rng.random() < 0.5:
            values = self.hyperparameters.mutate(values, self.rng)
        return Suggestion.of(arch, values, stage=SearchStage.MUTATION)

    def tell(self, suggestion: Suggestion, values: Sequence[float]) -> None:
        super().tell(suggestion, values)
        score = self.score(values)
        if math.isfinite(score):
            self.population.append((suggestion, score))
