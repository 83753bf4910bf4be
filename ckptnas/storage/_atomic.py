"""Writing a file so that readers see the old file or the whole new one, never a part of it."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` that is renamed onto it when the block succeeds.

    The rename is atomic on POSIX file systems (also on shared ones such as NFS and Lustre
    within one directory). If the block raises, the temporary file is removed and ``path`` is
    left as it was.

    Parameters
    ----------
    path : Path
        The file to write.
    fsync : bool
        Flush the new file to disk before the rename, so that a power cut cannot leave an empty
        file under the final name (checkpoints; rewritable summaries skip it).

    Examples
    --------
    >>> with replacing(tmp_path / "notes.txt") as tmp:     # doctest: +SKIP
    ...     tmp.write_text("done")
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        # What an ordinary open() would have given the file: safetensors creates its files
        # 0600, which keeps colleagues on a shared file system from reading a run.
        tmp.chmod(0o666 & ~umask())
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def refused_write(path: Path, tmp: Path, detail: str) -> OSError:
    """What refused a write to ``tmp``, as the :class:`OSError` the system gives, for ``path``.

    A library that reports a failed write without its cause (the netCDF library says "NetCDF:
    HDF error" whether the disk is full, over a quota or a file-size limit) leaves the cause to
    be found by writing a little more to the same file; ``detail`` is its own message, kept for
    a write that then succeeds.
    """
    try:
        with tmp.open("ab") as probe:
            probe.write(bytes(1 << 20))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as cause:
        return OSError(cause.errno, cause.strerror, str(path))
    return OSError(errno.EIO, f"the write failed ({detail})", str(path))


def write_text(path: Path, text: str) -> None:
    """Replace a text file atomically (see :func:`replacing`)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it to read it).

    Linux reports it in ``/proc/self/status``; elsewhere it is set and restored at once.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current
