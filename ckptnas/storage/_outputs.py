"""Where ckptnas may write what a user asks for: never over a run's files or its own inputs.

Predictions, exports, lineage graphs, figures and reports go wherever ``--out`` or
``--output`` says. Each of those writers asks :func:`refuse_overwrite` first, so that a
mistyped path cannot replace a run's registry, results or checkpoints (of this run or any
other), or the file the command is reading, and the refusal comes before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ckptnas.errors import DataError, RunDirectoryError
from ckptnas.storage._rundir import RunDir


def refuse_overwrite(path: str | Path, reading: Iterable[str | Path] = ()) -> Path:
    """Refuse an output path that is a file of a run directory or an input being read.

    Parameters
    ----------
    path : str or Path
        The file (or folder) about to be written.
    reading : iterable of str or Path
        The files the command reads from.

    Returns
    -------
    Path
        ``path``, as a ``Path``.

    Raises
    ------
    RunDirectoryError
        If ``path`` is (or lies inside a folder of) a run's own files (see :meth:`RunDir.owns`).
    DataError
        If ``path`` is one of the files in ``reading``.

    Examples
    --------
    >>> refuse_overwrite("runs/quickstart/lineage.sqlite")      # doctest: +SKIP
    Traceback (most recent call last):
    RunDirectoryError: runs/quickstart/lineage.sqlite is a file of the run ...
    """
    path = Path(path)
    for source in reading:
        if _same_file(path, Path(source)):
            raise DataError(
                f"{path} is the input file being read; choose another output path "
                "(nothing was written)"
            )
    resolved = path.resolve()
    for folder in resolved.parents:
        run = RunDir(folder)
        if (run.marker.is_file() or run.lineage.is_file()) and run.owns(resolved):
            raise RunDirectoryError(
                f"{path} is a file of the run in {str(folder)!r}, which ckptnas never writes "
                "over on request; choose another output path (nothing was written)"
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, or the same path spelled twice)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.samefile(b)
    except OSError:  # one of them does not exist: not the same file
        return False
