"""The progress bar of a search: candidates done, best objective, warm-started and failed."""

from __future__ import annotations

import math
import sys

from tqdm.auto import tqdm

from ckptnas.runtime._records import CandidateResult
from ckptnas.storage import CandidateStatus, LineageRegistry


class Progress:
    """The progress bar: candidates done, best objective, warm-started and failed counts."""

    def __init__(self, registry: LineageRegistry, budget: int, enabled: bool) -> None:
        finished = [r for r in registry.candidates() if r.status != CandidateStatus.PENDING]
        ok = [r for r in finished if r.status == CandidateStatus.OK]
        self.best = max((r.objective for r in ok), default=-math.inf)
        self.warm = sum(r.parent is not None for r in finished)
        self.failed = len(finished) - len(ok)
        self.bar = tqdm(
            total=max(budget, len(registry)),
            initial=len(finished),
            desc="candidates",
            unit="cand",
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def update(self, result: CandidateResult) -> None:
        self.warm += result.plan.is_warm
        if result.status == CandidateStatus.OK:
            self.best = max(self.best, result.objective)
        else:
            self.failed += 1
        self.bar.update(1)
        self.bar.set_postfix(best=f"{self.best:.4f}", warm=self.warm, failed=self.failed)

    def close(self) -> None:
        self.bar.close()
