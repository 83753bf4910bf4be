"""Layer identities derived from a built network, by tracing it with :mod:`torch.fx`.

Every value the traced graph computes gets an identity, a hash of the operation that made it and
of its operands' identities (a Merkle tree over the graph). A *parametrised module* (one holding
parameters or buffers of its own) is a layer: its identity hashes its type, its configuration
(``repr``), its tensors' names and shapes, and the identities of what feeds each of its calls.
Module names play no part, so a layer that moves or is renamed keeps its identity.

Layers that would otherwise be indistinguishable (two 3x3 convolutions of one width fed by the
same signal, as on two edges of a cell) are told apart by their order in the trace: the first
of them gets occurrence 0, the next 1. Shared modules (called more than once) are one layer
whose identity covers every call; additions, concatenations and skips are operations like any
other, so they change the identity of everything downstream.

Each layer also gets a *width-free* identity, computed the same way but blind to widths: the
numbers in a parametrised module's ``repr`` and the first two dimensions of its tensors (output
and input features or channels) are left out, kernel sizes kept. Two layers with equal
width-free identities differ at most in width, theirs or that of what feeds them; the
``widen`` transfer policy copies the overlapping block of such layers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.fx._symbolic_trace import PH

from ckptnas.errors import SearchSpaceError
from ckptnas.space._protocol import Layer


def _digest(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def _owns_tensors(module: nn.Module) -> bool:
    own = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    return bool(own)


class _LayerTracer(fx.Tracer):
    """Keeps every module that owns tensors whole, so that it is one node (one layer)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _owns_tensors(m) or super().is_leaf_module(m, module_qualified_name)


def tensors_of(module: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    """(relative name, tensor, is a parameter) of a module: parameters, then saved buffers."""
    params = [(n, p.detach(), True) for n, p in module.named_parameters()]
    buffers = [(n, b, False) for n, b in module.state_dict(keep_vars=True).items()]
    param_names = {n for n, _, _ in params}
    return params + [(n, b.detach(), False) for n, b, _ in buffers if n not in param_names]


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None) or ""
    return f"{module}.{getattr(target, '__qualname__', repr(target))}"


def _trace(module: nn.Module, input_names: Sequence[str] | None) -> fx.Graph:
    tracer = _LayerTracer()
    if input_names is None:
        return tracer.trace(module)
    # The forward's first argument is a dict: given its keys, fx hands the forward a real dict
    # of placeholders, so code that iterates over the inputs traces too.
    first = next(iter(inspect.signature(module.forward).parameters))
    concrete = {first: dict.fromkeys(input_names, PH)}
    return tracer.trace(module, concrete_args=concrete)


def traced_layers(module: nn.Module, input_names: Sequence[str] | None = None) -> list[Layer]:
    """The parametrised layers of a network with their derived identities, in trace order.

    Parameters
    ----------
    module : torch.nn.Module
        A built network whose ``forward`` takes a dict from input name to a batch tensor.
    input_names : sequence of str, optional
        The keys of that dict; given, the forward may iterate over it.

    Returns
    -------
    list of Layer
        One per module that owns parameters or buffers (and per parameter used directly),
        ordered by first use in the forward pass.

    Raises
    ------
    SearchSpaceError
        If :mod:`torch.fx` cannot trace the forward (data-dependent control flow, say).

    Examples
    --------
    >>> import torch
    >>> class Net(torch.nn.Module):
    ...     def __init__(self) -> None:
    ...         super().__init__()
    ...         self.a = torch.nn.Linear(4, 8)
    ...         self.b = torch.nn.Linear(8, 1)
    ...
    ...     def forward(self, inputs):
    ...         return self.b(torch.relu(self.a(inputs["x"])))
    >>> [(layer.name, layer.tensors) for layer in traced_layers(Net())]
    [('a', ('a.weight', 'a.bias')), ('b', ('b.weight', 'b.bias'))]
    """
    try:
        graph = _trace(module, input_names)
    except Exception as exc:  # fx raises TraceError, TypeError, AttributeError, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SearchSpaceError(
            f"cannot trace the network with torch.fx to derive layer identities ({reason}); "
            "give the space an identities(arch) method returning module name -> identity"
        ) from None
    exact = _GraphIdentities(module, widths=True).layers(graph)
    width_free = {
        layer.name: layer.identity for layer in _GraphIdentities(module, widths=False).layers(graph)
    }
    return [dataclasses.replace(layer, width_free=width_free[layer.name]) for layer in exact]


