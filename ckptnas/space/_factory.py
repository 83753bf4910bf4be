"""Spaces made by a factory: the built-in kinds and a user's ``module:function``.

A factory is called as ``factory(inputs, output_size, **options)``, with ``inputs`` a dict from
input name to the shape of one sample (no batch dimension) and ``output_size`` the head's
width. What it returns must follow the space protocol (:class:`~ckptnas.space.Space`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ckptnas.errors import SearchSpaceError
from ckptnas.space._resolved import ResolvedSpace

Shapes = Mapping[str, tuple[int, ...]]


def load_factory(spec: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` or ``"path/to/file.py:function"`` names.

    A file is imported under a name of its own and registered with cloudpickle to travel by
    value, so the workers of an external cluster need not see it.

    Raises
    ------
    SearchSpaceError
        If the module or file cannot be imported or has no such function.
    """
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise SearchSpaceError(f"factory {spec!r} must be 'module:function' or 'file.py:function'")
    try:
        module = _import_file(where) if where.endswith(".py") else importlib.import_module(where)
    except SearchSpaceError:
        raise
    except SystemExit as exc:  # it would end ckptnas silently, with the module's own status
        raise SearchSpaceError(
            f"the space factory's module {where!r} exited (sys.exit({exc.code!r})) while being "
            "imported"
        ) from None
    except Exception as exc:
        raise SearchSpaceError(
            f"cannot import the space factory's module {where!r}: {exc!r}"
        ) from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise SearchSpaceError(f"{where!r} has no function {name!r} (factory {spec!r})")
    return factory  # type: ignore[no-any-return]


def _import_file(path: str) -> Any:
    file = Path(path)
    if not file.is_file():
        raise SearchSpaceError(f"space factory file {path!r} does not exist")
    digest = hashlib.blake2b(str(file.resolve()).encode(), digest_size=6).hexdigest()
    name = f"ckptnas_space_{file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SearchSpaceError(f"cannot import {path!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def space_from_factory(
    kind: str,
    spec: str,
    inputs: Shapes,
    output_size: int,
    options: Mapping[str, Any] | None = None,
) -> ResolvedSpace:
    """The space ``spec`` (``"module:function"`` or ``"file.py:function"``) makes, checked.

    The space records ``kind``, ``spec``, ``options`` and the data's shapes as its origin.

    Raises
    ------
    SearchSpaceError
        If the factory cannot be found, raises, or returns no space; one line.
    """
    function = load_factory(spec)
    options = dict(options or {})
    shapes = {name: tuple(int(d) for d in shape) for name, shape in inputs.items()}
    try:
        space = function(shapes, int(output_size), **options)
    except SearchSpaceError:
        raise
    except (Exception, SystemExit) as exc:
        raise SearchSpaceError(f"space factory {spec!r} raised {exc!r}") from None
    origin = {
        "kind": kind,
        "factory": spec,
        "options": options,
        "inputs": shapes,
        "output_size": int(output_size),
    }
    try:
        return checked_space(space, list(shapes), origin)
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"space factory {spec!r}: {exc}") from None


def checked_space(
    space: Any, input_names: list[str] | None = None, origin: dict[str, Any] | None = None
) -> ResolvedSpace:
    """Wrap a space, then sample, build and trace one architecture of it.

    A broken space (no protocol, a ``build`` that raises, a forward that cannot be traced)
    so stops before any training, with one line.

    Raises
    ------
    SearchSpaceError
    """
    try:
        resolved = (
            space if isinstance(space, ResolvedSpace) else ResolvedSpace(space, input_names, origin)
        )
        resolved.layers(resolved.sample(np.random.default_rng(0)))
    except SearchSpaceError:
        raise
    except Exception as exc:
        raise SearchSpaceError(f"the search space failed: {exc!r}") from None
    return resolved
