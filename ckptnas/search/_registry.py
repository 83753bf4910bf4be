"""The registries of the search: strategies, samplers, schedulers, transfer policies, objectives.

Third-party entries register under the entry point groups ``ckptnas.strategies``,
``ckptnas.samplers``, ``ckptnas.schedulers``, ``ckptnas.policies`` and ``ckptnas.objectives``.
The samplers' registry is defined in :mod:`~ckptnas.search._samplers`, below the Optuna strategy
that looks its sampler up there, and re-exported here.
The protocols: :class:`~ckptnas.search._strategy_kinds.StrategyKind` for strategies,
:class:`~ckptnas.search._policies.TransferPolicy` for what a policy entry makes of a space, and
:mod:`ckptnas.search._objective_kinds` for objectives.
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry
from ckptnas.search._objective_kinds import Measured
from ckptnas.search._policies import Aligned, LongestPrefix, NoTransfer, Widen
from ckptnas.search._samplers import SAMPLERS
from ckptnas.search._strategy_kinds import EvolutionKind, OptunaKind, RandomKind

__all__ = ["OBJECTIVES", "POLICIES", "SAMPLERS", "SCHEDULERS", "STRATEGIES"]

#: ``[search] strategy`` to what makes the strategy.
STRATEGIES: Registry[Any] = Registry(
    "strategy", key="[search] strategy", group="ckptnas.strategies"
)
STRATEGIES.register("evolution", EvolutionKind())
STRATEGIES.register("random", RandomKind())
STRATEGIES.register("optuna", OptunaKind())

#: ``[search] scheduler`` to what makes the scheduler.
SCHEDULERS: Registry[Any] = Registry(
    "scheduler", key="[search] scheduler", group="ckptnas.schedulers"
)
SCHEDULERS.register("none", "ckptnas.search._plain:PlainScheduler")
SCHEDULERS.register("asha", "ckptnas.search._asha:ASHA")
SCHEDULERS.register("hyperband", "ckptnas.search._hyperband:Hyperband")
SCHEDULERS.register("median", "ckptnas.search._median:MedianStopping")

#: ``[transfer] policy`` to what makes the transfer policy of a space.
POLICIES: Registry[Any] = Registry("policy", key="[transfer] policy", group="ckptnas.policies")
POLICIES.register("lcp", LongestPrefix)
POLICIES.register("none", NoTransfer)
POLICIES.register("aligned", Aligned)
POLICIES.register("widen", Widen)

#: An entry of ``[search] objectives`` to the objective.
OBJECTIVES: Registry[Any] = Registry(
    "objective", key="[search] objectives", group="ckptnas.objectives"
)
OBJECTIVES.register("val_metric", Measured("val_metric", "maximize"))
OBJECTIVES.register("val_loss", Measured("val_loss", "minimize"))
OBJECTIVES.register("n_params", Measured("n_params", "minimize"))
OBJECTIVES.register("latency", Measured("latency", "minimize"))
