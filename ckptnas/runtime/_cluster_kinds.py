"""The built-in cluster kinds, the entries of :data:`~ckptnas.runtime.CLUSTERS`.

An entry of the cluster kinds' registry has:

``batch`` (bool)
    Whether its workers are batch jobs on other nodes (so this machine trains nothing, and
    ``ckptnas cluster-script`` can print their job script).
``check(config)``
    Refuses, with :class:`~ckptnas.errors.ConfigError` naming the key, a ``[cluster]`` table it
    cannot start from (called when the configuration is read).
``connect(config)``
    A context manager giving a :class:`distributed.Client` of the cluster, closed on leaving.
``job_script(config)``
    For batch kinds: the job script each worker job runs.
``workers_may_join(config)`` (optional; taken as true when missing)
    Whether workers may join the cluster after it is connected (queued batch jobs, workers
    others start for a scheduler): if not, a run whose cluster has lost every worker stops
    instead of waiting for one.

A batch kind's ``check`` also guards that script, through
:func:`~ckptnas.runtime._jobqueue.check_jobqueue`. The other kinds refuse ``[cluster.jobqueue]``,
naming the batch kinds installed: the registry, which holds them all, hands each kind its way
to list them.

Entries are small: Dask and dask-jobqueue are imported when a cluster is connected.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ckptnas.errors import ConfigError
from ckptnas.runtime._jobqueue import check_jobqueue

if TYPE_CHECKING:
    from distributed import Client

    from ckptnas.config import Config


class ClusterKind(Protocol):
    """What the run asks an entry of :data:`~ckptnas.runtime.CLUSTERS`."""

    batch: bool

    def check(self, config: Config) -> None:
        """Refuse a ``[cluster]`` table this kind cannot start from."""

    def connect(self, config: Config) -> AbstractContextManager[Client]:
        """A client of the cluster, closed (with a cluster started for it) on leaving."""

    def workers_may_join(self, config: Config) -> bool:
        """Whether workers may join the cluster after it is connected."""


def _refuse_jobqueue(config: Config, batch_words: Callable[[], str]) -> None:
    if config.cluster.jobqueue:
        raise ConfigError(
            f"[cluster.jobqueue] options are for kind = {batch_words()}, not "
            f"kind = {config.cluster.kind!r}"
        )


@dataclass(frozen=True)
class _Unbatched:
    """A kind that starts no batch jobs, and so refuses ``[cluster.jobqueue]``.

    Attributes
    ----------
    batch_words : callable
        The installed batch kinds in words (``slurm, pbs, lsf or sge``), which
        ``[cluster.jobqueue]`` is for.
    """

    batch_words: Callable[[], str]
    batch = False


@dataclass(frozen=True)
class LocalKind(_Unbatched):
    """A LocalCluster started on this machine, or the scheduler ``[cluster] scheduler`` names."""

    def check(self, config: Config) -> None:
        """Refuse ``[cluster.jobqueue]``: no batch jobs are started."""
        _refuse_jobqueue(config, self.batch_words)

    def connect(self, config: Config) -> AbstractContextManager[Client]:
        """A client of ``scheduler`` when one is given, else of a new LocalCluster."""
        from ckptnas.runtime._cluster import client_of, local_client

        if config.cluster.scheduler:
            return client_of(config.cluster.scheduler)
        return local_client(config)

    def workers_may_join(self, config: Config) -> bool:
        """Only with a scheduler: the embedded cluster starts all its workers at once."""
        return bool(config.cluster.scheduler)


@dataclass(frozen=True)
class AddressKind(_Unbatched):
    """The running Dask scheduler that ``[cluster] scheduler`` names."""

    def check(self, config: Config) -> None:
        """Require ``scheduler``; refuse ``[cluster.jobqueue]``."""
        if not config.cluster.scheduler:
            raise ConfigError("[cluster] scheduler must name an address when kind = 'address'")
        _refuse_jobqueue(config, self.batch_words)

    def connect(self, config: Config) -> AbstractContextManager[Client]:
        """A client of ``scheduler``."""
        from ckptnas.runtime._cluster import client_of

        return client_of(config.cluster.scheduler)

    def workers_may_join(self, config: Config) -> bool:
        """Yes: others may start workers for the scheduler at any time."""
        return True


@dataclass(frozen=True)
class BatchKind:
    """Workers started as batch jobs by a dask-jobqueue cluster class.

    Attributes
    ----------
    jobqueue_class : str
        The class of :mod:`dask_jobqueue` (``"SLURMCluster"``), given ``[cluster.jobqueue]``
        as its keywords.
    """

    jobqueue_class: str
    batch = True

    def check(self, config: Config) -> None:
        """Refuse ``scheduler``; require ``n_workers`` or ``adapt_maximum``."""
        cluster = config.cluster
        if cluster.scheduler:
            raise ConfigError(
                f"[cluster] scheduler = {cluster.scheduler!r} is for kind = 'address', not "
                f"kind = {cluster.kind!r}"
            )
        if not (cluster.n_workers or cluster.adapt_maximum):
            raise ConfigError(
                f"[cluster] kind = {cluster.kind!r} needs n_workers (workers to start) or "
                "adapt_maximum (the most workers to scale to)"
            )
        check_jobqueue(cluster.jobqueue)

    def connect(self, config: Config) -> AbstractContextManager[Client]:
        """A client of the batch cluster, scaled to ``n_workers`` or adaptive."""
        from ckptnas.runtime._cluster import batch_client

        return batch_client(config, self.jobqueue_class)

    def workers_may_join(self, config: Config) -> bool:
        """Yes: worker jobs wait in the queue, and an adaptive cluster submits more."""
        return True

    def job_script(self, config: Config) -> str:
        """The job script of each worker job (no job is submitted)."""
        from ckptnas.runtime._cluster import jobqueue_cluster

        with jobqueue_cluster(config, self.jobqueue_class) as cluster:
            return str(cluster.job_script())
