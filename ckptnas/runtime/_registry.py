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


def batch_kinds() -> list[str]:
    """The installed cluster kinds whose workers are batch jobs."""
    return [name for name in CLUSTERS.names() if getattr(CLUSTERS.get(name), "batch", False)]


def batch_words() -> str:
    """The batch kinds in words: ``slurm, pbs, lsf or sge``."""
    names = batch_kinds()
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


# The kinds that start no batch jobs name the batch kinds when refusing [cluster.jobqueue]: those
# of plugins too, which only the registry knows.
CLUSTERS.register("local", LocalKind(batch_words))
CLUSTERS.register("address", AddressKind(batch_words))
CLUSTERS.register("slurm", BatchKind("SLURMCluster"))
CLUSTERS.register("pbs", BatchKind("PBSCluster"))
CLUSTERS.register("lsf", BatchKind("LSFCluster"))
CLUSTERS.register("sge", BatchKind("SGECluster"))
