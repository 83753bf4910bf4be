"""Transfer plans: which of a donor's tensors a new candidate takes.

Policies
--------
``none``
    Every candidate starts from random weights.
``lcp``
    Selective weight transfer by longest common prefix. The donor is the trained candidate whose
    architecture tuple shares the longest prefix with the new one (found through the registry's
    prefix tree); ties between equally long prefixes go to the donor with the higher objective,
    and remaining ties to the earlier candidate. The plan copies every layer whose identity (see
    :mod:`ckptnas.space`) is the same in both networks: the layers of the common prefix, plus any
    branch that is identical although a later-listed branch differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ckptnas.space import SearchSpace


@dataclass(frozen=True)
class TransferPlan:
    """Which tensors a candidate copies from which donor.

    Attributes
    ----------
    donor : int or None
        The donor candidate's id, ``None`` for training from scratch.
    tensors : tuple of str
        Names of the tensors to copy; a layer keeps its name in donor and recipient.
    prefix_length : int
        Number of leading architecture choices the two candidates share.
    n_params : int
        Number of scalars copied.
    """

    donor: int | None = None
    tensors: tuple[str, ...] = ()
    prefix_length: int = 0
    n_params: int = 0

    @property
    def is_warm(self) -> bool:
        """Whether the plan copies anything."""
        return self.donor is not None and bool(self.tensors)


SCRATCH = TransferPlan()


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading positions where two architectures agree."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def plan_transfer(
    space: SearchSpace, recipient: Sequence[int], donor: Sequence[int], donor_id: int
) -> TransferPlan:
    """Plan copying every layer the donor and the recipient share.

    Parameters
    ----------
    space : SearchSpace
    recipient, donor : sequence of int
        The two architectures.
    donor_id : int

    Returns
    -------
    TransferPlan
        Scratch (``donor=None``) when they share no layer.
    """
    donor_ids = set(space.identities(donor).values())
    shared = [layer for layer in space.layers(recipient) if layer.identity in donor_ids]
    if not shared:
        return SCRATCH
    return TransferPlan(
        donor=donor_id,
        tensors=tuple(name for layer in shared for name in layer.tensors),
        prefix_length=common_prefix_length(recipient, donor),
        n_params=sum(layer.n_params for layer in shared),
    )
