"""``[transfer]``: how a new candidate inherits weights.

``policy`` names an entry of the transfer policies' registry (:mod:`ckptnas.search`);
``donor_runs`` names finished searches whose trained candidates are donors too, and
``seed_population`` whether their best architectures seed the first population.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ckptnas.config._fields import option, registered


@dataclass(frozen=True)
class TransferConfig:
    """``[transfer]``: how a new candidate inherits weights."""

    policy: str = registered("policy", "lcp")
    # Off by default: measured here (docs/results.md), trainable transferred layers keep
    # improving down a lineage, while frozen ones (the published setting) stay as good as the
    # donor's short training left them.
    freeze: bool = option(False)
    # On by default: with freeze, the quickstart's 50 candidates took 3.5 MB of checkpoints
    # instead of 10.3 MB (experiments/dedup_frozen.py). A frozen child's save took 5.0-6.3 ms
    # (median) against 4.8-5.0 ms storing every tensor, most of either the fsync.
    dedup: bool = option(True)
    # Empty by default: a search starts from nothing unless told which earlier runs to reuse.
    donor_runs: list[str] = option(
        [],
        lambda xs: all(isinstance(x, str) and x for x in xs),
        "paths of finished search run directories",
    )
    # On by default: with a different seed than the donor run, a first population drawn at
    # random shared few layers with its donors (6 of 10 warm-started, 8% of parameters
    # transferred); seeded with their best architectures, every one is warm-started.
    seed_population: bool = option(True)

    def resolved(self, folder: Path) -> TransferConfig:
        """The table with relative ``donor_runs`` taken from ``folder`` (the config file's)."""
        runs = [str((folder / run).resolve()) for run in self.donor_runs]
        return dataclasses.replace(self, donor_runs=runs) if runs != self.donor_runs else self
