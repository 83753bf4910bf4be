"""How much disk a run's checkpoints take, and how much sharing frozen tensors saved.

Read from file sizes and checkpoint headers only (no tensor, no torch), so ``ckptnas summary``
reports it on a login node. A file hard-linked under several names (a checkpoint and its blob)
is counted once, as ``du`` counts it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ckptnas.storage._blobs import checkpoint_files
from ckptnas.storage._header import read_header
from ckptnas.storage._rundir import RunDir


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
    seen: set[tuple[int, int]] = set()
    on_disk = 0
    for folder, _, names in os.walk(root):  # Path.walk is Python 3.12's
        for name in names:
            st = (Path(folder) / name).lstat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                on_disk += st.st_size
    files = checkpoint_files(root)
    shared = 0
    for path in files:
        try:
            shared += sum(s.nbytes for s in read_header(path).shared.values())
        except (OSError, ValueError):  # a damaged file shares nothing that can be counted
            continue
    return CheckpointUsage(len(files), on_disk, shared)
