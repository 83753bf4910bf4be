"""Convolutional spaces: conv/pool blocks, then dense layers, after the CANDLE NT3 benchmark.

One input of shape ``(length,)`` or ``(channel, length)`` (``conv1d``), ``(height, width)`` or
``(channel, height, width)`` (``conv2d``). The network is ``num_blocks`` blocks of a conv node
(``identity`` or a convolution of some filters, kernel and activation, padded to keep the size)
and a pool node (``none``, ``max`` or ``avg``, size 2, where the signal is still at least 2
wide), then flattening, ``num_dense`` dense nodes (``identity`` or units x activation) and a
linear head. Nodes are in forward order, so a prefix of the tuple fixes a prefix of the network.
Layer identities are derived by tracing (the space gives none by hand).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._activations import ACTIVATIONS
from ckptnas.space._choices import check_choices, mutate_choices, sample_choices
from ckptnas.space._conv_layers import FeatureLayer
from ckptnas.space._dense import VariableNode
from ckptnas.space._protocol import Architecture

if TYPE_CHECKING:
    from torch import nn

POOLS = ("none", "max", "avg")


@dataclass(frozen=True)
class ConvSpace:
    """Conv/pool blocks then dense layers over one input signal or image.

    Parameters
    ----------
    input_name : str
    input_shape : tuple of int
        One sample's shape: ``(length,)``/``(channel, length)`` for 1-D,
        ``(height, width)``/``(channel, height, width)`` for 2-D.
    output_size : int
    dims : {1, 2}
    num_blocks, num_dense : int
    filters, kernels : sequence of int
        The convolution choices are every (filters, kernel, activation) triple; kernels odd.
    units : sequence of int
    activations : sequence of str

    Examples
    --------
    >>> space = ConvSpace("x", (1, 8, 8), output_size=10, dims=2)
    >>> arch = space.sample(np.random.default_rng(0))
    >>> import torch
    >>> space.build(arch)({"x": torch.zeros(2, 1, 8, 8)}).shape
    torch.Size([2, 10])
    """

    input_name: str
    input_shape: tuple[int, ...]
    output_size: int
    dims: int = 1
    num_blocks: int = 3
    num_dense: int = 2
    filters: tuple[int, ...] = (8, 16, 32)
    kernels: tuple[int, ...] = (3, 5)
    units: tuple[int, ...] = (32, 64)
    activations: tuple[str, ...] = ("relu", "tanh")
    convs: tuple[tuple[int, int, str], ...] = field(init=False, repr=False, compare=False)
    denses: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)
    nodes: tuple[VariableNode, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("input_shape", "filters", "kernels", "units"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "activations", tuple(self.activations))
        self._check()
        convs = [(f, k, a) for f in self.filters for k in self.kernels for a in self.activations]
        object.__setattr__(self, "convs", tuple(convs))
        object.__setattr__(
            self, "denses", tuple((u, a) for u in self.units for a in self.activations)
        )
        nodes = []
        for b in range(self.num_blocks):
            nodes.append(VariableNode(f"block{b}.conv", "op", len(convs) + 1))
            nodes.append(VariableNode(f"block{b}.pool", "pool", len(POOLS)))
        nodes += [
            VariableNode(f"dense{d}", "op", len(self.denses) + 1) for d in range(self.num_dense)
        ]
        object.__setattr__(self, "nodes", tuple(nodes))

    def _check(self) -> None:
        if self.dims not in (1, 2):
            raise SearchSpaceError(f"dims must be 1 or 2, got {self.dims}")
        if len(self.input_shape) not in (self.dims, self.dims + 1):
            raise SearchSpaceError(
                f"a conv{self.dims}d space needs inputs of {self.dims} or {self.dims + 1} "
                f"dimensions per sample, input {self.input_name!r} has shape {self.input_shape}"
            )
        if min(self.input_shape) < 1 or self.num_blocks < 0 or self.num_dense < 0:
            raise SearchSpaceError("input sizes must be positive, num_blocks and num_dense >= 0")
        if not self.filters or not self.kernels or not self.units or not self.activations:
            raise SearchSpaceError("filters, kernels, units and activations must be non-empty")
        if any(k % 2 == 0 or k < 1 for k in self.kernels):
            raise SearchSpaceError(
                f"kernels must be odd (padded to keep the size), got {self.kernels}"
            )
        unknown = [a for a in self.activations if a not in ACTIVATIONS]
        if unknown:
            raise SearchSpaceError(f"unknown activations {unknown}; known: {list(ACTIVATIONS)}")

    @property
    def channels_and_size(self) -> tuple[int, tuple[int, ...]]:
        """Input channels and spatial size."""
        if len(self.input_shape) == self.dims:
            return 1, self.input_shape
        return self.input_shape[0], self.input_shape[1:]

    # -- the protocol ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw an architecture uniformly, one choice per node."""
        return sample_choices([n.n_choices for n in self.nodes], rng)

    def mutate(
        self, arch: Sequence[int], rng: np.random.Generator, bias: float = 0.0
    ) -> Architecture:
        """Change one node's choice (``bias`` > 0 favours later nodes)."""
        return mutate_choices(self.validate(arch), [n.n_choices for n in self.nodes], rng, bias)

    def validate(self, arch: Sequence[int]) -> Architecture:
        """``arch`` as a tuple, or raise if it is not an architecture of this space."""
        return check_choices(arch, [n.n_choices for n in self.nodes], [n.name for n in self.nodes])

    def describe(self, arch: Sequence[int]) -> str:
        """The architecture in words: ``conv(16, k3, relu) max ... | dense(32, relu)``."""
        parts = []
        for value, node in zip(self.validate(arch), self.nodes, strict=True):
            if node.role == "pool":
                parts += [POOLS[value]] if value else []
            elif not value:
                parts.append("identity")
            elif node.name.startswith("block"):
                f, k, a = self.convs[value - 1]
                parts.append(f"conv({f}, k{k}, {a})")
            else:
                u, a = self.denses[value - 1]
                parts.append(f"dense({u}, {a})")
        return " ".join(parts)

    def build(self, arch: Sequence[int]) -> nn.Module:
        """The architecture as a freshly initialised module."""
        from ckptnas.space._conv_network import ConvNet

        return ConvNet(self, self.validate(arch))

    def features(self, arch: Architecture) -> tuple[list[FeatureLayer], int]:
        """The conv and pool layers of an architecture, and the width once flattened."""
        channels, size = self.channels_and_size
        layers: list[FeatureLayer] = []
        for b in range(self.num_blocks):
            conv, pool = arch[2 * b], arch[2 * b + 1]
            if conv:
                f, k, a = self.convs[conv - 1]
                layers.append(FeatureLayer("conv", channels, f, k, a))
                channels = f
            if pool and min(size) >= 2:  # a signal 1 wide is left as it is
                layers.append(FeatureLayer(POOLS[pool], channels, channels, 2, ""))
                size = tuple(s // 2 for s in size)
        return layers, channels * math.prod(size)


def conv1d_space(
    inputs: Mapping[str, tuple[int, ...]], output_size: int, **options: object
) -> ConvSpace:
    """The ``conv1d`` factory: a :class:`ConvSpace` over the one input, ``dims = 1``."""
    return _conv_space(inputs, output_size, 1, options)


def conv2d_space(
    inputs: Mapping[str, tuple[int, ...]], output_size: int, **options: object
) -> ConvSpace:
    """The ``conv2d`` factory: a :class:`ConvSpace` over the one input, ``dims = 2``."""
    return _conv_space(inputs, output_size, 2, options)


def _conv_space(
    inputs: Mapping[str, tuple[int, ...]], output_size: int, dims: int, options: dict[str, object]
) -> ConvSpace:
    if len(inputs) != 1:
        raise SearchSpaceError(f"a conv{dims}d space takes one input, the data have {list(inputs)}")
    ((name, shape),) = inputs.items()
    try:
        return ConvSpace(name, tuple(shape), output_size, dims, **options)  # type: ignore[arg-type]
    except TypeError as exc:
        raise SearchSpaceError(f"conv{dims}d options: {exc}") from None
