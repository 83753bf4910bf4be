"""``[transfer]``: how a new candidate inherits weights.

``policy`` names an entry of the transfer policies' registry (:mod:`ckptnas.search`).
"""

from __future__ import annotations

from dataclasses import dataclass

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
