"""The registries of the search: strategies, schedulers, transfer policies and objectives.

Third-party entries register under the entry point groups ``ckptnas.strategies``,
``ckptnas.schedulers``, ``ckptnas.policies`` and ``ckptnas.objectives``.
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry

#: ``[search] strategy`` to what makes the strategy.
STRATEGIES: Registry[Any] = Registry(
    "strategy", key="[search] strategy", group="ckptnas.strategies"
)

#: ``[search] scheduler`` to what makes the scheduler.
SCHEDULERS: Registry[Any] = Registry(
    "scheduler", key="[search] scheduler", group="ckptnas.schedulers"
)
SCHEDULERS.register("none", "ckptnas.search._plain:PlainScheduler")
SCHEDULERS.register("asha", "ckptnas.search._asha:ASHA")
SCHEDULERS.register("hyperband", "ckptnas.search._hyperband:Hyperband")
SCHEDULERS.register("median", "ckptnas.search._median:MedianStopping")

#: ``[transfer] policy`` to the transfer policy.
POLICIES: Registry[Any] = Registry("policy", key="[transfer] policy", group="ckptnas.policies")

#: An entry of ``[search] objectives`` to the objective.
OBJECTIVES: Registry[Any] = Registry(
    "objective", key="[search] objectives", group="ckptnas.objectives"
)
