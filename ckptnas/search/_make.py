"""The strategy a configuration names, made by its entry of :data:`~ckptnas.search.STRATEGIES`."""

from __future__ import annotations

from ckptnas.config import Config
from ckptnas.search._base import Strategy
from ckptnas.search._hyperparameters import HyperparameterSpace
from ckptnas.search._registry import STRATEGIES
from ckptnas.space import ResolvedSpace, SearchSpace


def make_strategy(config: Config, space: SearchSpace | ResolvedSpace) -> Strategy:
    """The strategy a :class:`~ckptnas.config.Config` names.

    Raises
    ------
    ConfigError
        If the strategy refuses its options (an Optuna sampler its
        ``[search.sampler_options]``).
    """
    search = config.search
    common = {
        "seed": config.experiment.seed,
        "allow_duplicates": config.experiment.allow_duplicates,
        "hyperparameters": HyperparameterSpace.from_config(search.hyperparameters),
        "directions": search.resolved_directions,
    }
    strategy: Strategy = STRATEGIES.get(search.strategy).make(config, space, common)
    return strategy
