"""What every search space shares: the architecture type, the space protocol and its layers.

A search space is any object with ``sample``, ``mutate`` and ``build`` (:class:`Space`). The
optional ``describe(arch)`` says an architecture in words; the optional ``identities(arch)``
gives each parametrised module's identity by hand (module name to a string). Without it,
ckptnas derives identities by tracing the built module (:func:`~ckptnas.space.traced_layers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

#: An architecture: one choice (an index into the node's options) per variable node.
Architecture = tuple[int, ...]

#: The methods an object needs to be a search space.
REQUIRED_METHODS = ("sample", "mutate", "build")


@runtime_checkable
class Space(Protocol):
    """The search space protocol: what ckptnas asks of a user's space.

    ``build(arch)`` returns a :class:`torch.nn.Module` whose ``forward`` takes a dict from input
    name to a batch tensor and returns the head's output, ``(batch, output_size)``.

    Optional methods: ``describe(arch) -> str`` (the architecture in words) and
    ``identities(arch) -> dict[str, str]`` (module name to layer identity, when tracing the
    built module with :mod:`torch.fx` cannot work, e.g. with data-dependent control flow).
    """

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw an architecture."""
        ...

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A neighbour of ``arch``, different from it."""
        ...

    def build(self, arch: Architecture) -> nn.Module:
        """The architecture as a freshly initialised module."""
        ...


class OneInputSpace(Protocol):
    """What a network of a one-input built-in space (conv, cell) reads of every such space."""

    @property
    def input_name(self) -> str: ...
    @property
    def input_shape(self) -> tuple[int, ...]: ...
    @property
    def output_size(self) -> int: ...


class LayerLike(Protocol):
    """What a transfer plan needs of a parametrised layer."""

    @property
    def name(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def n_params(self) -> int: ...
    @property
    def tensors(self) -> Any:
        """Iterable of the layer's tensor names, in an order fixed by its type and config."""
        ...


@dataclass(frozen=True)
class Layer:
    """A parametrised module of one built architecture, as the donor search sees it.

    Attributes
    ----------
    name : str
        Module name inside the built network (``stem.0``, ``cells.1.edge3``).
    identity : str
        Merkle hash of the module's type, configuration, tensor shapes and the identities of
        what feeds it. Equal identities mean a donor's tensors fit as they are.
    tensors : tuple of str
        Full names of its tensors (parameters, then persistent buffers), in an order fixed by
        its type: two layers with one identity list their tensors in the same order.
    n_params : int
        Number of scalar parameters.
    shapes : tuple of tuple of int
        The shape of each tensor of ``tensors``.
    param_tensors : int
        How many of ``tensors``, from the first, are parameters (the rest are buffers).
    width_free : str
        The identity with widths left out (traced layers only; empty otherwise): equal for two
        layers that differ at most in their widths and those of what feeds them.
    """

    name: str
    identity: str
    tensors: tuple[str, ...]
    n_params: int
    shapes: tuple[tuple[int, ...], ...] = ()
    param_tensors: int = 0
    width_free: str = ""
