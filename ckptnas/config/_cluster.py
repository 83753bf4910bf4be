"""``[cluster]``: where candidates run.

``kind`` names an entry of the cluster kinds' registry (:mod:`ckptnas.runtime`), which checks
the keys it reads (``scheduler``, ``[cluster.jobqueue]``, the worker counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ckptnas.config._fields import non_negative, option, positive, registered


@dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: where candidates run."""

    kind: str = registered("cluster", "local")
    scheduler: str = option("", why="a scheduler address; empty starts a LocalCluster")
    n_workers: int = option(0, non_negative, ">= 0 (0: one per GPU, else one per core)")
    candidates_per_gpu: int = option(1, positive, ">= 1")
    adapt_minimum: int = option(0, non_negative, ">= 0")
    adapt_maximum: int = option(0, non_negative, ">= 0 (0: a fixed n_workers)")
    # dask-jobqueue's own keywords, passed through as they are: the one place to learn them is
    # its documentation, and a keyword it does not know is refused when the cluster is made.
    jobqueue: dict[str, Any] = option({}, why="a table of dask-jobqueue keywords")
    # Off by default: Dask's statistical profiler samples the training thread every 10 ms, and
    # measured here it slowed the epochs of small networks by several percent (docs/benchmarks.md).
    worker_profile: bool = option(False)
