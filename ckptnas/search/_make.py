"""The strategy a configuration names."""

from __future__ import annotations

from ckptnas.config import Config, StrategyKind
from ckptnas.errors import ConfigError
from ckptnas.search._base import Strategy
from ckptnas.search._evolution import RegularizedEvolution
from ckptnas.search._hyperparameters import HyperparameterSpace
from ckptnas.search._optuna import OptunaStrategy
from ckptnas.search._random import RandomSearch
from ckptnas.space import ResolvedSpace, SearchSpace


def make_strategy(config: Config, space: SearchSpace | ResolvedSpace) -> Strategy:
    """The strategy a :class:`~ckptnas.config.Config` names.

    Raises
    ------
    ConfigError
        If the Optuna sampler refuses its ``[search.sampler_options]``.
    """
    search = config.search
    common = {
        "seed": config.experiment.seed,
        "allow_duplicates": config.experiment.allow_duplicates,
        "hyperparameters": HyperparameterSpace.from_config(search.hyperparameters),
        "directions": search.resolved_directions,
    }
    if search.strategy == StrategyKind.RANDOM:
        return RandomSearch(space, **common)  # type: ignore[arg-type]
    if search.strategy == StrategyKind.OPTUNA:
        try:
            return OptunaStrategy(
                space,
                sampler=search.sampler,
                sampler_options=search.sampler_options,
                **common,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            raise ConfigError(f"[search.sampler_options] {exc}") from None
    return RegularizedEvolution(
        space,
        population_size=search.population_size,
        sample_size=search.sample_size,
        mutation_bias=search.mutation_bias,
        **common,  # type: ignore[arg-type]
    )
