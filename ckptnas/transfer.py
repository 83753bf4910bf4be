"""Weight transfer: which of a donor's tensors a new candidate takes, and copying them in.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ckptnas.space import SearchSpace

POLICIES = ("none", "lcp")


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


def apply_plan(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], plan: TransferPlan, freeze: bool
) -> None:
    """Copy a plan's tensors into a model, optionally freezing them.

    Parameters
    ----------
    model : torch.nn.Module
        A freshly built candidate.
    tensors : mapping of str to torch.Tensor
        The donor's tensors, at least those the plan names.
    plan : TransferPlan
    freeze : bool
        Mark the copied parameters ``requires_grad = False`` so training leaves them as they are.

    Raises
    ------
    KeyError
        If the model lacks a tensor the plan names.
    ValueError
        If a tensor's shape differs from the model's.
    """
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in plan.tensors:
            target = params[name]
            source = tensors[name]
            if source.shape != target.shape:
                raise ValueError(
                    f"tensor {name!r}: donor shape {tuple(source.shape)} "
                    f"!= model shape {tuple(target.shape)}"
                )
            target.copy_(source.to(target.device, target.dtype))
            if freeze:
                target.requires_grad_(False)
