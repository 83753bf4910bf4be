"""The run directory's own files: its lock and its configuration, never left half-written."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

from ckptnas.config import Config, config_from_dict, load_config
from ckptnas.errors import RunDirectoryError
from ckptnas.lineage import LineageRegistry

CONFIG_FILE = "config.toml"


def write_atomically(path: Path, text: str) -> None:
    """Write a text file so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run directory, or refuse if another process holds it."""
    path = run_dir / ".lock"
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"run directory {str(run_dir)!r} is in use by another ckptnas process"
            ) from None
        except OSError as exc:  # e.g. a parallel file system mounted without flock support
            raise RunDirectoryError(
                f"cannot lock run directory {str(run_dir)!r}: {exc}; "
                "put it on a file system that supports flock"
            ) from None
        yield


def recorded_config(run_dir: str | Path) -> Config:
    """The configuration a run was started with.

    The registry's copy is read first (it is written in a transaction, so it is never partial);
    ``config.toml`` is the fallback for a run stopped before its registry was described.

    Raises
    ------
    RunDirectoryError
        If the directory holds neither.
    """
    run_dir = Path(run_dir)
    if (run_dir / "lineage.sqlite").is_file():
        with LineageRegistry(run_dir, readonly=True) as registry:
            text = registry.get_meta("config")
        if text is not None:
            return config_from_dict(tomllib.loads(text))
    if (run_dir / CONFIG_FILE).is_file():
        return load_config(run_dir / CONFIG_FILE)
    raise RunDirectoryError(
        f"{str(run_dir)!r} holds no recorded run (no lineage.sqlite or config.toml): "
        "nothing to resume or train"
    )
