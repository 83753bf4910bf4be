"""The registry of search spaces: ``[space] kind`` names an entry of :data:`SPACES`.

A third-party space registers under the entry point group ``ckptnas.spaces``; an entry follows
:class:`~ckptnas.space._kinds.SpaceKind` (``check`` and ``build``).
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry
from ckptnas.space._kinds import DenseKind, FactoryKind, PythonKind

#: ``[space] kind`` to the entry that checks ``[space]`` and builds the space.
SPACES: Registry[Any] = Registry("space", key="[space] kind", group="ckptnas.spaces")

SPACES.register("dense", DenseKind())
SPACES.register("conv1d", FactoryKind("ckptnas.space._conv:conv1d_space"))
SPACES.register("conv2d", FactoryKind("ckptnas.space._conv:conv2d_space"))
SPACES.register("cell", FactoryKind("ckptnas.space._cell:cell_space"))
SPACES.register("python", PythonKind())
