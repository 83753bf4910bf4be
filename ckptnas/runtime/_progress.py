"""The progress bar of a search: candidates done, best objective, warm-started and failed."""

from __future__ import annotations

import contextlib
import logging
import math
import sys

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

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

    def routing_logs(self) -> contextlib.AbstractContextManager[None]:
        """While the bar is shown, write terminal log lines above it instead of through it."""
        if self.bar.disable:
            return contextlib.nullcontext()
        loggers = [
            logger
            for logger in (logging.getLogger(), logging.getLogger("ckptnas"))
            if any(_is_terminal(h) for h in logger.handlers)
        ]
        return logging_redirect_tqdm(loggers) if loggers else contextlib.nullcontext()

    def close(self) -> None:
        self.bar.close()


def _is_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.stderr)
