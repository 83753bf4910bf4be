"""The Dask cluster a search runs on: an existing scheduler, or a LocalCluster started for it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import dask
import torch
from distributed import Client, LocalCluster

from ckptnas.config import Config

logger = logging.getLogger(__name__)


def default_workers() -> tuple[int, bool]:
    """Workers for a LocalCluster: one per GPU when CUDA is visible, else one per core."""
    if torch.cuda.is_available():
        return torch.cuda.device_count(), True
    return os.cpu_count() or 1, False


@contextlib.contextmanager
def connect(config: Config) -> Iterator[Client]:
    """A client for ``[cluster] scheduler``, or for a new LocalCluster on localhost."""
    if config.cluster.scheduler:
        logger.info("connecting to the Dask scheduler at %s", config.cluster.scheduler)
        with Client(config.cluster.scheduler) as client:
            yield client
        return
    n_gpus_or_cores, gpu = default_workers()
    n_workers = config.cluster.n_workers or n_gpus_or_cores
    # The scheduler and the workers take the Dask configuration in force when the cluster is
    # created (workers keep it when they restart). Each Dask server checks its event loop's
    # health on a timer, every 20 ms by default: about 3% of a core per process when idle, taken
    # from training. A candidate lasts seconds, so once a second is plenty.
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536 so that dataframe workloads hand
    # freed memory back to the OS. Setting it also pins glibc's mmap threshold at 128 KiB: every
    # larger tensor of every batch is then a fresh mmap, page-faulted in and unmapped again: on
    # the quickstart the worker took 7x the page faults and its epochs 5-9% longer. Training
    # workers keep glibc's defaults (a MALLOC_TRIM_THRESHOLD_ set in the environment still wins).
    settings = {
        "distributed.worker.profile.enabled": config.cluster.worker_profile,
        "distributed.admin.tick.interval": "1s",
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            resources={"GPU": 1} if gpu else None,
        )
    logger.info("started a LocalCluster of %d %s workers", n_workers, "GPU" if gpu else "CPU")
    with cluster, Client(cluster) as client:
        yield client
