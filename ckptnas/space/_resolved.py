"""Any search space as the search sees it: :class:`ResolvedSpace`.

A user's space only has to ``sample``, ``mutate`` and ``build`` (:class:`~ckptnas.space.Space`).
:class:`ResolvedSpace` wraps it and adds what the search needs: its layers with identities
(hand-given through ``identities(arch)``, else derived by tracing the built module), a
description in words, node names, the parameter count, and a form that travels to workers and
into the run's registry (:meth:`ResolvedSpace.to_dict`, inverted by :func:`space_from_dict`).

How a space reaches the workers: the dense space travels as its keyword arguments, a space of
the registry as its name and options. Any other space is pickled with cloudpickle, its pickle
sent with each candidate and unpickled once per worker process. This module writes those
records; :mod:`ckptnas.space._recorded` reads them back. Classes and functions defined in
``__main__`` or in a factory file (``"path/to/file.py:make_space"``) travel by value, so an
external cluster's workers need not see the file; those of an importable module travel by
reference, so that module must be importable on the workers too (as any code Dask runs).
"""

from __future__ import annotations

import base64
import hashlib
import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._dense import SearchSpace
from ckptnas.space._protocol import REQUIRED_METHODS, Architecture, Layer, LayerLike

if TYPE_CHECKING:
    from torch import nn

#: Architectures whose layers are kept; tracing costs milliseconds, a cache entry a few KB.
CACHE_SIZE = 4096

T = TypeVar("T")

#: Spaces rebuilt or unpickled in this process (by :func:`~ckptnas.space.space_from_dict`), by
#: their record's digest. A space this process pickled itself is entered here when it is
#: recorded: the run's own client never unpickles it.
REBUILT: dict[str, ResolvedSpace] = {}


