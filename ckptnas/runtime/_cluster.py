"""The Dask cluster a search runs on: an existing scheduler, batch jobs, or a LocalCluster.

The helpers here start or reach each of them; the built-in cluster kinds
(:mod:`~ckptnas.runtime._cluster_kinds`) connect through them, and
:func:`~ckptnas.runtime.connect` asks the kind ``[cluster] kind`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import signal
import threading
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import dask
import torch
from distributed import Client, LocalCluster, Worker, WorkerPlugin
from distributed.core import Status
from distributed.security import Security

from ckptnas.config import Config
from ckptnas.errors import ClusterError, ConfigError
from ckptnas.runtime._jobqueue import jobqueue_keywords
from ckptnas.runtime._signals import handlers_kept

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def client_of(address: str) -> Iterator[Client]:
    """A client of an existing scheduler, or :class:`ClusterError` naming the address.

    It waits for the scheduler as long as Dask's ``distributed.comm.timeouts.connect`` says
    (30 s by default). Losing the scheduler later is reported by the run itself, once: Dask's
    own "Failed to reconnect" log line is held back meanwhile.
    """
    logger.info("connecting to the Dask scheduler at %s", address)
    try:
        client = Client(address)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address!r} ({type(exc).__name__}: {exc}); "
            "check the address, or use the embedded cluster (--local)"
        ) from None
    quiet = _QuietAboutALostScheduler()
    dask_client_log = logging.getLogger("distributed.client")
    dask_client_log.addFilter(quiet)
    try:
        with client:
            try:
                yield client
            except ClusterError:
                quiet.lost = True  # closing the client now logs tracebacks of its reconnection
                raise
    finally:
        dask_client_log.removeFilter(quiet)


class _QuietAboutALostScheduler(logging.Filter):
    """Holds back the Dask client's own log lines about a scheduler that the run reports."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Failed to reconnect to scheduler"):
            return False
        # A reconnection cut short when the client closes: logged as a bare traceback, at any
        # moment between losing the scheduler and the run reporting it.
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            return False
        return not self.lost


