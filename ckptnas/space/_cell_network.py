"""The network of one architecture of a :class:`~ckptnas.space.CellSpace`."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from ckptnas.space._cell_ops import EDGES, OPERATIONS
from ckptnas.space._protocol import Architecture, OneInputSpace


class CellSpaceLike(OneInputSpace, Protocol):
    """What :class:`CellNet` reads of its space, a :class:`~ckptnas.space.CellSpace`.

    Named here rather than imported, so that the space module alone imports this one.
    """

    @property
    def channels(self) -> int: ...
    @property
    def num_cells(self) -> int: ...


def _operation(name: str, channels: int) -> nn.Module:
    if name == "skip":
        return nn.Identity()
    if name == "avgpool3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    kernel = 1 if name == "conv1x1" else 3
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(channels),
    )


class Cell(nn.Module):
    """One cell: node ``j`` sums the operations of its incoming edges (``none`` edges left out)."""

    def __init__(self, arch: Architecture, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {
                f"{i}to{j}": _operation(OPERATIONS[op], channels)
                for (i, j), op in zip(EDGES, arch, strict=True)
                if OPERATIONS[op] != "none"
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            incoming = [
                self.edges[f"{i}to{j}"](nodes[i]) for i in range(j) if f"{i}to{j}" in self.edges
            ]
            nodes.append(sum(incoming[1:], incoming[0]) if incoming else torch.zeros_like(x))
        return nodes[3]


class CellNet(nn.Module):
    """Stem, stacked cells, global average pooling and a linear head."""

    def __init__(self, space: CellSpaceLike, arch: Architecture) -> None:
        super().__init__()
        self.input_name = space.input_name
        self.has_channels = len(space.input_shape) == 3
        in_channels = space.input_shape[0] if self.has_channels else 1
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, space.channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(space.channels),
        )
        self.cells = nn.Sequential(*(Cell(arch, space.channels) for _ in range(space.num_cells)))
        self.head = nn.Linear(space.channels, space.output_size)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x = inputs[self.input_name]
        if not self.has_channels:
            x = x.unsqueeze(1)
        x = self.cells(self.stem(x))
        return self.head(x.mean((2, 3)))  # type: ignore[no-any-return]
