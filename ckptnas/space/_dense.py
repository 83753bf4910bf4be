"""Layered search spaces for multi-input tabular data, after DeepHyper's CANDLE spaces.

An architecture is a tuple of ints, one choice per *variable node*. The network it encodes has
one sub-network ("branch") per input group, the branch outputs concatenated, then a trunk of
``num_nodes`` nodes and a linear head::

    cell  --[branch cell: input_nodes ops]--------------------\
    drug1 --[branch drug1_drug2: input_nodes ops, shared]------ concat -> trunk 0 .. n-1 -> head
    drug2 --[  same modules, same weights                 ]---/

Each op node chooses ``identity`` or a dense layer (units x activation). With skip connections
each trunk node is followed by a skip node choosing nothing or the concatenation of an earlier
output (``s = 1`` skips around the node itself, ``s = 2`` around two nodes, ...), as DeepHyper's
"connect" nodes do. Variable nodes are ordered branches first, then ``op, skip`` per trunk node,
so a prefix of the tuple is a prefix of the network.

Every parametrised layer has a stable, ordered module name (``branches.cell.0``, ``trunk.2``,
``head``) and an *identity*: a hash of its type, its position, its configuration (hence its tensor
shapes) and the identity of the signal feeding it, like a Merkle tree. Two layers of two
architectures with the same identity are the same layer fed the same way, so a donor's trained
tensors for it can be copied as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._activations import ACTIVATIONS
from ckptnas.space._layer_spec import LayerSpec
from ckptnas.space._protocol import Architecture

if TYPE_CHECKING:
    from ckptnas.space._network import CandidateNet


def _digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Op:
    """One choice of an op node: ``identity`` (no layer) or a dense layer."""

    kind: str
    units: int = 0
    activation: str = ""

    def __str__(self) -> str:
        return "identity" if self.kind == "identity" else f"dense({self.units}, {self.activation})"


@dataclass(frozen=True)
class VariableNode:
    """A decision of the architecture: its name, what it decides, and how many choices it has."""

    name: str
    role: str  # "op" or "skip"
    n_choices: int


@dataclass(frozen=True)
class SearchSpace:
    """A layered search space over networks with named inputs.

    Parameters
    ----------
    input_sizes : sequence of (str, int)
        Input names and feature counts, in order.
    output_size : int
        Width of the head: 1 for regression, the class count for classification.
    num_nodes : int
        Trunk op nodes.
    input_nodes : int
        Op nodes in each branch (0: inputs are concatenated as they are).
    units, activations : sequence
        The dense layer choices are every (units, activation) pair.
    skip_connections : bool
        Whether each trunk node is followed by a skip node.
    max_skip : int
        How many nodes a skip connection may span at most.
    shared_inputs : sequence of sequences of str
        Groups of inputs of equal width that go through one branch with shared weights.

    Examples
    --------
    >>> space = SearchSpace((("x", 10),), output_size=1, num_nodes=3)
    >>> arch = space.sample(np.random.default_rng(0))
    >>> model = space.build(arch)
    >>> import torch
    >>> model({"x": torch.zeros(4, 10)}).shape
    torch.Size([4, 1])
    """

    input_sizes: tuple[tuple[str, int], ...]
    output_size: int
    num_nodes: int = 4
    input_nodes: int = 1
    units: tuple[int, ...] = (16, 32, 64, 128)
    activations: tuple[str, ...] = ("relu", "tanh")
    skip_connections: bool = True
    max_skip: int = 2
    shared_inputs: tuple[tuple[str, ...], ...] = ()
    ops: tuple[Op, ...] = field(init=False, repr=False, compare=False)
    nodes: tuple[VariableNode, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "input_sizes", tuple((str(n), int(s)) for n, s in self.input_sizes)
        )
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        object.__setattr__(self, "activations", tuple(self.activations))
        object.__setattr__(self, "shared_inputs", tuple(tuple(g) for g in self.shared_inputs))
        self._check()
        dense = [Op("dense", u, a) for u in self.units for a in self.activations]
        ops = (Op("identity"), *dense)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "nodes", tuple(self._variable_nodes()))

    # -- construction ----------------------------------------------------------------------
    def _check(self) -> None:
        names = [n for n, _ in self.input_sizes]
        if not names:
            raise SearchSpaceError("a search space needs at least one input")
        if len(set(names)) != len(names):
            raise SearchSpaceError(f"input names must be unique, got {names}")
        unknown_act = [a for a in self.activations if a not in ACTIVATIONS]
        if unknown_act:
            raise SearchSpaceError(f"unknown activations {unknown_act}; known: {list(ACTIVATIONS)}")
        if self.num_nodes < 1 or self.input_nodes < 0 or self.max_skip < 1:
            raise SearchSpaceError("num_nodes and max_skip must be >= 1, input_nodes >= 0")
        if not self.units or min(self.units) < 1 or not self.activations:
            raise SearchSpaceError("units must be positive and activations non-empty")
        sizes = dict(self.input_sizes)
        seen: set[str] = set()
        for group in self.shared_inputs:
            for name in group:
                if name not in sizes:
                    raise SearchSpaceError(
                        f"shared_inputs names {name!r}, which is not an input ({', '.join(names)})"
                    )
                if name in seen:
                    raise SearchSpaceError(f"input {name!r} is in two shared_inputs groups")
                seen.add(name)
            if len({sizes[n] for n in group}) != 1:
                raise SearchSpaceError(
                    f"inputs {list(group)} share a branch but have different widths "
                    f"{[sizes[n] for n in group]}"
                )

    @property
    def branches(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Branch name and the inputs it serves, in input order."""
        grouped = {n: g for g in self.shared_inputs for n in g}
        out: list[tuple[str, tuple[str, ...]]] = []
        for name, _ in self.input_sizes:
            group = grouped.get(name, (name,))
            branch = "_".join(group)
            if all(b != branch for b, _ in out):
                out.append((branch, group))
        return tuple(out)

    def _variable_nodes(self) -> list[VariableNode]:
        nodes = [
            VariableNode(f"branches.{b}.{k}", "op", len(self.ops))
            for b, _ in self.branches
            for k in range(self.input_nodes)
        ]
        for i in range(self.num_nodes):
            nodes.append(VariableNode(f"trunk.{i}", "op", len(self.ops)))
            if self.skip_connections:
                nodes.append(VariableNode(f"trunk.{i}.skip", "skip", min(i + 1, self.max_skip) + 1))
        return nodes

    @classmethod
    def from_config(cls, config: Any, input_sizes: dict[str, int], output_size: int) -> SearchSpace:
        """Build the space of a ``[space]`` table for a dataset's inputs.

        Parameters
        ----------
        config : SpaceConfig
        input_sizes : dict of str to int
            The dataset's input widths (``TabularData.input_sizes``).
        output_size : int
        """
        return cls(
            input_sizes=tuple(input_sizes.items()),
            output_size=output_size,
            num_nodes=config.num_nodes,
            input_nodes=config.input_nodes,
            units=tuple(config.units),
            activations=tuple(config.activations),
            skip_connections=config.skip_connections,
            max_skip=config.max_skip,
            shared_inputs=tuple(tuple(g) for g in config.shared_inputs),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description; :meth:`from_dict` inverts it."""
        d = asdict(self)
        d.pop("ops")
        d.pop("nodes")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchSpace:
        """Rebuild a space from :meth:`to_dict`'s output."""
        return cls(**{**d, "input_sizes": tuple(tuple(x) for x in d["input_sizes"])})

    # -- architectures ---------------------------------------------------------------------
    def validate(self, arch: Sequence[int]) -> Architecture:
        """Return ``arch`` as a tuple, or raise if it is not an architecture of this space."""
        arch = tuple(int(a) for a in arch)
        if len(arch) != len(self.nodes):
            raise SearchSpaceError(
                f"architecture has {len(arch)} choices, space has {len(self.nodes)}"
            )
        for value, node in zip(arch, self.nodes, strict=True):
            if not 0 <= value < node.n_choices:
                raise SearchSpaceError(
                    f"choice {value} of node {node.name} is outside 0..{node.n_choices - 1}"
                )
        return arch

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw an architecture uniformly, one choice per node."""
        return tuple(int(rng.integers(node.n_choices)) for node in self.nodes)

    def mutate(
        self, arch: Sequence[int], rng: np.random.Generator, bias: float = 0.0
    ) -> Architecture:
        """Change exactly one node's choice to a different one.

        Parameters
        ----------
        arch : sequence of int
        rng : numpy.random.Generator
        bias : float
            Node ``i`` is picked with probability proportional to ``(i + 1) ** bias``: 0 is
            uniform, larger values favour later nodes, which lengthens the prefix a child shares
            with its parent (and so the weights it can inherit).
        """
        arch = self.validate(arch)
        mutable = [i for i, node in enumerate(self.nodes) if node.n_choices > 1]
        weights = np.array([(i + 1.0) ** bias for i in mutable])
        i = mutable[int(rng.choice(len(mutable), p=weights / weights.sum()))]
        new = int(rng.integers(self.nodes[i].n_choices - 1))
        new += new >= arch[i]  # skip the current choice: the mutation always changes the node
        return (*arch[:i], new, *arch[i + 1 :])

    def describe(self, arch: Sequence[int]) -> str:
        """A one-line human description of an architecture."""
        parts = []
        for value, node in zip(self.validate(arch), self.nodes, strict=True):
            if node.role == "op":
                parts.append(f"{node.name}={self.ops[value]}")
            elif value:
                parts.append(f"skip{value}")
        return " ".join(parts)

    # -- layers and identities -------------------------------------------------------------
    def layers(self, arch: Sequence[int]) -> list[LayerSpec]:
        """The parametrised layers of an architecture, in forward order, with identities."""
        return self._trace(self.validate(arch))[0]

    def _trace(self, arch: Architecture) -> tuple[list[LayerSpec], dict[str, Any]]:
        """Walk the network once: layer specs plus the wiring :class:`CandidateNet` needs."""
        choices = dict(zip((n.name for n in self.nodes), arch, strict=True))
        index = {n.name: i for i, n in enumerate(self.nodes)}
        sizes = dict(self.input_sizes)
        layers: list[LayerSpec] = []

        def apply(name: str, op: Op, signal: str, width: int) -> tuple[str, int]:
            if op.kind == "identity":
                return _digest("identity", name, signal), width
            identity = _digest("dense", name, width, op.units, op.activation, signal)
            layers.append(
                LayerSpec(name, identity, width, op.units, op.activation, index.get(name, -1))
            )
            return identity, op.units

        branch_out: dict[str, tuple[str, int]] = {}
        for branch, members in self.branches:
            signal = _digest("input", tuple((m, sizes[m]) for m in members))
            width = sizes[members[0]]
            for k in range(self.input_nodes):
                name = f"branches.{branch}.{k}"
                signal, width = apply(name, self.ops[choices[name]], signal, width)
            for member in members:
                branch_out[member] = (_digest("apply", signal, member), width)
        merged = _digest("concat", tuple(branch_out[n][0] for n, _ in self.input_sizes))
        outputs = [(merged, sum(branch_out[n][1] for n, _ in self.input_sizes))]
        skips: list[int] = []
        for i in range(self.num_nodes):
            name = f"trunk.{i}"
            signal, width = apply(name, self.ops[choices[name]], *outputs[-1])
            s = choices.get(f"{name}.skip", 0)
            skips.append(s)
            if s:
                source, source_width = outputs[-s]
                signal, width = _digest("skip", name, s, signal, source), width + source_width
            outputs.append((signal, width))
        apply("head", Op("dense", self.output_size, "linear"), *outputs[-1])
        return layers, {"skips": skips, "branch_of": {m: b for b, g in self.branches for m in g}}

    def identities(self, arch: Sequence[int]) -> dict[str, str]:
        """Layer name to layer identity."""
        return {layer.name: layer.identity for layer in self.layers(arch)}

    def n_params(self, arch: Sequence[int]) -> int:
        """Number of trainable scalars of an architecture."""
        return sum(layer.n_params for layer in self.layers(arch))

    def build(self, arch: Sequence[int]) -> CandidateNet:
        """Instantiate an architecture as a freshly initialised :class:`torch.nn.Module`."""
        # torch is imported here, not with the space: describing and mutating architectures
        # (the client, ``ckptnas lineage``) needs no torch.
        from ckptnas.space._network import CandidateNet

        return CandidateNet(self, self.validate(arch))
