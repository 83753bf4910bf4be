"""The planner of a run: its donors, and for a new candidate, the donor and the plan.

How donors are kept and matched is the transfer policy's (:mod:`ckptnas.search._policies`),
which ``[transfer] policy`` names in :data:`~ckptnas.search.POLICIES`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ckptnas.search._donors import DonorCandidate
from ckptnas.search._plan import LayeredSpace, TransferPlan
from ckptnas.search._policies import TransferPolicy
from ckptnas.search._registry import POLICIES
from ckptnas.space import Architecture


class Planner:
    """The donors of a run and the policy that plans each new candidate's transfer.

    Parameters
    ----------
    policy : str
        A name of :data:`~ckptnas.search.POLICIES` (``lcp``, ``none``, ``aligned``,
        ``widen``, or one a plugin installs).
    space : SearchSpace or ResolvedSpace
        Gives each architecture's layers (cached by :class:`~ckptnas.space.ResolvedSpace`).

    Examples
    --------
    >>> from ckptnas.space import SearchSpace
    >>> space = SearchSpace((("x", 4),), output_size=1, num_nodes=2, input_nodes=0)
    >>> planner = Planner("lcp", space)
    >>> planner.add(0, (1, 0, 1, 0), 0.5)
    >>> planner.plan((1, 0, 2, 0)).donor
    0
    """

    def __init__(self, policy: str, space: LayeredSpace) -> None:
        self.name = policy
        self._make: Any = POLICIES.get(policy)
        self.space = space
        self.policy: TransferPolicy = self._make(space)
        #: Donors of earlier runs by key (negative, so never an id of this run): kept when
        #: the run's own donors are rebuilt.
        self.foreign: dict[int, tuple[Architecture, float]] = {}
        self._next_foreign = -1

    def rebuild(self, records: Iterable[DonorCandidate]) -> None:
        """Forget every donor of this run, then offer its usable records as donors."""
        self.policy = self._make(self.space)
        for key, (arch, objective) in self.foreign.items():
            self.add(key, arch, objective)
        for record in records:
            if record.donor_usable:
                self.add(record.id, record.arch, record.objective)

    def add_foreign(self, arch: Sequence[int], objective: float) -> int:
        """Offer a trained candidate of an earlier run as a donor; returns its key here.

        The key is negative, so a plan's ``donor`` tells it apart from this run's candidates.
        """
        key = self._next_foreign
        self._next_foreign -= 1
        self.foreign[key] = (tuple(arch), objective)
        self.add(key, arch, objective)
        return key

    def add(self, candidate_id: int, arch: Sequence[int], objective: float) -> None:
        """Offer a trained candidate as a donor; one without a finite objective is ignored."""
        if math.isfinite(objective):
            self.policy.add(candidate_id, tuple(arch), objective)

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again (its checkpoint is broken, say)."""
        self.foreign.pop(candidate_id, None)
        self.policy.discard(candidate_id)

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """The transfer plan of a new candidate: :data:`SCRATCH` when it inherits nothing."""
        return self.policy.plan(arch)