class ResolvedSpace:
    """A search space with everything the search needs derived from the protocol.

    Parameters
    ----------
    space : object
        Has ``sample(rng)``, ``mutate(arch, rng)`` and ``build(arch)``; optionally
        ``describe(arch)`` and ``identities(arch)``.
    input_names : sequence of str, optional
        The keys of the dict the built module's forward takes (lets tracing iterate over it).
    origin : dict, optional
        How the space was made (factory, options), recorded with the run.

    Attributes
    ----------
    by_name : bool
        Whether :meth:`to_dict` records the space by the kind ``origin`` names and its options
        (the registry makes it again from those) rather than as a pickle. Set by the entry of
        :data:`~ckptnas.space.SPACES` that made it when that entry has ``make``, and by
        :func:`~ckptnas.space.make_space`; False otherwise.

    Raises
    ------
    SearchSpaceError
        If ``space`` lacks a required method or its ``sample`` gives no tuple of ints.
    """

    def __init__(
        self,
        space: Any,
        input_names: Sequence[str] | None = None,
        origin: dict[str, Any] | None = None,
    ) -> None:
        missing = [m for m in REQUIRED_METHODS if not callable(getattr(space, m, None))]
        if missing:
            raise SearchSpaceError(
                f"{type(space).__name__} is not a search space: it has no "
                f"{', '.join(m + '()' for m in missing)} (a space needs sample, mutate and build)"
            )
        self.space = space
        self.input_names = None if input_names is None else list(input_names)
        self.origin = origin or {}
        # Told by whoever made the space: the registry's entries build spaces with this class,
        # so the class does not look the registry up.
        self.by_name = False
        self._layers: OrderedDict[Architecture, list[LayerLike]] = OrderedDict()
        self._traced: OrderedDict[Architecture, list[Layer]] = OrderedDict()
        self._mutate_takes_bias = "bias" in _parameters(space.mutate)
        self._described: dict[str, Any] | None = None
        self.n_nodes = len(self.sample(np.random.default_rng(0)))

    def __repr__(self) -> str:
        return f"ResolvedSpace({self.space!r})"

    # -- the protocol ----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw an architecture (the wrapped space's ``sample``)."""
        return _architecture(self.space.sample(rng), "sample")

    def mutate(
        self, arch: Sequence[int], rng: np.random.Generator, bias: float = 0.0
    ) -> Architecture:
        """A neighbour of ``arch``; ``bias`` reaches spaces whose ``mutate`` takes it."""
        arch = tuple(arch)
        if self._mutate_takes_bias:
            child = _architecture(self.space.mutate(arch, rng, bias=bias), "mutate")
        else:
            child = _architecture(self.space.mutate(arch, rng), "mutate")
        if len(child) != len(arch):  # every architecture of a space has the same length
            raise SearchSpaceError(
                f"the space's mutate() returned {child!r}, of length {len(child)}; it must return "
                f"an architecture of length {len(arch)}, like the one it was given"
            )
        return child

    def build(self, arch: Sequence[int]) -> nn.Module:
        """The architecture as a freshly initialised module."""
        from torch import nn

        module = self.space.build(tuple(arch))
        if not isinstance(module, nn.Module):
            raise SearchSpaceError(
                f"{type(self.space).__name__}.build returned {type(module).__name__}, "
                "not a torch.nn.Module"
            )
        return module

    def describe(self, arch: Sequence[int]) -> str:
        """The space's ``describe``, else the choices as a tuple."""
        describe = getattr(self.space, "describe", None)
        return str(describe(tuple(arch))) if callable(describe) else str(tuple(arch))

    # -- what the search derives -----------------------------------------------------------
    @property
    def node_names(self) -> list[str]:
        """Names of the variable nodes: the space's own (``nodes[i].name``), else ``node<i>``."""
        nodes = getattr(self.space, "nodes", None)
        names = [str(getattr(n, "name", n)) for n in nodes] if nodes is not None else []
        if len(names) != self.n_nodes:
            names = [f"node{i}" for i in range(self.n_nodes)]
        return names

    @property
    def nodes(self) -> tuple[Any, ...]:
        """The space's variable nodes, each with a ``name`` and ``n_choices``.

        What samplers that model each choice need (the Optuna strategy).

        Raises
        ------
        SearchSpaceError
            If the space does not list them.
        """
        nodes = tuple(getattr(self.space, "nodes", None) or ())
        if len(nodes) != self.n_nodes or not all(hasattr(n, "n_choices") for n in nodes):
            raise SearchSpaceError(
                f"{type(self.space).__name__} does not list its nodes (a 'nodes' sequence with a "
                "name and n_choices per choice), which this strategy needs"
            )
        return nodes

    def layers(self, arch: Sequence[int]) -> list[LayerLike]:
        """The parametrised layers of an architecture, in forward order, with identities.

        Computed once per architecture and cached (:data:`CACHE_SIZE` architectures).
        """
        return _cached(self._layers, tuple(int(a) for a in arch), self._compute_layers)

    def traced_layers(self, arch: Sequence[int]) -> list[Layer]:
        """The layers as tracing the built module finds them, with width-free identities.

        The same as :meth:`layers` for a space that gives no identities by hand; for the dense
        space, the traced twin of its hand-written layers (they plan alike).

        Raises
        ------
        SearchSpaceError
            If the module cannot be traced.
        """
        from ckptnas.space._trace import traced_layers

        def trace(key: Architecture) -> list[Layer]:
            return traced_layers(self.build(key), self.input_names)

        return _cached(self._traced, tuple(int(a) for a in arch), trace)

    def _compute_layers(self, arch: Architecture) -> list[LayerLike]:
        if isinstance(self.space, SearchSpace):  # identities by hand, and no torch needed
            return list(self.space.layers(arch))
        given = getattr(self.space, "identities", None)
        if callable(given):
            return _given_layers(self.build(arch), given(arch))
        return list(self.traced_layers(arch))

    def identities(self, arch: Sequence[int]) -> dict[str, str]:
        """Layer name to layer identity."""
        return {layer.name: layer.identity for layer in self.layers(arch)}

    def n_params(self, arch: Sequence[int]) -> int:
        """Number of trainable scalars of an architecture."""
        if isinstance(self.space, SearchSpace):
            return self.space.n_params(arch)
        return sum(p.numel() for p in self.build(arch).parameters())

    # -- travelling ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable record (see :mod:`ckptnas.space._recorded`).

        The dense space as its keywords, a space of the registry by name and options (one whose
        :attr:`by_name` is set), any other as a cloudpickle. Made once: every candidate's task
        carries it.
        """
        if isinstance(self.space, SearchSpace):
            return self.space.to_dict()
        if self._described is None:
            self._described = self._by_name() or self._pickled()
        return self._described

    def _by_name(self) -> dict[str, Any] | None:
        """The record of a space the registry makes again from its name, if it is one."""
        origin = self.origin or {}
        if not self.by_name or "inputs" not in origin:
            return None
        return builtin_record(
            str(origin["kind"]), origin["options"], origin["inputs"], origin["output_size"]
        )

    def _pickled(self) -> dict[str, Any]:
        import cloudpickle

        try:
            pickled = cloudpickle.dumps((self.space, self.input_names, self.origin))
        except Exception as exc:  # a lock, an open file, a connection: nothing a worker can use
            raise SearchSpaceError(
                f"[space] {self._name()} cannot be sent to the workers{_unpicklable(self.space)}: "
                f"{exc}"
            ) from None
        digest = hashlib.sha256(pickled).hexdigest()
        REBUILT[digest] = self  # this process made the pickle: it never needs to unpickle it
        return {
            "kind": "pickled",
            "origin": self.origin,
            "digest": digest,
            "pickle": base64.b64encode(pickled).decode("ascii"),
        }

    def _name(self) -> str:
        factory = self.origin.get("factory")
        return f"factory {factory!r}" if factory else f"space {type(self.space).__name__}"


def builtin_record(
    name: str, options: dict[str, Any], inputs: Any, output_size: int
) -> dict[str, Any]:
    """The record of a registry space: its name, options and the data's shapes."""
    return {
        "kind": "builtin",
        "name": name,
        "options": dict(options),
        "inputs": {k: [int(d) for d in shape] for k, shape in inputs.items()},
        "output_size": int(output_size),
    }


