"""The network of one architecture of the layered space, as a :class:`torch.nn.Module`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ckptnas.space._protocol import Architecture

if TYPE_CHECKING:
    from ckptnas.space._dense import SearchSpace

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "linear": nn.Identity,
}


class Dense(nn.Linear):
    """A linear layer followed by an activation, so its tensors are ``<name>.weight/.bias``."""

    def __init__(self, in_features: int, out_features: int, activation: str) -> None:
        super().__init__(in_features, out_features)
        self.activation = ACTIVATION_MODULES[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(super().forward(x))  # type: ignore[no-any-return]


class CandidateNet(nn.Module):
    """The network of one architecture; module names follow :meth:`SearchSpace.layers`.

    ``forward`` takes a mapping of input name to a ``(batch, features)`` tensor.
    """

    def __init__(self, space: SearchSpace, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        layers, wiring = space._trace(arch)
        by_name = {layer.name: layer for layer in layers}
        self.input_names = [n for n, _ in space.input_sizes]
        self.branch_of: dict[str, str] = wiring["branch_of"]
        self.skips: list[int] = wiring["skips"]

        def module(name: str) -> nn.Module:
            spec = by_name.get(name)
            if spec is None:
                return nn.Identity()
            return Dense(spec.in_features, spec.out_features, spec.activation)

        self.branches = nn.ModuleDict(
            {
                b: nn.Sequential(*(module(f"branches.{b}.{k}") for k in range(space.input_nodes)))
                for b, _ in space.branches
            }
        )
        self.trunk = nn.ModuleList([module(f"trunk.{i}") for i in range(space.num_nodes)])
        self.head = module("head")

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.branches[self.branch_of[n]](inputs[n]) for n in self.input_names]
        outputs = [torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]]
        for node, s in zip(self.trunk, self.skips, strict=True):
            h = node(outputs[-1])
            outputs.append(torch.cat([h, outputs[-s]], dim=1) if s else h)
        return self.head(outputs[-1])  # type: ignore[no-any-return]
