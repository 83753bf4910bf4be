"""The registry of cluster kinds: ``[cluster] kind`` names an entry of :data:`CLUSTERS`.

A third-party cluster kind registers under the entry point group ``ckptnas.clusters``.
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry

#: ``[cluster] kind`` to the entry that checks ``[cluster]`` and starts or connects the cluster.
CLUSTERS: Registry[Any] = Registry("cluster", key="[cluster] kind", group="ckptnas.clusters")