class _QuietAboutAnEarlyCancel(logging.Filter):
    """Holds back the traceback of a Dask call that a stop signal cut short as it began.

    Ctrl-C or SIGTERM raised while the client waits in one of Dask's blocking calls makes Dask
    cancel that call from its event loop; if the call had not started yet, Dask's ``cancel``
    reads a variable not yet assigned and tornado logs a ten-line ``NameError`` traceback
    under the run's one-line message (distributed 2026.8, ``utils.sync``). Nothing is lost:
    the run stops as it should.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or not isinstance(record.exc_info[1], NameError):
            return True
        tb = record.exc_info[2]
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code if tb is not None else None
        return not (
            code is not None
            and code.co_name == "cancel"
            and Path(code.co_filename).parts[-2:] == ("distributed", "utils.py")
        )


@contextlib.contextmanager
def quiet_early_cancels() -> Iterator[None]:
    """Hold back the traceback of a Dask call that a stop signal cut short as it began."""
    quiet = _QuietAboutAnEarlyCancel()
    tornado_log = logging.getLogger("tornado.application")
    tornado_log.addFilter(quiet)
    try:
        yield
    finally:
        tornado_log.removeFilter(quiet)


def default_workers() -> tuple[int, bool]:
    """Workers for a LocalCluster: one per GPU when CUDA is visible, else one per core."""
    if torch.cuda.is_available():
        return torch.cuda.device_count(), True
    return os.cpu_count() or 1, False


def _local_cluster_class(gpu: bool, candidates_per_gpu: int) -> type[LocalCluster]:
    """dask-cuda's ``LocalCUDACluster`` for one candidate per GPU when it is installed.

    It gives each worker its own ``CUDA_VISIBLE_DEVICES``, so a worker's CUDA context lives on
    its own GPU alone, and it knows the GPUs' memory (on the dashboard). It starts exactly one
    process per GPU, though: several candidates per GPU take a plain ``LocalCluster`` with
    several processes per GPU (processes, not threads, overlap kernel launches: each launch
    holds its process's GIL), each training on GPU ``i`` modulo the GPUs (``choose_device``).
    """
    if not gpu or candidates_per_gpu > 1:
        return LocalCluster
    try:
        dask_cuda = importlib.import_module("dask_cuda")
    except ImportError:
        return LocalCluster
    cls: type[LocalCluster] = dask_cuda.LocalCUDACluster
    return cls


def jobqueue_cluster(config: Config, class_name: str) -> Any:
    """The dask-jobqueue cluster of class ``class_name``, given ``[cluster.jobqueue]``.

    Raises
    ------
    ConfigError
        If dask-jobqueue is not installed, or the class does not take one of the keywords.
    """
    try:
        with handlers_kept():  # its import takes SIGINT for itself
            jobqueue = importlib.import_module("dask_jobqueue")
    except ImportError:
        raise ConfigError(
            f"[cluster] kind = {config.cluster.kind!r} needs dask-jobqueue: "
            "pip install 'ckptnas[hpc]'"
        ) from None
    cls = getattr(jobqueue, class_name)
    try:
        return cls(**jobqueue_keywords(config.cluster.jobqueue))
    except (TypeError, ValueError) as exc:
        # dask-jobqueue's message goes on to dump every keyword it was given, over lines.
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        what = (
            f"takes no keyword {unknown[1]!r} (see its documentation for the ones it takes)"
            if unknown
            else str(exc).splitlines()[0]
        )
        raise ConfigError(f"[cluster.jobqueue] {cls.__name__} {what}") from None


@contextlib.contextmanager
def batch_client(config: Config, class_name: str) -> Iterator[Client]:
    """A client of a dask-jobqueue cluster, scaled to ``n_workers`` or adaptive."""
    with jobqueue_cluster(config, class_name) as cluster, Client(cluster) as client:
        if config.cluster.adapt_maximum:
            cluster.adapt(
                minimum=config.cluster.adapt_minimum, maximum=config.cluster.adapt_maximum
            )
        else:
            cluster.scale(config.cluster.n_workers)
        logger.info("submitting worker jobs through %s", type(cluster).__name__)
        yield client


@contextlib.contextmanager
def local_client(config: Config) -> Iterator[Client]:
    """A client of a LocalCluster started on this machine, closed with it."""
    n_gpus_or_cores, gpu = default_workers()
    n_workers = config.cluster.n_workers or n_gpus_or_cores
    if gpu:
        # Several worker processes per GPU: a small candidate is bound by kernel launches, and
        # processes overlap them (4 concurrent processes on one H100 gave 3x the epochs per
        # second of one). Worker i trains on GPU i modulo the GPUs (choose_device).
        n_workers *= config.cluster.candidates_per_gpu
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
    cluster_class = _local_cluster_class(gpu, config.cluster.candidates_per_gpu)
    with dask.config.set(settings), _stop_signals_reach_only_this_thread():
        cluster = cluster_class(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            resources={"GPU": 1} if gpu else None,
            # Anyone who can reach a Dask scheduler can run code on its workers, and on a
            # shared login node every user can reach 127.0.0.1. TLS with a certificate made
            # for this cluster alone, held in memory, admits only this client and its workers.
            security=Security.temporary(),
        )
    logger.info(
        "started a %s of %d %s workers", cluster_class.__name__, n_workers, "GPU" if gpu else "CPU"
    )
    with cluster, Client(cluster) as client:
        client.register_plugin(QuietWhileStopping())
        yield client


#: Signals that stop a run: Ctrl-C, and what batch schedulers send at the end of a job.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _stop_signals_reach_only_this_thread() -> Iterator[None]:
    """Block SIGINT and SIGTERM while the embedded cluster's threads and workers are created.

    A terminal's Ctrl-C goes to every process of its process group, and Slurm's SIGTERM to
    every process of the job: the cluster's workers included. Each worker printed a screenful
    of tracebacks on Ctrl-C (69 lines for two workers) before the client's one-line message,
    and on SIGTERM the nannies restarted them while the client was stopping. Threads and
    processes inherit the signal mask of the thread that creates them: the cluster's
    event-loop thread is created here with both blocked, so the workers it starts (and
    restarts) never see them, while this thread unblocks them on leaving and receives any that
    arrived meanwhile. The client alone stops the run, and closes the cluster.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # multiprocessing starts its resource tracker on first use and unblocks SIGINT in the
    # calling thread afterwards, which would undo the block below: start it first.
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


class QuietWhileStopping(WorkerPlugin):
    """Workers of the embedded cluster say nothing of a run stopping, which the run reports.

    Two of Dask's worker log messages are noise there, and nothing else is filtered:

    - A run stopped by Ctrl-C or SIGTERM cancels its candidates in flight; each worker then
      logged a warning of three lines per task ("Async instruction ... ended with
      CancelledError") under the client's one-line message.
    - A closing worker closes its connections under a heartbeat still in flight, and logged
      that as a 30-line traceback ("Failed to communicate with scheduler during heartbeat")
      under the run's error: on a loaded machine, where a heartbeat is slow, at the end of
      one run in a few hundred. A failed heartbeat of a worker that is not closing is kept.
    """

    name = "ckptnas-quiet-while-stopping"

    def setup(self, worker: Worker) -> None:
        logging.getLogger("distributed.worker.state_machine").addFilter(_not_a_cancellation)
        logging.getLogger("distributed.worker").addFilter(_HeartbeatCutByClose(worker))


def _not_a_cancellation(record: logging.LogRecord) -> bool:
    return "ended with CancelledError" not in record.getMessage()


class _HeartbeatCutByClose(logging.Filter):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.getMessage().startswith("Failed to communicate with scheduler during heartbeat")
            and self.worker.status in (Status.closing, Status.closed)
        )
