"""The network of one architecture of the layered space, as a :class:`torch.nn.Module`."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from ckptnas.space._layer_spec import LayerSpec
from ckptnas.space._protocol import Architecture

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
    """A linear layer followed by an activation, so its tensors are ``<name>.weight/.bias``.

    A hidden layer ends with dropout, off (``p = 0``) until training sets its rate (see
    :func:`set_dropout`). Dropout holds no tensors, so a layer's identity and checkpoint are the
    same whatever the rate.
    """

    def __init__(
        self, in_features: int, out_features: int, activation: str, dropout: bool = True
    ) -> None:
        super().__init__(in_features, out_features)
        self.activation = ACTIVATION_MODULES[activation]()
        self.dropout = nn.Dropout(0.0) if dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation(super().forward(x))
        if self.dropout is not None and self.dropout.p:
            h = self.dropout(h)
        return h  # type: ignore[no-any-return]


def set_dropout(model: nn.Module, rate: float) -> int:
    """Set the rate of every dropout layer of a network; returns how many there are."""
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in layers:
        layer.p = rate
    return len(layers)


class SearchSpaceLike(Protocol):
    """What :class:`CandidateNet` reads of its space, a :class:`~ckptnas.space.SearchSpace`.

    Named here rather than imported, so that the space module alone imports this one.
    """

    @property
    def input_sizes(self) -> tuple[tuple[str, int], ...]: ...
    @property
    def input_nodes(self) -> int: ...
    @property
    def num_nodes(self) -> int: ...
    @property
    def branches(self) -> tuple[tuple[str, tuple[str, ...]], ...]: ...
    def _trace(self, arch: Architecture) -> tuple[list[LayerSpec], dict[str, Any]]: ...


class CandidateNet(nn.Module):
    """The network of one architecture; module names follow :meth:`SearchSpace.layers`.

    ``forward`` takes a mapping of input name to a ``(batch, features)`` tensor.
    """

    def __init__(self, space: SearchSpaceLike, arch: Architecture) -> None:
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
            # The head's output is the prediction: it is never dropped.
            return Dense(spec.in_features, spec.out_features, spec.activation, name != "head")

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
