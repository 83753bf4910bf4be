"""The registry's rows as ``results.nc`` is built from them, read again only where they changed.

A search writes ``results.nc`` many times. Reading every candidate back from SQLite for each
write cost 0.7 s at 20,000 candidates (the registry's rows turned into records), growing with
the run; :class:`ResultsRows` reads everything once, then only the candidates the registry's
writer changed since (:meth:`~ckptnas.storage.LineageRegistry.changes`), and describes each
architecture once.
"""

from __future__ import annotations

from collections.abc import Callable

from ckptnas.config import Config
from ckptnas.errors import RunDirectoryError
from ckptnas.space import Architecture, space_from_dict
from ckptnas.storage._lineage import LineageRegistry
from ckptnas.storage._records import CandidateRecord
from ckptnas.storage._run_config import recorded_config
from ckptnas.storage._sqlite import Curve
from ckptnas.storage._states import CandidateStatus


class ResultsRows:
    """What ``results.nc`` holds, kept in step with a registry.

    Parameters
    ----------
    registry : LineageRegistry
        Read whole at the first :meth:`refresh`; after that, only what was written through
        this object changed is read again.
    """

    def __init__(self, registry: LineageRegistry) -> None:
        self.registry = registry
        self.records: dict[int, CandidateRecord] = {}
        self.curves: dict[int, list[Curve]] = {}
        self.described: dict[int, str] = {}
        self._position: int | None = None
        self._describe: Callable[[Architecture], str] | None = None
        # A registry made by hand (or a run stopped before it wrote config.toml) records no
        # configuration: it is read with the defaults, no scheduler and one objective.
        self.config = recorded_config(registry.run_dir, registry, missing_ok=True) or Config()

    def refresh(self) -> ResultsRows:
        """Read what changed since the last refresh (everything, the first time)."""
        if self._position is None:
            _, self._position = self.registry.changes()
            records = self.registry.candidates()
            self.curves = self.registry.curves()
        else:
            changed, self._position = self.registry.changes(self._position)
            records = self.registry.candidates_of(changed)
            curves = self.registry.curves_of(changed)
            for cid in changed:
                self.curves[cid] = curves.get(cid, [])
        for record in records:
            old = self.records.get(record.id)
            if old is None or old.arch != record.arch:
                self.described[record.id] = self._description(record.arch)
            self.records[record.id] = record
        return self

    def finished(self) -> list[CandidateRecord]:
        """The finished candidates (failed ones included), in id order."""
        return [
            self.records[cid]
            for cid in sorted(self.records)
            if self.records[cid].status != CandidateStatus.PENDING
        ]

    def _description(self, arch: Architecture) -> str:
        if self._describe is None:
            self._describe = describer(self.registry)
        return self._describe(arch)


def describer(registry: LineageRegistry, trust_code: bool = False) -> Callable[[Architecture], str]:
    """Each architecture in words, as the run's recorded search space describes it.

    Parameters
    ----------
    registry : LineageRegistry
    trust_code : bool
        Unpickle a space the run recorded as Python code (any space a user passed in), which
        runs that code. Without it, or where that code does not import here, architectures
        read as their tuples of choices; a run that recorded no space reads as empty text.
    """
    try:
        recorded = registry.recorded_space()
    except RunDirectoryError:  # stopped before it recorded its space: nothing to say
        return lambda arch: ""
    try:
        space = space_from_dict(recorded, trust_code)
    except Exception:  # a user's space not trusted, or whose code is not importable here
        return str
    return space.describe
