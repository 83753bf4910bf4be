"""The network of one architecture of a :class:`~ckptnas.space.ConvSpace`."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from ckptnas.space._conv_layers import FeatureLayer
from ckptnas.space._network import ACTIVATION_MODULES, Dense
from ckptnas.space._protocol import Architecture, OneInputSpace


class ConvSpaceLike(OneInputSpace, Protocol):
    """What :class:`ConvNet` reads of its space, a :class:`~ckptnas.space.ConvSpace`.

    Named here rather than imported, so that the space module alone imports this one.
    """

    @property
    def dims(self) -> int: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def denses(self) -> tuple[tuple[int, str], ...]: ...
    def features(self, arch: Architecture) -> tuple[list[FeatureLayer], int]: ...


def _feature(layer: FeatureLayer, dims: int) -> nn.Module:
    if layer.kind == "conv":
        conv = (nn.Conv1d, nn.Conv2d)[dims - 1]
        activation = ACTIVATION_MODULES[layer.activation]()
        return nn.Sequential(
            conv(layer.in_channels, layer.out_channels, layer.kernel, padding=layer.kernel // 2),
            activation,
        )
    pools = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d)}
    pool: nn.Module = pools[layer.kind][dims - 1](layer.kernel)
    return pool


class ConvNet(nn.Module):
    """Conv/pool blocks, flattening, dense layers and a linear head.

    ``forward`` takes a mapping of the input name to a batch, with or without its channel
    dimension.
    """

    def __init__(self, space: ConvSpaceLike, arch: Architecture) -> None:
        super().__init__()
        self.input_name = space.input_name
        self.unbatched_rank = len(space.input_shape)
        self.dims = space.dims
        layers, width = space.features(arch)
        self.features = nn.Sequential(*(_feature(layer, space.dims) for layer in layers))
        dense: list[nn.Module] = []
        for choice in arch[2 * space.num_blocks :]:
            if choice:
                units, activation = space.denses[choice - 1]
                dense.append(Dense(width, units, activation))
                width = units
        self.dense = nn.Sequential(*dense)
        self.head = nn.Linear(width, space.output_size)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs[self.input_name]
        if self.unbatched_rank == self.dims:  # no channel dimension: one channel
            x = x.unsqueeze(1)
        x = self.features(x).flatten(1)
        return self.head(self.dense(x))  # type: ignore[no-any-return]