class _GraphIdentities:
    """One pass over a traced graph, giving every value and every layer its identity.

    With ``widths=False`` the identities are width-free (see the module's docstring).
    """

    def __init__(self, module: nn.Module, widths: bool) -> None:
        self.module = module
        self.widths = widths
        self.ids: dict[fx.Node, str] = {}
        self.calls: dict[str, list[str]] = {}  # layer name -> the identity of each call
        self.signature: dict[str, tuple[Any, ...]] = {}
        self.occurrences: Counter[str] = Counter()

    def layers(self, graph: fx.Graph) -> list[Layer]:
        for node in graph.nodes:
            self.ids[node] = self._identity(node)
        out = []
        for name, calls in self.calls.items():
            owner = self.module.get_submodule(name) if name in self.signature else None
            tensors = self._tensors(name, owner)
            out.append(
                Layer(
                    name=name,
                    identity=_digest("layer", self.signature.get(name), tuple(calls)),
                    tensors=tuple(f"{name}.{rel}" if owner else name for rel, _, _ in tensors),
                    n_params=sum(t.numel() for _, t, is_param in tensors if is_param),
                    shapes=tuple(tuple(t.shape) for _, t, _ in tensors),
                    param_tensors=sum(is_param for _, _, is_param in tensors),
                )
            )
        return out

    def _tensors(self, name: str, owner: nn.Module | None) -> list[tuple[str, torch.Tensor, bool]]:
        if owner is not None:
            return tensors_of(owner)
        value = self._attribute(name)
        return [("", value.detach(), isinstance(value, nn.Parameter))]

    def _shape(self, shape: torch.Size) -> tuple[int, ...]:
        """A tensor's shape, or with widths left out its rank and its kernel dimensions."""
        return tuple(shape) if self.widths else (len(shape), *shape[2:])

    def _attribute(self, target: str) -> Any:
        owner, _, attr = target.rpartition(".")
        return getattr(self.module.get_submodule(owner) if owner else self.module, attr)

    def _operands(self, node: fx.Node) -> str:
        args = fx.node.map_arg((node.args, node.kwargs), lambda n: f"<{self.ids[n]}>")
        return repr(args)

    def _identity(self, node: fx.Node) -> str:
        if node.op == "placeholder":
            return _digest("input", node.target)
        if node.op == "get_attr":
            return self._attribute_identity(node)
        if node.op == "call_module":
            return self._module_identity(node)
        return _digest(node.op, _target_name(node.target), self._operands(node))

    def _attribute_identity(self, node: fx.Node) -> str:
        target = str(node.target)
        value = self._attribute(target)
        if not isinstance(value, torch.Tensor):
            return _digest("constant", target, repr(value))
        # A tensor used directly (not through a module of its own) is a layer by itself; having
        # no input, it is known by its name and shape.
        identity = _digest("tensor", target, self._shape(value.shape), str(value.dtype))
        self.calls.setdefault(target, [identity])
        return identity

    def _module_identity(self, node: fx.Node) -> str:
        target = str(node.target)
        sub = self.module.get_submodule(target)
        config = (type(sub).__module__, type(sub).__qualname__, repr(sub))
        if not any(True for _ in tensors_of(sub)):
            return _digest("module", config, self._operands(node))
        if not self.widths:
            config = (*config[:2], re.sub(r"\d+", "#", config[2]))
        shapes = tuple((n, self._shape(t.shape), str(t.dtype)) for n, t, _ in tensors_of(sub))
        signature = (*config, shapes)
        base = _digest("call", signature, self._operands(node))
        self.occurrences[base] += 1
        identity = _digest(base, self.occurrences[base] - 1)
        self.signature[target] = signature
        self.calls.setdefault(target, []).append(identity)
        return identity
