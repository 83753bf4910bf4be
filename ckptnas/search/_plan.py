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

A layer's identity does not depend on its name, so the plan maps each recipient tensor to the
donor tensor it copies (:attr:`TransferPlan.mapping`): for a space whose layers move or are
renamed between architectures, the two names differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ckptnas.space import Layer, LayerLike
from ckptnas.storage import Transfer


class LayeredSpace(Protocol):
    """What planning needs of a space: its layers with identities (see :mod:`ckptnas.space`)."""

    def layers(self, arch: Sequence[int]) -> Sequence[LayerLike]: ...


@dataclass(frozen=True)
class TransferPlan(Transfer):
    """Which tensors a candidate copies from which donor, and under which names.

    The registry records the :class:`~ckptnas.storage.Transfer` part (donor, tensors, prefix
    length, scalars copied); the rest tells a worker how to carry the plan out.

    Attributes
    ----------
    donor : int or None
        The donor candidate's id, ``None`` for training from scratch.
    tensors : tuple of str
        Names of the recipient's tensors that are copied.
    prefix_length : int
        Number of leading architecture choices the two candidates share.
    n_params : int
        Number of scalars copied.
    sources : tuple of str
        The donor's name of each tensor of ``tensors``, in the same order; empty when every
        tensor has the same name in both (as in the dense space).
    partial : tuple of str
        Those of ``tensors`` whose layer differs from the donor's in width (policy ``widen``):
        the block both shapes cover is copied, the rest keeps its fresh initialisation, and
        they are never frozen.
    """

    sources: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sources and len(self.sources) != len(self.tensors):
            raise ValueError(
                f"a plan names {len(self.tensors)} tensors but {len(self.sources)} sources"
            )

    @property
    def donor_tensors(self) -> tuple[str, ...]:
        """The donor's names of the tensors to copy (what is read from its checkpoint)."""
        return self.sources or self.tensors

    @property
    def mapping(self) -> dict[str, str]:
        """Recipient tensor name to donor tensor name."""
        return dict(zip(self.tensors, self.donor_tensors, strict=True))


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
    space: LayeredSpace, recipient: Sequence[int], donor: Sequence[int], donor_id: int
) -> TransferPlan:
    """Plan copying every layer the donor and the recipient share.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
        Anything with ``layers(arch)``.
    recipient, donor : sequence of int
        The two architectures.
    donor_id : int

    Returns
    -------
    TransferPlan
        Scratch (``donor=None``) when they share no layer.
    """
    return plan_from_layers(
        space.layers(recipient),
        space.layers(donor),
        donor_id,
        common_prefix_length(recipient, donor),
    )


def plan_from_layers(
    recipient: Iterable[LayerLike], donor: Iterable[LayerLike], donor_id: int, prefix_length: int
) -> TransferPlan:
    """Plan copying each recipient layer whose identity is a donor layer's.

    Parameters
    ----------
    recipient, donor : iterable of LayerLike
        The two architectures' layers, with identities.
    donor_id : int
    prefix_length : int
        Recorded with the plan.

    Returns
    -------
    TransferPlan
        Scratch (``donor=None``) when they share no layer.
    """
    by_identity: dict[str, LayerLike] = {}
    for layer in donor:
        by_identity.setdefault(layer.identity, layer)
    tensors: list[str] = []
    sources: list[str] = []
    n_params = 0
    for layer in recipient:
        match = by_identity.get(layer.identity)
        if match is None:
            continue
        tensors.extend(layer.tensors)
        sources.extend(match.tensors)
        n_params += layer.n_params
    return _plan_or_scratch(donor_id, tensors, sources, prefix_length, n_params)


def plan_widened(
    recipient: Sequence[Layer], donor: Sequence[Layer], donor_id: int, prefix_length: int
) -> TransferPlan:
    """Plan copying the layers of equal identity, and the overlap of those only wider or narrower.

    A recipient layer without an equal donor layer takes the first unused donor layer with the
    same width-free identity (see :mod:`ckptnas.space`), and copies of each of its tensors the
    block that both shapes cover, ``[:min(a0, b0), :min(a1, b1), ...]``. This is not
    function-preserving: the copied block meets freshly initialised rows and columns.

    Parameters
    ----------
    recipient, donor : sequence of Layer
        Traced layers (with width-free identities).
    donor_id, prefix_length : int

    Returns
    -------
    TransferPlan
        ``partial`` names the tensors copied in part; scratch when nothing is shared.
    """
    exact = plan_from_layers(recipient, donor, donor_id, prefix_length)
    taken = {layer.identity for layer in recipient} & {layer.identity for layer in donor}
    free: dict[str, list[Layer]] = {}
    for layer in donor:
        if layer.identity not in taken and layer.width_free:
            free.setdefault(layer.width_free, []).append(layer)
    tensors, sources = list(exact.tensors), list(exact.donor_tensors)
    partial: list[str] = []
    n_params = exact.n_params
    for layer in recipient:
        candidates = free.get(layer.width_free) if layer.identity not in taken else None
        if not candidates:
            continue
        match = candidates.pop(0)
        tensors += layer.tensors
        sources += match.tensors
        partial += layer.tensors
        n_params += sum(
            math.prod(min(x, y) for x, y in zip(a, b, strict=True))
            for a, b in zip(layer.shapes[: layer.param_tensors], match.shapes, strict=False)
        )
    return _plan_or_scratch(donor_id, tensors, sources, prefix_length, n_params, partial)


def _plan_or_scratch(  # noqa: PLR0913  # a plan's fields, as the two planners gather them
    donor_id: int,
    tensors: list[str],
    sources: list[str],
    prefix_length: int,
    n_params: int,
    partial: Sequence[str] = (),
) -> TransferPlan:
    """The plan copying ``sources`` into ``tensors``; scratch when there is nothing to copy."""
    if not tensors:
        return SCRATCH
    return TransferPlan(
        donor=donor_id,
        tensors=tuple(tensors),
        prefix_length=prefix_length,
        n_params=n_params,
        sources=() if sources == tensors else tuple(sources),
        partial=tuple(partial),
    )
