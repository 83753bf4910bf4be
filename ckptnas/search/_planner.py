"""Transfer policies: for a new candidate, the donor and the plan (:class:`Planner`).

``none``
    Every candidate trains from scratch.
``lcp``
    The donor shares the longest prefix of architecture choices (a prefix tree,
    :class:`~ckptnas.search.DonorIndex`); the plan copies every layer with an identity of the
    donor's. The published method and the default.
``aligned``
    The donor is the trained candidate that shares the most parameters with the new one, by
    layer identity, wherever the layers are (an identity index,
    :class:`~ckptnas.search.IdentityIndex`, touches only candidates sharing a layer); the
    plan copies every layer whose identity matches one of the donor's. Among all donors it
    copies the most parameters, so at least as many as ``lcp`` for the same candidate.
``widen``
    The donor as for ``lcp``; the plan also takes each layer that differs from a donor layer
    only in width (equal width-free identities, from tracing) and copies the block both shapes
    cover. Not function-preserving: the copied block meets fresh rows and columns. Where the
    network cannot be traced, the plan is ``lcp``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ckptnas.config import Policy
from ckptnas.errors import SearchSpaceError
from ckptnas.search._donors import DonorCandidate, DonorIndex
from ckptnas.search._identity_index import IdentityIndex
from ckptnas.search._plan import (
    SCRATCH,
    LayeredSpace,
    TransferPlan,
    common_prefix_length,
    plan_from_layers,
    plan_transfer,
    plan_widened,
)
from ckptnas.space import ResolvedSpace, SearchSpace


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
        self.identities = IdentityIndex()
        self._arch: dict[int, tuple[int, ...]] = {}
        self._dense_traced: ResolvedSpace | None = None

    def rebuild(self, records: Iterable[DonorCandidate]) -> None:
        """Forget every donor, then offer a run's usable records as donors."""
        self.prefixes = DonorIndex()
        self.identities = IdentityIndex()
        self._arch = {}
        for record in records:
            if record.donor_usable:
                self.add(record.id, record.arch, record.objective)

    def add(self, candidate_id: int, arch: Sequence[int], objective: float) -> None:
        """Offer a trained candidate as a donor; one without a finite objective is ignored."""
        if not math.isfinite(objective):
            return
        self._arch[candidate_id] = tuple(arch)
        if self.policy == Policy.ALIGNED:
            self.identities.add(candidate_id, self.space.layers(arch), objective)
        else:
            self.prefixes.add(candidate_id, arch, objective)

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again (its checkpoint is broken, say)."""
        self.prefixes.discard(candidate_id)
        self.identities.discard(candidate_id)
        self._arch.pop(candidate_id, None)

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """The transfer plan of a new candidate: :data:`SCRATCH` when it inherits nothing."""
        if self.policy == Policy.NONE:
            return SCRATCH
        if self.policy == Policy.ALIGNED:
            return self._aligned(arch)
        match = self.prefixes.best_donor(arch)
        if match is None:
            return SCRATCH
        donor, donor_arch, _ = match
        if self.policy == Policy.WIDEN:
            return self._widened(arch, donor_arch, donor)
        return plan_transfer(self.space, arch, donor_arch, donor)

    def _widened(self, arch: Sequence[int], donor_arch: Sequence[int], donor: int) -> TransferPlan:
        space = self.space
        traced = space if isinstance(space, ResolvedSpace) else None
        if isinstance(space, SearchSpace):  # its hand-written layers have no width-free twin
            traced = self._dense_traced = self._dense_traced or ResolvedSpace(space)
        if traced is not None:
            try:
                recipient, given = traced.traced_layers(arch), traced.traced_layers(donor_arch)
            except SearchSpaceError:  # cannot trace: the exact layers only
                traced = None
        if traced is None:
            return plan_transfer(space, arch, donor_arch, donor)
        prefix = common_prefix_length(arch, donor_arch)
        return plan_widened(recipient, given, donor, prefix)

    def _aligned(self, arch: Sequence[int]) -> TransferPlan:
        layers = self.space.layers(arch)
        match = self.identities.best_donor(layers)
        if match is None:
            return SCRATCH
        donor = match[0]
        donor_arch = self._arch[donor]
        prefix = common_prefix_length(arch, donor_arch)
        return plan_from_layers(layers, self.space.layers(donor_arch), donor, prefix)
