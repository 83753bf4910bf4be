"""What the HTML report shows, read from a run's registry at one moment: :class:`RunSnapshot`.

The report reads the registry rather than ``results.nc``: the registry is never behind it, it
holds the candidates still in flight (which a live page shows), and reading it needs no xarray.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ckptnas.analysis._held_out import held_out_facts
from ckptnas.analysis._lineage_stats import Lineage
from ckptnas.analysis._stages import Stage, stages
from ckptnas.analysis._summary import RunSummary
from ckptnas.config import Config
from ckptnas.storage import (
    CandidateRecord,
    CandidateStatus,
    LineageRegistry,
    describer,
    recorded_config,
)

#: One epoch of a candidate: ``(train_loss, val_loss, val_metric, epoch_time)``.
Curve = tuple[float, float, float, float]


@dataclass(frozen=True)
class RunSnapshot:
    """A run as its registry holds it at one moment.

    Attributes
    ----------
    name : str
        The run directory's name.
    lineage : Lineage
        Every candidate, pending ones included, and who inherited from whom.
    curves : dict
        Candidate id to its per-epoch ``(train_loss, val_loss, val_metric, epoch_time)``.
    described : dict
        Candidate id to its architecture in words.
    meta : dict
        The run's recorded values (``dataset``, ``metric``, ``policy``, ``freeze``, ``seed``,
        ``config``).
    config : Config or None
        The recorded configuration; ``None`` for a registry that records none.
    headline : dict
        :meth:`RunSummary.headline` of the finished candidates.
    taken_at : float
        When the registry was read (Unix seconds).
    held_out : list of (str, str)
        The held-out test split and the test scores of full training (see
        :func:`~ckptnas.analysis.held_out_facts`).
    counts : dict
        Candidates of the whole run with each status.
    shown : int or None
        ``None`` when the snapshot holds every candidate; else how many it holds of the run's
        (see ``limit`` in :meth:`read`).
    """

    name: str
    lineage: Lineage
    curves: dict[int, list[Curve]]
    described: dict[int, str]
    meta: dict[str, str]
    config: Config | None
    headline: dict[str, float]
    taken_at: float
    held_out: list[tuple[str, str]]
    counts: dict[CandidateStatus, int]
    shown: int | None = None

    @classmethod
    def read(
        cls,
        registry: LineageRegistry,
        name: str = "",
        trust_code: bool = False,
        limit: int | None = None,
    ) -> RunSnapshot:
        """Everything the report shows, from an open registry.

        Parameters
        ----------
        registry : LineageRegistry
        name : str
            The run's name; its directory's by default.
        trust_code : bool
            Describe architectures of a space the run recorded as Python code (pickled: any
            space but the layered dense one) in words, which unpickles and so runs that code.
            Without it, such architectures show as their tuples of choices.
        limit : int, optional
            Hold at most this many candidates: the best twentieth of them and the latest
            others. The run's counts stay whole; lineage, curves and headline numbers are then
            those of the candidates held (a parent left out makes its child a root). Without
            it, every candidate, which takes time and memory in proportion to the run.
        """
        meta = {
            key: registry.get_meta(key) or ""
            for key in ("config", "dataset", "task", "metric", "policy", "freeze", "seed")
        }
        counts = registry.status_counts()
        shown = None
        if limit is not None and sum(counts.values()) > limit:
            best = registry.best(max(1, limit // 20))
            latest = registry.latest(limit - len(best))
            records = {r.id: r for r in [*best, *latest]}
            lineage = Lineage.of_registry(registry, records.values())
            curves = registry.curves_of(records)
            summary = RunSummary.from_records(lineage.records.values(), curves)
            shown = len(records)
        else:
            lineage = Lineage.from_registry(registry)
            curves = registry.curves()
            summary = RunSummary.from_registry(registry)
        config = recorded_config(registry.run_dir, registry, missing_ok=True)
        return cls(
            name=name or registry.run_dir.root.name,
            lineage=lineage,
            curves=curves,
            described=_described(registry, lineage.records.values(), trust_code),
            meta=meta,
            config=config,
            headline=summary.headline(),
            taken_at=time.time(),
            held_out=held_out_facts(registry.run_dir, config, meta["metric"] or "metric"),
            counts=counts,
            shown=shown,
        )

    @property
    def records(self) -> list[CandidateRecord]:
        """Every candidate's record, in id order."""
        return list(self.lineage.records.values())

    @property
    def page_key(self) -> str:
        """What the report page names its state in the browser's session storage after."""
        return f"ckptnas:{self.name}"

    @property
    def metric(self) -> str:
        """The validation metric's name (``r2``, ``accuracy``)."""
        return self.meta["metric"] or "metric"

    @property
    def budget(self) -> int:
        """Candidates the search is to register in all (``[experiment] max_candidates``)."""
        recorded = self.total
        return max(recorded, self.config.experiment.max_candidates if self.config else recorded)

    @property
    def start(self) -> float:
        """The first submission or start (Unix seconds): time zero of the report's time axes.

        Starts count too: they are stamped by the workers' clocks, which may run a little
        behind the client's.
        """
        times = [t for r in self.records for t in (r.submit_time, r.start_time) if math.isfinite(t)]
        return min(times, default=self.taken_at)

    @property
    def total(self) -> int:
        """Candidates the run has registered, held here or not."""
        return sum(self.counts.values())

    def count(self, status: CandidateStatus) -> int:
        """Candidates of the whole run with this status."""
        return self.counts[status]

    def stages(self) -> list[Stage]:
        """The finished candidates in stages of the search, to compare like with like.

        See :func:`~ckptnas.analysis._stages.stages`: what the strategy drew at random first,
        then what it proposed from the scores it had seen.
        """
        return stages(self.records, self.config)


def _described(
    registry: LineageRegistry, records: Iterable[CandidateRecord], trust_code: bool
) -> dict[int, str]:
    """Each candidate's architecture in words, as the run's search space describes it."""
    describe = describer(registry, trust_code)
    return {r.id: describe(r.arch) for r in records}
