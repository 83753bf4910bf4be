"""The strategy a configuration names."""

from __future__ import annotations

from ckptnas.config import Config, StrategyKind
from ckptnas.search._base import Strategy
from ckptnas.search._evolution import RegularizedEvolution
from ckptnas.search._random import RandomSearch
from ckptnas.space import ResolvedSpace, SearchSpace


def make_strategy(config: Config, space: SearchSpace | ResolvedSpace) -> Strategy:
    """The strategy a :class:`~ckptnas.config.Config` names."""
    seed, dupes = config.experiment.seed, config.experiment.allow_duplicates
    if config.search.strategy == StrategyKind.RANDOM:
        return RandomSearch(space, seed=seed, allow_duplicates=dupes)
    return RegularizedEvolution(
        space,
        population_size=config.search.population_size,
        sample_size=config.search.sample_size,
        mutation_bias=config.search.mutation_bias,
        seed=seed,
        allow_duplicates=dupes,
    )
