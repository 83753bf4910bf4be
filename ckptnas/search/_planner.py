"""Transfer policies: for a new candidate, the donor and the plan (:class:`Planner`).

``none``
    Every candidate trains from scratch.
``lcp``
    The donor shares the longest prefix of architecture choices (a prefix tree,
    :class:`~ckptnas.search.DonorIndex`); the plan copies every layer with an identity of the
    donor's. The published method and the default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ckptnas.config import Policy
from ckptnas.search._donors import DonorCandidate, DonorIndex
from ckptnas.search._plan import SCRATCH, LayeredSpace, TransferPlan, plan_transfer


class Planner:
    """The donors of a run and the policy that plans each new candidate's transfer.

    Parameters
    ----------
    policy : str
        One of :class:`~ckptnas.config.Policy`.
    space : SearchSpace or ResolvedSpace
        Gives each architecture's layers (cached by :class:`~ckptnas.space.ResolvedSpace`).

    Examples
    --------
    >>> from ckptnas.space import SearchSpace
    >>> space = SearchSpace((("x", 4),), output_size=1, num_nodes=2)
    >>> planner = Planner("lcp", space)
    >>> planner.add(0, (1, 0, 1, 0), 0.5)
    >>> planner.plan((1, 0, 2, 0)).donor
    0
    """

    def __init__(self, policy: str, space: LayeredSpace) -> None:
        self.policy = Policy(policy)
        self.space = space
        self.prefixes = DonorIndex()

    def rebuild(self, records: Iterable[DonorCandidate]) -> None:
        """Forget every donor, then offer a run's usable records as donors."""
        self.prefixes = DonorIndex()
        for record in records:
            if record.donor_usable:
                self.add(record.id, record.arch, record.objective)

    def add(self, candidate_id: int, arch: Sequence[int], objective: float) -> None:
        """Offer a trained candidate as a donor; one without a finite objective is ignored."""
        if math.isfinite(objective):
            self.prefixes.add(candidate_id, arch, objective)

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again (its checkpoint is broken, say)."""
        self.prefixes.discard(candidate_id)

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """The transfer plan of a new candidate: :data:`SCRATCH` when it inherits nothing."""
        if self.policy == Policy.NONE:
            return SCRATCH
        match = self.prefixes.best_donor(arch)
        if match is None:
            return SCRATCH
        donor, donor_arch, _ = match
        return plan_transfer(self.space, arch, donor_arch, donor)
