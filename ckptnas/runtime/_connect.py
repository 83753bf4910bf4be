"""Connecting the cluster ``[cluster] kind`` names, through its entry of the registry.

The entry (:data:`~ckptnas.runtime.CLUSTERS`) starts or reaches its cluster with the helpers of
:mod:`~ckptnas.runtime._cluster`; this module sits above both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from distributed import Client

from ckptnas.config import Config
from ckptnas.errors import ConfigError
from ckptnas.runtime._cluster import jobqueue_cluster, quiet_early_cancels
from ckptnas.runtime._registry import CLUSTERS


@contextlib.contextmanager
def connect(config: Config) -> Iterator[Client]:
    """A client of the cluster ``[cluster] kind`` names, which it starts or connects to."""
    with quiet_early_cancels(), CLUSTERS.get(config.cluster.kind).connect(config) as client:
        yield client


def batch_cluster(config: Config) -> Any:
    """The dask-jobqueue cluster of ``[cluster] kind`` with ``[cluster.jobqueue]``'s keywords.

    It has a scheduler (in this process) and no workers yet: :func:`connect` scales it, and
    ``ckptnas cluster-script`` prints the job script each worker job would run.

    Raises
    ------
    ConfigError
        If the kind starts no batch jobs, dask-jobqueue is not installed, or it does not take
        one of the keywords.
    """
    kind = CLUSTERS.get(config.cluster.kind)
    if not getattr(kind, "batch", False):
        raise ConfigError(f"[cluster] kind = {config.cluster.kind!r} starts no batch jobs")
    return jobqueue_cluster(config, kind.jobqueue_class)
