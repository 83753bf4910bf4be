"""The configuration a run was started with: the one way a run's config is read.

Apart from :class:`~ckptnas.storage._rundir.RunDir` because it reads the registry, which
itself names its file through ``RunDir``: here both are below, and neither imports the other.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, overload

from ckptnas.config import Config, config_from_dict
from ckptnas.errors import ConfigError, RunDirectoryError
from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._rundir import RunDir


@overload
def recorded_config(
    run: RunDir, registry: LineageRegistry | None = None, *, missing_ok: Literal[False] = False
) -> Config: ...
@overload
def recorded_config(
    run: RunDir, registry: LineageRegistry | None = None, *, missing_ok: bool
) -> Config | None: ...
def recorded_config(
    run: RunDir, registry: LineageRegistry | None = None, *, missing_ok: bool = False
) -> Config | None:
    """The configuration the run in ``run`` was started with.

    The registry's copy is read first (it is written in a transaction, so it is never
    partial); ``config.toml`` is the fallback for a run stopped before its registry was
    described.

    Parameters
    ----------
    run : RunDir
        The run directory.
    registry : LineageRegistry, optional
        The run's registry, already open (the results writer's); opened read-only if not.
    missing_ok : bool
        Return ``None`` instead of raising when the run recorded no configuration at all.

    Raises
    ------
    RunDirectoryError
        If the recorded configuration cannot be read (naming the file), or the directory
        records none and ``missing_ok`` is false.
    """
    text = _registry_config(run, registry)
    if text is not None:
        return _parsed(text, run.lineage)
    if run.config.is_file():
        try:
            text = run.config.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise RunDirectoryError(f"{run.config} cannot be read ({exc})") from None
        return _parsed(text, run.config)
    if missing_ok:
        return None
    raise RunDirectoryError(
        f"{str(run.root)!r} holds no recorded run (no {run.lineage.name} or "
        f"{run.config.name}): nothing to resume or train"
    )


def _registry_config(run: RunDir, registry: LineageRegistry | None) -> str | None:
    """The configuration text the registry holds, ``None`` when it holds none."""
    if registry is not None:
        return registry.get_meta("config")
    if not run.lineage.is_file():
        return None
    with LineageRegistry(run, readonly=True) as opened:
        return opened.get_meta("config")


def _parsed(text: str, path: Path) -> Config:
    """A recorded configuration's text as a :class:`Config`, or one line naming its file.

    Every key is recorded, so one missing is one the run's version did not have: a run
    recorded before ``[data] test_fraction`` existed held no rows out, and keeps its split.
    """
    try:
        values = tomllib.loads(text)
        values.setdefault("data", {}).setdefault("test_fraction", 0.0)
        return config_from_dict(values)
    except (tomllib.TOMLDecodeError, ConfigError) as exc:
        raise RunDirectoryError(
            f"{path} is corrupt: its recorded configuration cannot be read ({exc})"
        ) from None
