"""Transfer policies: for a new candidate, the donor and the plan.

An entry of :data:`~ckptnas.search.POLICIES` is a class (or any callable) that takes the run's
space and returns a :class:`TransferPolicy`; the :class:`~ckptnas.search.Planner` keeps one per
run and asks it the three things below. The built-in policies:

``none`` (:class:`NoTransfer`)
    Every candidate trains from scratch.
``lcp`` (:class:`LongestPrefix`)
    The donor shares the longest prefix of architecture choices (a prefix tree,
    :class:`~ckptnas.search.DonorIndex`); the plan copies every layer with an identity of the
    donor's. The published method and the default.
``aligned`` (:class:`Aligned`)
    The donor is the trained candidate that shares the most parameters with the new one, by
    layer identity, wherever the layers are (an identity index,
    :class:`~ckptnas.search.IdentityIndex`, touches only candidates sharing a layer); the
    plan copies every layer whose identity matches one of the donor's. Among all donors it
    copies the most parameters, so at least as many as ``lcp`` for the same candidate.
``widen`` (:class:`Widen`)
    The donor as for ``lcp``; the plan also takes each layer that differs from a donor layer
    only in width (equal width-free identities, from tracing) and copies the block both shapes
    cover. Not function-preserving: the copied block meets fresh rows and columns. Where the
    network cannot be traced, the plan is ``lcp``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ckptnas.errors import SearchSpaceError
from ckptnas.search._donors import DonorIndex
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

if TYPE_CHECKING:
    from ckptnas.space import ResolvedSpace


class TransferPolicy(Protocol):
    """What the planner asks a transfer policy."""

    def add(self, candidate_id: int, arch: tuple[int, ...], objective: float) -> None:
        """Offer a trained candidate (with a finite objective) as a donor."""

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again."""

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """The transfer plan of a new candidate: :data:`SCRATCH` when it inherits nothing."""


class NoTransfer:
    """``none``: every candidate trains from scratch."""

    def __init__(self, space: LayeredSpace) -> None:
        self.space = space

    def add(self, candidate_id: int, arch: tuple[int, ...], objective: float) -> None:
        """Nothing is ever inherited: donors are not kept."""

    def discard(self, candidate_id: int) -> None:
        """Nothing to forget."""

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """Always :data:`SCRATCH`."""
        return SCRATCH


class LongestPrefix:
    """``lcp``: the donor with the longest common prefix, its layers of equal identity."""

    def __init__(self, space: LayeredSpace) -> None:
        self.space = space
        self.prefixes = DonorIndex()

    def add(self, candidate_id: int, arch: tuple[int, ...], objective: float) -> None:
        """Index the candidate's architecture."""
        self.prefixes.add(candidate_id, arch, objective)

    def discard(self, candidate_id: int) -> None:
        """Remove the candidate from the index."""
        self.prefixes.discard(candidate_id)

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """The plan from the donor sharing the longest prefix (the best-scored on ties)."""
        match = self.prefixes.best_donor(arch)
        if match is None:
            return SCRATCH
        donor, donor_arch, _ = match
        return self.plan_from(arch, donor_arch, donor)

    def plan_from(self, arch: Sequence[int], donor_arch: Sequence[int], donor: int) -> TransferPlan:
        """The layers of equal identity, copied from the chosen donor."""
        return plan_transfer(self.space, arch, donor_arch, donor)


class Widen(LongestPrefix):
    """``widen``: as ``lcp``, and the overlapping block of layers differing only in width."""

    def __init__(self, space: LayeredSpace) -> None:
        super().__init__(space)
        self._dense_traced: ResolvedSpace | None = None

    def plan_from(self, arch: Sequence[int], donor_arch: Sequence[int], donor: int) -> TransferPlan:
        """The widened plan; ``lcp``'s where the networks cannot be traced."""
        from ckptnas.space import ResolvedSpace, SearchSpace

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


class Aligned:
    """``aligned``: the donor sharing the most parameters by layer identity, anywhere."""

    def __init__(self, space: LayeredSpace) -> None:
        self.space = space
        self.identities = IdentityIndex()
        self._arch: dict[int, tuple[int, ...]] = {}

    def add(self, candidate_id: int, arch: tuple[int, ...], objective: float) -> None:
        """Index the candidate's layers by identity."""
        self._arch[candidate_id] = arch
        self.identities.add(candidate_id, self.space.layers(arch), objective)

    def discard(self, candidate_id: int) -> None:
        """Remove the candidate from the index."""
        self.identities.discard(candidate_id)
        self._arch.pop(candidate_id, None)

    def plan(self, arch: Sequence[int]) -> TransferPlan:
        """Every layer whose identity matches one of the best donor's."""
        layers = self.space.layers(arch)
        match = self.identities.best_donor(layers)
        if match is None:
            return SCRATCH
        donor = match[0]
        donor_arch = self._arch[donor]
        prefix = common_prefix_length(arch, donor_arch)
        return plan_from_layers(layers, self.space.layers(donor_arch), donor, prefix)
