"""The registry of cluster kinds: ``[cluster] kind`` names an entry of :data:`CLUSTERS`.

A third-party cluster kind registers under the entry point group ``ckptnas.clusters``; an entry
follows :class:`~ckptnas.runtime._cluster_kinds.ClusterKind`.
"""

from __future__ import annotations

from typing import Any

from ckptnas.plugins import Registry
from ckptnas.runtime._cluster_kinds import AddressKind, BatchKind, LocalKind

#: ``[cluster] kind`` to the entry that checks ``[cluster]`` and starts or connects the cluster.
CLUSTERS: Registry[Any] = Registry("cluster", key="[cluster] kind", group="ckptnas.clusters")

CLUSTERS.register("local", LocalKind())
CLUSTERS.register("address", AddressKind())
CLUSTERS.register("slurm", BatchKind("SLURMCluster"))
CLUSTERS.register("pbs", BatchKind("PBSCluster"))
CLUSTERS.register("lsf", BatchKind("LSFCluster"))
CLUSTERS.register("sge", BatchKind("SGECluster"))
