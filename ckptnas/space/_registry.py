"""The registry of search spaces: ``[space] kind`` names an entry of :data:`SPACES`.

A third-party space registers under the entry point group ``ckptnas.spaces``; an entry follows
:class:`~ckptnas.space._kinds.SpaceKind` (``check`` and ``build``). :func:`make_space` makes
the space of a kind by its name.

The configuration imports this module to check ``[space] kind``: what builds a space (numpy,
torch) is imported when one is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ckptnas.plugins import Registry
from ckptnas.space._kinds import DenseKind, FactoryKind, PythonKind

if TYPE_CHECKING:
    from ckptnas.space._resolved import ResolvedSpace

#: ``[space] kind`` to the entry that checks ``[space]`` and builds the space.
SPACES: Registry[Any] = Registry("space", key="[space] kind", group="ckptnas.spaces")

SPACES.register("dense", DenseKind())
SPACES.register("conv1d", FactoryKind("ckptnas.space._conv:conv1d_space"))
SPACES.register("conv2d", FactoryKind("ckptnas.space._conv:conv2d_space"))
SPACES.register("cell", FactoryKind("ckptnas.space._cell:cell_space"))
SPACES.register("python", PythonKind())


def make_space(
    kind: str,
    inputs: Mapping[str, tuple[int, ...]],
    output_size: int,
    factory: str = "",
    options: Mapping[str, Any] | None = None,
) -> ResolvedSpace:
    """Make, check and wrap the space of a kind made by a factory, or of a user's factory.

    Parameters
    ----------
    kind : str
        A kind of :data:`~ckptnas.space.SPACES` that names its factory (``conv1d``,
        ``conv2d``, ``cell``), or ``python``.
    inputs : mapping of str to tuple of int
        Input name to the shape of one sample.
    output_size : int
    factory : str
        For ``kind = "python"``: ``"module:function"`` or ``"path/to/file.py:function"``.
    options : mapping, optional
        Keyword arguments for the factory.

    Returns
    -------
    ResolvedSpace

    Raises
    ------
    SearchSpaceError
        If the factory cannot be found, raises, or returns no space; one line.
    ConfigError
        If no installed kind has that name.
    """
    from ckptnas.space._factory import space_from_factory

    entry = SPACES.get(kind)
    spec = str(getattr(entry, "factory", "")) or factory
    space = space_from_factory(kind, spec, inputs, output_size, options)
    # A kind that makes its spaces again from a name and options is recorded so, not pickled.
    space.by_name = hasattr(entry, "make")
    return space
