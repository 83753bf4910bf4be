"""What a run's files hold that its registry does not know: refused before a resume.

A registry that lost its newest rows (its ``-wal`` deleted after a crash, rows removed by hand)
would be resumed as a shorter search: new candidates would take the lost ids and overwrite
their checkpoints and ``results.nc``. Comparing the registry's ids with the candidate ids the
disk holds tells that case before anything is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ckptnas.errors import RunDirectoryError
from ckptnas.storage._rundir import RunDir

logger = logging.getLogger(__name__)

#: A candidate's file in ``checkpoints/``: its weights, a continued version or a training state.
_CHECKPOINT = re.compile(r"^(\d{6,})\.(?:e\d+\.|[0-9a-f]+\.state\.)?safetensors$")


def checkpoint_ids(run: RunDir) -> set[int]:
    """The candidate ids that have a file in the run's ``checkpoints/``."""
    if not run.checkpoints.is_dir():
        return set()
    return {int(m.group(1)) for p in run.checkpoints.iterdir() if (m := _CHECKPOINT.match(p.name))}


def results_ids(run: RunDir) -> set[int]:
    """The candidate ids of the run's ``results.nc`` (none when it is missing or unreadable).

    Only the coordinate is read: a file of 20,000 candidates is not loaded for this.
    """
    if not run.results.is_file():
        return set()
    import netCDF4

    try:
        with netCDF4.Dataset(run.results) as nc:
            return {int(i) for i in nc.variables["candidate"][:]}
    except (OSError, KeyError, ValueError) as exc:  # rewritten from the registry on resume
        logger.warning("%s cannot be read (%s); its candidates are not compared", run.results, exc)
        return set()


def refuse_unknown_candidates(run: RunDir, known: Iterable[int]) -> None:
    """Refuse a run whose files hold candidates its registry does not know.

    Raises
    ------
    RunDirectoryError
        Naming the ids found on disk and missing from the registry, and where they are.
    """
    known = set(known)
    found = {
        "checkpoints": checkpoint_ids(run) - known,
        run.results.name: results_ids(run) - known,
    }
    unknown = sorted(set().union(*found.values()))
    if not unknown:
        return
    where = " and ".join(
        f"{name}/" if name == "checkpoints" else name for name, ids in found.items() if ids
    )
    raise RunDirectoryError(
        f"{run.lineage} does not know candidates {_ranges(unknown)}, which {where} in "
        f"{str(run.root)!r} hold{'s' if ' and ' not in where else ''}: the registry lost "
        "records (a deleted -wal file?); resuming would overwrite them, nothing was changed"
    )


def _ranges(ids: list[int]) -> str:
    """Sorted ids as ``1-3, 7``."""
    spans: list[list[int]] = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
