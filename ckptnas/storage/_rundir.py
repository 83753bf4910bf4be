"""The run directory: the name of every file of a run, its lock, and what it holds.

Every command that reads or writes a run goes through :class:`RunDir`, so a file's name is
written once (here) and "is there a run in this folder" has one answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ckptnas.config import Config, config_from_dict, load_config
from ckptnas.errors import ConfigError, RunDirectoryError
from ckptnas.storage import _atomic
from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._preprocessing import Preprocessing
from ckptnas.storage._states import Init
from ckptnas.storage._topk_registry import TopKRegistry


class RunKind(StrEnum):
    """What a path holds, as far as ckptnas is concerned."""

    #: Nothing exists at the path yet.
    ABSENT = "absent"
    #: Something that is not a directory.
    NOT_A_DIRECTORY = "not a directory"
    #: A directory with nothing in it.
    EMPTY = "empty"
    #: A directory with files of its own and no sign of a ckptnas run: never written to.
    FOREIGN = "foreign"
    #: A run that stopped before its registry was written (its marker, perhaps its config).
    STARTED = "started"
    #: A run whose registry is gone while its results or checkpoints remain: resuming it
    #: would start over and overwrite them.
    INCOMPLETE = "incomplete"
    #: A search: its registry.
    SEARCH = "search"


@dataclass(frozen=True)
class RunDir:
    """The files of one run, by name.

    Parameters
    ----------
    root : str or Path
        The run directory.

    Examples
    --------
    >>> run = RunDir("runs/quickstart")
    >>> run.lineage
    PosixPath('runs/quickstart/lineage.sqlite')
    >>> run.kind()                                          # doctest: +SKIP
    <RunKind.SEARCH: 'search'>
    """

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # -- the files -------------------------------------------------------------------------
    @property
    def marker(self) -> Path:
        """``.ckptnas-run``: proof that ckptnas made this directory, so it may write in it."""
        return self.root / ".ckptnas-run"

    @property
    def config(self) -> Path:
        """``config.toml``: the configuration, every key resolved."""
        return self.root / "config.toml"

    @property
    def lineage(self) -> Path:
        """``lineage.sqlite``: the registry of every candidate."""
        return self.root / LineageRegistry.FILE

    @property
    def results(self) -> Path:
        """``results.nc``: every measurement as an xarray Dataset."""
        return self.root / "results.nc"

    @property
    def preprocessing(self) -> Path:
        """``preprocessing.safetensors``: the fitted input scaling and target encoding."""
        return self.root / Preprocessing.FILE

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: each trained candidate's tensors."""
        return self.root / "checkpoints"

    @property
    def topk_db(self) -> Path:
        """``topk.sqlite``: the record of the top-K full-training runs."""
        return self.root / TopKRegistry.FILE

    @property
    def topk_results(self) -> Path:
        """``topk.nc``: the full-training curves, times to target and speed-ups."""
        return self.root / "topk.nc"

    def topk_dir(self, init: Init) -> Path:
        """``topk/<init>/``: where full training from one init keeps its checkpoints."""
        return self.root / "topk" / str(init)

    @property
    def report(self) -> Path:
        """``report.html``: the run's report page, kept up to date while the search runs."""
        return self.root / "report.html"

    @property
    def figures(self) -> Path:
        """``figures/``: the report's default output folder."""
        return self.root / "figures"

    # -- what is here ----------------------------------------------------------------------
    def kind(self) -> RunKind:
        """What the directory holds (see :class:`RunKind`)."""
        if not self.root.exists():
            return RunKind.ABSENT
        if not self.root.is_dir():
            return RunKind.NOT_A_DIRECTORY
        if self.lineage.exists():
            return RunKind.SEARCH
        if not self.marker.is_file():
            # Runs of ckptnas 0.1 had no marker but always a registry once they had results.
            return RunKind.EMPTY if not any(self.root.iterdir()) else RunKind.FOREIGN
        if self.results.exists() or any(self.checkpoints.glob("*.safetensors")):
            return RunKind.INCOMPLETE
        return RunKind.STARTED

    def refuse_foreign(self) -> None:
        """Refuse a path ckptnas must not write into: not a directory, or someone else's.

        Raises
        ------
        RunDirectoryError
            Naming the path and what to do instead.
        """
        kind = self.kind()
        if kind == RunKind.NOT_A_DIRECTORY:
            raise RunDirectoryError(
                f"run directory {str(self.root)!r} exists and is not a directory"
            )
        if kind == RunKind.FOREIGN:
            raise RunDirectoryError(
                f"{str(self.root)!r} is not empty and holds no ckptnas run (no "
                f"{self.marker.name}); ckptnas writes only into a new or empty directory, "
                "or into its own run: choose another --out"
            )
        if kind == RunKind.INCOMPLETE:
            raise RunDirectoryError(
                f"run directory {str(self.root)!r} has lost its registry ({self.lineage.name}) "
                f"but still holds {self.results.name} or checkpoints; nothing was changed"
            )

    def require_search(self) -> None:
        """Refuse a directory that holds no search's registry.

        Raises
        ------
        RunDirectoryError
            Naming the directory and the missing file.
        """
        if not self.lineage.is_file():
            raise RunDirectoryError(f"{str(self.root)!r} holds no run (no {self.lineage.name})")

    def recorded_config(self) -> Config:
        """The configuration the run was started with.

        The registry's copy is read first (it is written in a transaction, so it is never
        partial); ``config.toml`` is the fallback for a run stopped before its registry was
        described.

        Raises
        ------
        RunDirectoryError
            If the directory holds neither.
        """
        if self.lineage.is_file():
            with LineageRegistry(self.root, readonly=True) as registry:
                text = registry.get_meta("config")
            if text is not None:
                try:
                    return config_from_dict(tomllib.loads(text))
                except (tomllib.TOMLDecodeError, ConfigError) as exc:
                    raise RunDirectoryError(
                        f"{self.lineage} is corrupt: its recorded configuration cannot be "
                        f"read ({exc})"
                    ) from None
        if self.config.is_file():
            return load_config(self.config)
        raise RunDirectoryError(
            f"{str(self.root)!r} holds no recorded run (no {self.lineage.name} or "
            f"{self.config.name}): nothing to resume or train"
        )

    # -- writing ---------------------------------------------------------------------------
    def create(self) -> None:
        """Make the directory (and its parents) and mark it as a ckptnas run.

        The marker is written first, so that a later command knows the directory is a run's
        even when nothing else has been written yet.

        Raises
        ------
        RunDirectoryError
            If it cannot be created or written, or is not ckptnas's to write into.
        """
        self.refuse_foreign()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not self.marker.is_file():
                _atomic.write_text(self.marker, "a ckptnas run directory\n")
        except OSError as exc:
            raise RunDirectoryError(
                f"run directory {str(self.root)!r} is not writable: {exc}"
            ) from None

    def require_writable(self) -> None:
        """Refuse before any change when a file the run must rewrite is read-only.

        Raises
        ------
        RunDirectoryError
            Naming the first such file.
        """
        sidecars = [self.lineage.with_name(self.lineage.name + s) for s in ("-wal", "-shm")]
        for path in (self.root, self.config, self.lineage, *sidecars, self.results):
            if path.exists() and not os.access(path, os.W_OK):
                raise RunDirectoryError(f"{path} is not writable; nothing was changed")

    def write_config(self, config: Config) -> None:
        """Write ``config.toml`` atomically."""
        _atomic.write_text(self.config, config.to_toml())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run, or refuse if another process holds it.

        Raises
        ------
        RunDirectoryError
            If another ckptnas process holds it, or the file system cannot lock.
        """
        with (self.root / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirectoryError(
                    f"run directory {str(self.root)!r} is in use by another ckptnas process"
                ) from None
            except OSError as exc:  # e.g. a parallel file system mounted without flock support
                raise RunDirectoryError(
                    f"cannot lock run directory {str(self.root)!r}: {exc}; "
                    "put it on a file system that supports flock"
                ) from None
            yield
