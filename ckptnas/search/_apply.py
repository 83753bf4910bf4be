"""Copying a transfer plan's tensors into a freshly built candidate (on the worker)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ckptnas.search._plan import TransferPlan


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

    Tensors are looked up in ``tensors`` by their donor names (:attr:`TransferPlan.mapping`).
    Buffers (a batch norm's running statistics) are copied too and never frozen. Of a tensor
    the plan names ``partial`` only the block both shapes cover is copied, and it is left
    trainable (the rest of it was never trained).

    Raises
    ------
    KeyError
        If the model lacks a tensor the plan names.
    ValueError
        If a tensor's shape differs from the model's.
    """
    params = dict(model.named_parameters())
    targets = {**model.state_dict(keep_vars=True), **params}
    with torch.no_grad():
        for name, donor_name in plan.mapping.items():
            target = targets[name]
            source = tensors[donor_name]
            if name in plan.partial and source.dim() == target.dim():
                block = tuple(
                    slice(0, min(a, b)) for a, b in zip(source.shape, target.shape, strict=True)
                )
                target[block] = source[block].to(target.device, target.dtype)
                continue  # never frozen: the rest of the tensor was never trained
            if source.shape != target.shape:
                raise ValueError(
                    f"tensor {name!r}: donor shape {tuple(source.shape)} "
                    f"!= model shape {tuple(target.shape)}"
                )
            target.copy_(source.to(target.device, target.dtype))
            if freeze and name in params:
                target.requires_grad_(False)
