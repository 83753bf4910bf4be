"""The registry of search spaces: ``[space] kind`` names an entry of :data:`SPACES`.

A third-party space registers under the entry point group ``ckptnas.spaces``.
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry

#: ``[space] kind`` to the entry that checks ``[space]`` and builds the space.
SPACES: Registry[Any] = Registry("space", key="[space] kind", group="ckptnas.spaces")
