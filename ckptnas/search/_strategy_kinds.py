"""The built-in strategies: the entries of :data:`~ckptnas.search.STRATEGIES`.

An entry of the strategies' registry has:

``check(config)``
    Refuses, with :class:`~ckptnas.errors.ConfigError` naming the key, ``[search]`` options it
    cannot run with (called when the configuration is read).
``make(config, space, common)``
    The :class:`~ckptnas.search.Strategy` searching ``space``; ``common`` holds the keywords
    every strategy takes (``seed``, ``allow_duplicates``, ``hyperparameters``, ``directions``).

Entries are small: numpy and Optuna are imported by ``make``. The Optuna samplers' entries are
in :mod:`~ckptnas.search._samplers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ckptnas.errors import ConfigError

if TYPE_CHECKING:
    from ckptnas.config import Config
    from ckptnas.search._base import Strategy
    from ckptnas.space import ResolvedSpace, SearchSpace


class StrategyKind(Protocol):
    """What the run asks an entry of :data:`~ckptnas.search.STRATEGIES`."""

    def check(self, config: Config) -> None:
        """Refuse ``[search]`` options this strategy cannot run with."""

    def make(
        self, config: Config, space: SearchSpace | ResolvedSpace, common: Mapping[str, Any]
    ) -> Strategy:
        """The strategy of ``config`` searching ``space``."""


class EvolutionKind:
    """``evolution``: regularized evolution (:class:`~ckptnas.search.RegularizedEvolution`)."""

    def check(self, config: Config) -> None:
        """Nothing beyond the ``[search]`` table's own checks."""

    def make(
        self, config: Config, space: SearchSpace | ResolvedSpace, common: Mapping[str, Any]
    ) -> Strategy:
        """Regularized evolution with ``population_size``, ``sample_size``, ``mutation_bias``."""
        from ckptnas.search._evolution import RegularizedEvolution

        search = config.search
        return RegularizedEvolution(
            space,
            population_size=search.population_size,
            sample_size=search.sample_size,
            mutation_bias=search.mutation_bias,
            **common,
        )


class RandomKind:
    """``random``: architectures drawn at random (:class:`~ckptnas.search.RandomSearch`)."""

    def check(self, config: Config) -> None:
        """Nothing beyond the ``[search]`` table's own checks."""

    def make(
        self, config: Config, space: SearchSpace | ResolvedSpace, common: Mapping[str, Any]
    ) -> Strategy:
        """Random search."""
        from ckptnas.search._random import RandomSearch

        return RandomSearch(space, **common)


class OptunaKind:
    """``optuna``: the Optuna sampler ``[search] sampler`` names, through ask and tell."""

    def check(self, config: Config) -> None:
        """Refuse a ``seed`` in ``[search.sampler_options]``: it is ``[experiment] seed``."""
        if "seed" in config.search.sampler_options:
            raise ConfigError(
                "[search.sampler_options] seed is not an option: the sampler is seeded with "
                "[experiment] seed"
            )

    def make(
        self, config: Config, space: SearchSpace | ResolvedSpace, common: Mapping[str, Any]
    ) -> Strategy:
        """An :class:`~ckptnas.search.OptunaStrategy`; a refused sampler option is one line."""
        from ckptnas.search._optuna import OptunaStrategy

        try:
            return OptunaStrategy(
                space,
                sampler=config.search.sampler,
                sampler_options=config.search.sampler_options,
                **common,
            )
        except ValueError as exc:
            raise ConfigError(f"[search.sampler_options] {exc}") from None
