"""The run directory: the name of every file of a run, its lock, and what it holds.

Every command that reads or writes a run goes through :class:`RunDir`, so a file's name is
written once (here) and "is there a run in this folder" has one answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from ckptnas.config import Config
from ckptnas.errors import RunDirectoryError
from ckptnas.storage import _atomic
from ckptnas.storage._states import Init

#: A SQLite database and the journals beside it while it is written.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


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

    A run directory is passed between the layers (and to the workers) as this one value: a
    public function takes a ``str`` or ``Path`` and wraps it once.

    Parameters
    ----------
    root : str, Path or RunDir
        The run directory (a ``RunDir`` is taken as it is).

    Examples
    --------
    >>> run = RunDir("runs/quickstart")
    >>> run.lineage
    PosixPath('runs/quickstart/lineage.sqlite')
    >>> run.kind()                                          # doctest: +SKIP
    <RunKind.SEARCH: 'search'>
    """

    root: Path

    #: The registry of the search's candidates.
    LINEAGE: ClassVar[str] = "lineage.sqlite"
    #: The record of the top-K full-training runs.
    TOPK_DB: ClassVar[str] = "topk.sqlite"
    #: The fitted input scaling and target encoding.
    PREPROCESSING: ClassVar[str] = "preprocessing.safetensors"

    def __init__(self, root: str | Path | RunDir) -> None:
        object.__setattr__(self, "root", root.root if isinstance(root, RunDir) else Path(root))

    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

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
        return self.root / self.LINEAGE

    @property
    def results(self) -> Path:
        """``results.nc``: every measurement as an xarray Dataset."""
        return self.root / "results.nc"

    @property
    def preprocessing(self) -> Path:
        """``preprocessing.safetensors``: the fitted input scaling and target encoding."""
        return self.root / self.PREPROCESSING

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: each trained candidate's tensors."""
        return self.root / "checkpoints"

    @property
    def topk_db(self) -> Path:
        """``topk.sqlite``: the record of the top-K full-training runs."""
        return self.root / self.TOPK_DB

    @property
    def topk_results(self) -> Path:
        """``topk.nc``: the full-training curves, times to target and speed-ups."""
        return self.root / "topk.nc"

    def topk_dir(self, init: Init) -> Path:
        """``topk/<init>/``: where full training from one init keeps its checkpoints.

        Runs written by ckptnas 0.1 kept them one folder deeper, in ``topk/<init>/checkpoints/``
        (see :meth:`topk_checkpoints`).
        """
        return self.root / "topk" / str(init)

    def topk_checkpoints(self, init: Init) -> Path:
        """The folder the checkpoints of full training from one init are in.

        :meth:`topk_dir`, unless the run's earlier full training wrote them into
        ``topk/<init>/checkpoints/`` (ckptnas 0.1): a run's weights of one init stay together.
        """
        legacy = self.topk_dir(init) / "checkpoints"
        return legacy if legacy.is_dir() else self.topk_dir(init)

    @property
    def lock_file(self) -> Path:
        """``.lock``: held by the process that writes the run."""
        return self.root / ".lock"

    @property
    def report(self) -> Path:
        """``report.html``: the run's report page, kept up to date while the search runs."""
        return self.root / "report.html"

    @property
    def export(self) -> Path:
        """``export/``: where ``ckptnas export`` writes a candidate by default."""
        return self.root / "export"

    @property
    def figures(self) -> Path:
        """``figures/``: the report's default output folder."""
        return self.root / "figures"

    def resolved(self) -> RunDir:
        """The same run directory as an absolute path, as workers elsewhere must be given it."""
        return RunDir(self.root.resolve())

    def owns(self, path: str | Path) -> bool:
        """Whether ``path`` is one of the run's own files, which only the run may replace.

        The directory itself, every file named above but the outputs ckptnas rewrites on
        request (``report.html``, ``export/``, ``figures/``), the SQLite registries' journals,
        and anything under ``checkpoints/`` or ``topk/``.
        """
        try:
            parts = Path(path).resolve().relative_to(self.root.resolve()).parts
        except ValueError:
            return False
        if not parts or parts[0] in (self.checkpoints.name, "topk"):
            return True
        files = (self.marker, self.config, self.results, self.preprocessing, self.lock_file)
        names = {f.name for f in files} | {self.topk_results.name}
        names |= {db + s for db in (self.LINEAGE, self.TOPK_DB) for s in _SQLITE_SUFFIXES}
        return len(parts) == 1 and parts[0] in names

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
        with self.lock_file.open("a") as handle:
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
