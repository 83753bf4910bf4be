"""A NAS-Bench-201-style cell space: one cell of 4 nodes and 6 edges, stacked.

Node 0 is the cell's input; node ``j`` is the sum of an operation on every earlier node. Each of
the 6 edges, in the order ``0->1, 0->2, 1->2, 0->3, 1->3, 2->3``, picks one of ``none`` (no
edge), ``skip`` (the identity), ``conv1x1``, ``conv3x3`` (each ReLU, convolution, batch norm)
and ``avgpool3x3``; node 3 is the cell's output. The network is a stem (3x3 convolution and
batch norm to ``channels`` channels), ``num_cells`` copies of the cell (each with weights of its
own), then global average pooling and a linear head. An architecture is the 6 edge choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._cell_ops import EDGES, OPERATIONS
from ckptnas.space._choices import check_choices, mutate_choices, sample_choices
from ckptnas.space._dense import VariableNode
from ckptnas.space._protocol import Architecture

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class CellSpace:
    """Stacked NAS-Bench-201 cells over one image input.

    Parameters
    ----------
    input_name : str
    input_shape : tuple of int
        One sample's shape, ``(channel, height, width)`` or ``(height, width)``.
    output_size : int
    channels : int
        Width of the stem and of every cell.
    num_cells : int
        Cells stacked after the stem.

    Examples
    --------
    >>> space = CellSpace("x", (1, 8, 8), output_size=10)
    >>> space.describe((3, 1, 0, 2, 4, 3))
    '0->1 conv3x3, 0->2 skip, 1->2 none, 0->3 conv1x1, 1->3 avgpool3x3, 2->3 conv3x3'
    """

    input_name: str
    input_shape: tuple[int, ...]
    output_size: int
    channels: int = 16
    num_cells: int = 3
    nodes: tuple[VariableNode, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if len(self.input_shape) not in (2, 3) or min(self.input_shape) < 1:
            raise SearchSpaceError(
                "a cell space needs image inputs, (channel, height, width) or (height, width) "
                f"per sample; input {self.input_name!r} has shape {self.input_shape}"
            )
        if self.channels < 1 or self.num_cells < 1:
            raise SearchSpaceError("channels and num_cells must be >= 1")
        nodes = tuple(VariableNode(f"edge{i}->{j}", "op", len(OPERATIONS)) for i, j in EDGES)
        object.__setattr__(self, "nodes", nodes)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw one operation per edge, uniformly."""
        return sample_choices([len(OPERATIONS)] * len(EDGES), rng)

    def mutate(
        self, arch: Sequence[int], rng: np.random.Generator, bias: float = 0.0
    ) -> Architecture:
        """Change one edge's operation (``bias`` > 0 favours later edges)."""
        return mutate_choices(self.validate(arch), [len(OPERATIONS)] * len(EDGES), rng, bias)

    def validate(self, arch: Sequence[int]) -> Architecture:
        """``arch`` as a tuple, or raise if it is not 6 operations."""
        return check_choices(arch, [len(OPERATIONS)] * len(EDGES), [n.name for n in self.nodes])

    def describe(self, arch: Sequence[int]) -> str:
        """Each edge and its operation."""
        ops = self.validate(arch)
        return ", ".join(
            f"{i}->{j} {OPERATIONS[op]}" for (i, j), op in zip(EDGES, ops, strict=True)
        )

    def build(self, arch: Sequence[int]) -> nn.Module:
        """The architecture as a freshly initialised module."""
        from ckptnas.space._cell_network import CellNet

        return CellNet(self, self.validate(arch))


def cell_space(
    inputs: Mapping[str, tuple[int, ...]], output_size: int, **options: object
) -> CellSpace:
    """The ``cell`` factory: a :class:`CellSpace` over the one (image) input."""
    if len(inputs) != 1:
        raise SearchSpaceError(f"a cell space takes one input, the data have {list(inputs)}")
    ((name, shape),) = inputs.items()
    try:
        return CellSpace(name, tuple(shape), output_size, **options)  # type: ignore[arg-type]
    except TypeError as exc:
        raise SearchSpaceError(f"cell options: {exc}") from None