def _cached(
    cache: OrderedDict[Architecture, T], key: Architecture, compute: Callable[[Architecture], T]
) -> T:
    """``compute(key)``, kept in a least-recently-used cache of :data:`CACHE_SIZE` entries."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = compute(key)
    cache[key] = value
    if len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _unpicklable(space: Any) -> str:
    """Which attribute of ``space`` cloudpickle cannot pickle, in words, if one alone is."""
    import cloudpickle

    for name, value in getattr(space, "__dict__", {}).items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return f" (its attribute {name!r})"
    return ""


def _parameters(method: Callable[..., Any]) -> list[str]:
    try:
        return list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return []


def _architecture(value: Any, method: str) -> Architecture:
    try:
        arch = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise SearchSpaceError(
            f"the space's {method}() returned {value!r}; it must return a tuple of ints"
        ) from None
    if any(a != v for a, v in zip(arch, value, strict=True)):
        raise SearchSpaceError(f"the space's {method}() returned {value!r}, not a tuple of ints")
    return arch


def _given_layers(module: nn.Module, identities: dict[str, str]) -> list[LayerLike]:
    """Layers named by a space's ``identities(arch)``, with their tensors from the module."""
    from ckptnas.space._trace import tensors_of

    modules = dict(module.named_modules())
    layers: list[LayerLike] = []
    for name, identity in identities.items():
        if name not in modules:
            raise SearchSpaceError(f"identities() names {name!r}, which is not a module of the net")
        tensors = tensors_of(modules[name])
        layers.append(
            Layer(
                name=name,
                identity=str(identity),
                tensors=tuple(f"{name}.{rel}" for rel, _, _ in tensors),
                n_params=sum(t.numel() for _, t, is_param in tensors if is_param),
                shapes=tuple(tuple(t.shape) for _, t, _ in tensors),
                param_tensors=sum(is_param for _, _, is_param in tensors),
            )
        )
    return layers
