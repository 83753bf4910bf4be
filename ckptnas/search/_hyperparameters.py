"""Training hyperparameters searched alongside the architecture (``[search.hyperparameters]``).

A hyperparameter changes how a candidate trains, never what its layers are, so it never stops a
warm start: layer identities (see :mod:`ckptnas.space`) do not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: A candidate's hyperparameter values, by name (``batch_size`` an int, the others floats).
Values = dict[str, float]


@dataclass(frozen=True)
class Hyperparameter:
    """One searched hyperparameter: a range (``low``..``high``, optionally log) or choices.

    Examples
    --------
    >>> lr = Hyperparameter("learning_rate", low=1e-4, high=1e-1, log=True)
    >>> 1e-4 <= lr.sample(np.random.default_rng(0)) <= 1e-1
    True
    """

    name: str
    low: float = math.nan
    high: float = math.nan
    log: bool = False
    choices: tuple[float, ...] = ()

    @classmethod
    def from_config(cls, name: str, value: Any) -> Hyperparameter:
        """From a checked ``[search.hyperparameters]`` entry: a range table or a list."""
        if isinstance(value, list):
            return cls(name, choices=tuple(value))
        return cls(name, float(value["low"]), float(value["high"]), bool(value.get("log", False)))

    def sample(self, rng: np.random.Generator) -> float:
        """One value: a uniform choice, or uniform over the range (over its log when ``log``)."""
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def distribution(self) -> BaseDistribution:
        """The same range as an Optuna distribution."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution

        if self.choices:
            return CategoricalDistribution(list(self.choices))
        return FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class HyperparameterSpace:
    """The hyperparameters a search samples per candidate; empty when none is searched."""

    params: tuple[Hyperparameter, ...] = ()

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> HyperparameterSpace:
        """From the checked ``[search.hyperparameters]`` table, in name order."""
        return cls(tuple(Hyperparameter.from_config(k, table[k]) for k in sorted(table)))

    def __bool__(self) -> bool:
        return bool(self.params)

    @property
    def names(self) -> tuple[str, ...]:
        """The hyperparameters' names, in order."""
        return tuple(p.name for p in self.params)

    def sample(self, rng: np.random.Generator) -> Values:
        """One value of each hyperparameter."""
        return {p.name: p.sample(rng) for p in self.params}

    def mutate(self, values: Mapping[str, float], rng: np.random.Generator) -> Values:
        """The values with one hyperparameter drawn again."""
        out = dict(values)
        if self.params:
            param = self.params[int(rng.integers(len(self.params)))]
            out[param.name] = param.sample(rng)
        return out

    def distributions(self) -> dict[str, BaseDistribution]:
        """Name to Optuna distribution, for ``study.ask``."""
        return {p.name: p.distribution() for p in self.params}
