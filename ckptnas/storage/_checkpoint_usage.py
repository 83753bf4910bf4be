"""How much disk a run's checkpoints take, what sharing frozen tensors saved, what deleting freed.

Read from file sizes, checkpoint headers and the registry only (no tensor, no torch), so
``ckptnas summary`` reports it on a login node. A file hard-linked under several names (a
checkpoint and its blob) is counted once, as ``du`` counts it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ckptnas.storage._blobs import checkpoint_files
from ckptnas.storage._header import read_header
from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._states import Deletion

#: The registry's meta row of the bytes that deleting checkpoints (``[storage]``) freed.
RECLAIMED_KEY = "checkpoint_bytes_reclaimed"


@dataclass(frozen=True)
class CheckpointUsage:
    """A run's checkpoints on disk.

    Attributes
    ----------
    n_checkpoints : int
        Checkpoint files, continued versions included (training states and blobs are not).
    bytes_on_disk : int
        Every file under ``checkpoints/``, blobs and training states included, each file once.
    bytes_shared : int
        Tensor bytes that checkpoints refer to in blobs instead of holding: what they would
        have added to ``bytes_on_disk`` had every checkpoint held all its tensors.
    """

    n_checkpoints: int
    bytes_on_disk: int
    bytes_shared: int

    @property
    def bytes_without_sharing(self) -> int:
        """What the checkpoints would take if each held all its tensors."""
        return self.bytes_on_disk + self.bytes_shared

    @property
    def fraction_saved(self) -> float:
        """Share of :attr:`bytes_without_sharing` that sharing saved (NaN without files)."""
        total = self.bytes_without_sharing
        return self.bytes_shared / total if total else math.nan

    def describe(self) -> str:
        """One line: disk use, and what storing frozen tensors once saved (when it did).

        Examples
        --------
        >>> CheckpointUsage(50, 5_430_416, 4_729_024).describe()[:52]
        'checkpoints: 5.4 MB on disk (50 files), 4.7 MB saved'
        """
        line = f"checkpoints: {_size(self.bytes_on_disk)} on disk ({self.n_checkpoints} files)"
        if self.bytes_shared:
            line += (
                f", {_size(self.bytes_shared)} saved by storing frozen tensors once "
                f"({self.fraction_saved:.0%} of {_size(self.bytes_without_sharing)})"
            )
        return line


@dataclass(frozen=True)
class Reclaimed:
    """What a run's ``[storage]`` policy deleted, and the disk its checkpoints take now.

    Attributes
    ----------
    bytes_kept : int
        The checkpoints still on disk (:attr:`CheckpointUsage.bytes_on_disk`).
    bytes_reclaimed : int
        What deleting checkpoints freed, blobs no kept checkpoint referred to included.
    by_keep, by_max_bytes : int
        Candidates whose checkpoint ``keep = "useful"`` deleted, and ``max_bytes``.
    """

    bytes_kept: int
    bytes_reclaimed: int
    by_keep: int
    by_max_bytes: int

    @classmethod
    def of(cls, registry: LineageRegistry, bytes_kept: int) -> Reclaimed:
        """What an open registry records of the deletions, beside the disk use now."""
        counts = registry.deletions()
        freed = int(registry.get_meta(RECLAIMED_KEY) or 0)
        return cls(
            bytes_kept, freed, counts.get(Deletion.USEFUL, 0), counts.get(Deletion.MAX_BYTES, 0)
        )

    def describe(self) -> str:
        """One line: what is kept, what was reclaimed, and how many checkpoints went why.

        Examples
        --------
        >>> Reclaimed(12_300_000, 98_100_000, 840, 0).describe()
        'checkpoints: 12.3 MB kept, 98.1 MB reclaimed (840 deleted by [storage] keep)'
        """
        why = [f"{self.by_keep} deleted by [storage] keep"] if self.by_keep else []
        if self.by_max_bytes:
            words = "by max_bytes" if why else "deleted by [storage] max_bytes"
            why.append(f"{self.by_max_bytes} {words}")
        return (
            f"checkpoints: {_size(self.bytes_kept)} kept, {_size(self.bytes_reclaimed)} "
            f"reclaimed ({', '.join(why) or 'none deleted'})"
        )


def reclaimed(run_dir: str | Path | RunDir, bytes_kept: int) -> Reclaimed | None:
    """What the run's ``[storage]`` policy deleted; ``None`` when it deleted nothing.

    Parameters
    ----------
    run_dir : str, Path or RunDir
    bytes_kept : int
        The checkpoints' disk use now (:func:`checkpoint_usage`), reported beside it.
    """
    files = RunDir(run_dir)
    if not files.lineage.is_file():
        return None
    with LineageRegistry(files, readonly=True) as registry:
        found = Reclaimed.of(registry, bytes_kept)
    return found if found.by_keep or found.by_max_bytes else None


def _size(n: int) -> str:
    """Bytes in SI units, as ``du --si`` prints them: 940 B, 12.3 kB, 5.4 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def checkpoint_usage(run_dir: str | Path | RunDir) -> CheckpointUsage:
    """Measure a run's ``checkpoints/`` folder.

    Parameters
    ----------
    run_dir : str, Path or RunDir
        The run directory.

    Returns
    -------
    CheckpointUsage
        All zero when the run has no checkpoints yet.

    Examples
    --------
    >>> usage = checkpoint_usage("runs/quickstart")        # doctest: +SKIP
    >>> usage.bytes_on_disk, usage.bytes_shared             # doctest: +SKIP
    (5651912, 5247552)
    """
    root = RunDir(run_dir).checkpoints
    if not root.is_dir():
        return CheckpointUsage(0, 0, 0)
    on_disk = checkpoint_bytes(run_dir)
    files = checkpoint_files(root)
    shared = 0
    for path in files:
        try:
            shared += sum(s.nbytes for s in read_header(path).shared.values())
        except (OSError, ValueError):  # a damaged file shares nothing that can be counted
            continue
    return CheckpointUsage(len(files), on_disk, shared)


def checkpoint_bytes(run_dir: str | Path | RunDir) -> int:
    """:attr:`CheckpointUsage.bytes_on_disk` alone: file sizes only, no header is read."""
    root = RunDir(run_dir).checkpoints
    seen: set[tuple[int, int]] = set()
    on_disk = 0
    for folder, _, names in os.walk(root):  # Path.walk is Python 3.12's
        for name in names:
            try:
                st = (Path(folder) / name).lstat()
            except FileNotFoundError:  # a temporary file renamed, or a checkpoint deleted
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                on_disk += st.st_size
    return on_disk
