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

A batch kind's ``check`` also guards that script: ``[cluster.jobqueue]`` values are written into
it as they are, so a control character (a newline) in any value is refused, and the values that
become arguments of the worker's command line go through :func:`jobqueue_keywords`.

Entries are small: Dask and dask-jobqueue are imported when a cluster is connected.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ckptnas.errors import ConfigError

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


def batch_kinds() -> list[str]:
    """The installed cluster kinds whose workers are batch jobs."""
    from ckptnas.runtime._registry import CLUSTERS

    return [name for name in CLUSTERS.names() if getattr(CLUSTERS.get(name), "batch", False)]


def batch_words() -> str:
    """The batch kinds in words: ``slurm, pbs, lsf or sge``."""
    names = batch_kinds()
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def _refuse_jobqueue(config: Config) -> None:
    if config.cluster.jobqueue:
        raise ConfigError(
            f"[cluster.jobqueue] options are for kind = {batch_words()}, not "
            f"kind = {config.cluster.kind!r}"
        )


class LocalKind:
    """A LocalCluster started on this machine, or the scheduler ``[cluster] scheduler`` names."""

    batch = False

    def check(self, config: Config) -> None:
        """Refuse ``[cluster.jobqueue]``: no batch jobs are started."""
        _refuse_jobqueue(config)

    def connect(self, config: Config) -> AbstractContextManager[Client]:
        """A client of ``scheduler`` when one is given, else of a new LocalCluster."""
        from ckptnas.runtime._cluster import client_of, local_client

        if config.cluster.scheduler:
            return client_of(config.cluster.scheduler)
        return local_client(config)

    def workers_may_join(self, config: Config) -> bool:
        """Only with a scheduler: the embedded cluster starts all its workers at once."""
        return bool(config.cluster.scheduler)


class AddressKind:
    """The running Dask scheduler that ``[cluster] scheduler`` names."""

    batch = False

    def check(self, config: Config) -> None:
        """Require ``scheduler``; refuse ``[cluster.jobqueue]``."""
        if not config.cluster.scheduler:
            raise ConfigError("[cluster] scheduler must name an address when kind = 'address'")
        _refuse_jobqueue(config)

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


# dask-jobqueue (0.9, ``core.py``) writes each header value on a line of its own and joins the
# worker's command line with spaces, quoting nothing: a newline in any value adds a line to the
# script, and a shell character on the command line runs there.
# Values that are one argument each of that command line: quoted where they need it.
_ARGUMENTS = ("death_timeout", "local_directory")
_ARGUMENT_LISTS = ("worker_extra_args", "extra")
# Names the scheduler (in this process) is given too, so quoting would break them there.
_NAMES = ("interface", "protocol")
# The start of the command line: a program and its words (``srun python``), used as written.
_COMMANDS = ("python", "worker_command")
# Letters, digits, ``@%+=:,./-`` and plain ``$NAME`` or ``${NAME}`` (``local_directory =
# "$TMPDIR"`` is dask-jobqueue's own advice): the shell reads these as one word, as meant.
_PLAIN = re.compile(r"(?:[\w@%+=:,./-]|\$\w+|\$\{\w+\})*")
# What ends, chains, redirects or substitutes a command, or comments out the rest of the line.
_STRUCTURE = re.compile(r"[;&|<>`(){}\\#]")


def check_jobqueue(table: dict[str, Any]) -> None:
    """Refuse ``[cluster.jobqueue]`` values that would change the structure of the job script.

    Parameters
    ----------
    table : dict of str to Any
        The ``[cluster.jobqueue]`` table: dask-jobqueue's keywords.

    Raises
    ------
    ConfigError
        Naming the key: a control character (a newline) in any value, an argument list that is
        no list, or a shell character in a command or an interface name.
    """
    for key, value in table.items():
        _refuse_control_characters(key, value)
    for key in _ARGUMENT_LISTS:
        if key in table and not isinstance(table[key], list):
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {table[key]!r} must be a list of arguments"
            )
    for key in (*_COMMANDS, *_NAMES):
        value = table.get(key)
        found = _STRUCTURE.search(value) if isinstance(value, str) else None
        if found:
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {value!r} holds {found[0]!r}, which would change "
                "the job script's commands"
            )
    for key in _COMMANDS:
        if isinstance(table.get(key), str):
            try:
                shlex.split(table[key])
            except ValueError as exc:
                raise ConfigError(f"[cluster.jobqueue] {key} = {table[key]!r}: {exc}") from None


def jobqueue_keywords(table: dict[str, Any]) -> dict[str, Any]:
    """``[cluster.jobqueue]`` as dask-jobqueue's keywords, each command-line argument quoted.

    A value of ``local_directory``, ``death_timeout`` or an item of ``worker_extra_args`` is
    one argument of the worker's command line: one with a character the shell would read
    (a space, ``;``, ``$(``) is quoted with :func:`shlex.quote`; letters, digits, paths and
    plain ``$NAME`` references are left as they are, for the shell to expand.

    Parameters
    ----------
    table : dict of str to Any
        The ``[cluster.jobqueue]`` table, checked by :func:`check_jobqueue`.

    Returns
    -------
    dict of str to Any
        The keywords to give the dask-jobqueue cluster class.
    """
    keywords = dict(table)
    for key in _ARGUMENTS:
        if key in keywords:
            keywords[key] = _argument(keywords[key])
    for key in _ARGUMENT_LISTS:
        if isinstance(keywords.get(key), list):
            keywords[key] = [_argument(item) for item in keywords[key]]
    return keywords


def _argument(value: Any) -> Any:
    if not isinstance(value, str) or _PLAIN.fullmatch(value):
        return value
    return shlex.quote(value)


def _refuse_control_characters(key: str, value: Any) -> None:
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, list) or isinstance(value, dict):
        for item in items:
            _refuse_control_characters(key, item)
    elif isinstance(value, str):
        bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
        if bad is not None:
            raise ConfigError(
                f"[cluster.jobqueue] {key} = {value!r} holds the control character {bad!r}: "
                "each value goes on one line of the job script"
            )
