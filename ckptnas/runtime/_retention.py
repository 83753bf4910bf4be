"""Which checkpoints a run keeps (``[storage]``): decided in memory, as candidates finish.

Every set and heap here is updated by the event that changes it (a candidate finishing, one
leaving the donor pool or the top), so a batch of results costs the same at the 100,000th
candidate as at the first: nothing scans every candidate. Deleting, recording and the bytes on
disk are :class:`~ckptnas.runtime._checkpoint_budget.CheckpointBudget`'s.

With ``keep = "useful"``, a checkpoint is kept while any of these may still need it:

- the *donor pool*: the last ``[search] population_size`` candidates to finish with a finite
  objective. The planner picks a donor among every candidate it was given, so with all of them
  possible donors no checkpoint could ever go: under ``keep = "useful"`` it is given the donor
  pool (and the rest kept below) only, and a candidate that leaves them is discarded from it at
  once. The pool is regularized evolution's population, from which every parent is drawn: a
  mutated child's parent, the candidate most like it, stays a possible donor. Other strategies
  get the same recent window;
- the ``keep_top`` best by objective, ties to the earlier one: what ``train-topk`` (``-k``
  as large) trains, from these checkpoints with ``--init checkpoint``;
- those the scheduler could still continue from their own checkpoint. Conservatively, every
  candidate trained fewer than the scheduler's longest training and not stopped by it: ASHA
  may promote any candidate of a rung as results come in;
- those a task in flight reads (a pending child's donor, a continuation): *pinned*, and
  deleted once that task is back, if nothing else keeps them.

``max_bytes`` evicts the worst candidates by objective first (ties: the earlier), never a
pinned one, one of the best ``keep_top`` or one the scheduler could continue.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Collection


class RetentionPolicy:
    """The checkpoints a run keeps and why, updated one event at a time.

    Parameters
    ----------
    useful : bool
        ``keep = "useful"``: delete checkpoints that nothing can use any more.
    keep_top : int
        How many of the best candidates are always kept.
    pool_size : int
        How many of the candidates that finished last form the donor pool.
    """

    def __init__(self, useful: bool, keep_top: int, pool_size: int) -> None:
        self.useful = useful
        self.keep_top = keep_top
        self.pool_size = pool_size
        #: Candidates whose checkpoint is on disk, to their objective (-inf: not finite).
        self.objective: dict[int, float] = {}
        #: Those the scheduler could still continue.
        self.continuable: set[int] = set()
        #: The donor pool, oldest first.
        self.recent: deque[int] = deque()
        self._in_recent: set[int] = set()
        #: The best ``keep_top`` of those kept.
        self.top: set[int] = set()
        # Lazy heaps: an entry whose candidate moved, changed objective or went is skipped.
        self._top_heap: list[tuple[float, int]] = []  # (objective, -id): the worst of the top
        self._rest_heap: list[tuple[float, int]] = []  # (-objective, id): the best of the rest
        self._evict_heap: list[tuple[float, int]] = []  # (objective, id): the worst first
        #: Candidates whose usefulness may have changed since the last review.
        self._changed: list[int] = []
        #: Not useful any more, out of the donor pool, waiting for the tasks that read them.
        self.doomed: set[int] = set()

    # -- events ----------------------------------------------------------------------------
    def finished(self, candidate_id: int, objective: float, continuable: bool, new: bool) -> None:
        """A candidate trained successfully: a new one (``new``), or one continued."""
        value = objective if math.isfinite(objective) else -math.inf
        self.objective[candidate_id] = value
        if continuable:
            self.continuable.add(candidate_id)
        else:  # the scheduler is done with it: it may be evicted from now on
            self.continuable.discard(candidate_id)
            heapq.heappush(self._evict_heap, (value, candidate_id))
        if new and math.isfinite(objective):
            self.entered_pool(candidate_id)
        self._rank(candidate_id, value)
        self._changed.append(candidate_id)

    def entered_pool(self, candidate_id: int) -> None:
        """A candidate joins the donor pool; the oldest member leaves once it is full."""
        self.recent.append(candidate_id)
        self._in_recent.add(candidate_id)
        while len(self.recent) > self.pool_size:
            old = self.recent.popleft()
            self._in_recent.discard(old)
            self._changed.append(old)

    def forget(self, candidate_id: int) -> None:
        """A candidate's checkpoint is deleted (it stays in the pool's count of recent ones)."""
        self.objective.pop(candidate_id, None)
        self.continuable.discard(candidate_id)
        self.top.discard(candidate_id)
        self.doomed.discard(candidate_id)
        self._rebalance()

    # -- decisions -------------------------------------------------------------------------
    def useful_now(self, candidate_id: int) -> bool:
        """Whether the donor pool, the top or the scheduler may still need the checkpoint."""
        return (
            candidate_id in self._in_recent
            or candidate_id in self.top
            or candidate_id in self.continuable
        )

    def review(self) -> list[int]:
        """With ``keep = "useful"``: candidates that became useless since the last review.

        Each is named once: it leaves the donor pool now, and its checkpoint goes once no task
        reads it (:meth:`ready`). Nothing brings it back: only a continuation changes an
        objective, and a candidate that cannot be continued is never continued.
        """
        changed, self._changed = self._changed, []
        if not self.useful:
            return []
        out = []
        for cid in changed:
            if cid in self.objective and cid not in self.doomed and not self.useful_now(cid):
                self.doomed.add(cid)
                out.append(cid)
        return out

    def ready(self, pins: Collection[int]) -> list[int]:
        """The useless candidates no task in flight reads: to delete now, in id order."""
        return sorted(cid for cid in self.doomed if cid not in pins)

    def victim(self, pins: Collection[int]) -> int | None:
        """The candidate ``max_bytes`` evicts next: the worst one nothing pins, if any."""
        skipped = []
        found = None
        while self._evict_heap:
            value, cid = heapq.heappop(self._evict_heap)
            if self.objective.get(cid) != value or cid in self.continuable:
                continue  # gone, changed since (a newer entry exists), or continuable again
            if cid in self.top or cid in pins:
                skipped.append((value, cid))
                continue
            found = cid
            break
        for entry in skipped:
            heapq.heappush(self._evict_heap, entry)
        return found

    # -- the best keep_top -----------------------------------------------------------------
    def _rank(self, candidate_id: int, value: float) -> None:
        """Place a candidate whose objective is new among the best or the rest."""
        self.top.discard(candidate_id)  # its entry in the top's heap is stale now
        if math.isfinite(value):  # train-topk ranks only finite objectives
            heapq.heappush(self._rest_heap, (-value, candidate_id))
        self._rebalance()

    def _rebalance(self) -> None:
        """Keep :attr:`top` the best ``keep_top`` of the candidates kept."""
        while (best := self._peek_rest()) is not None:
            value, cid = -best[0], best[1]
            worst = self._peek_top() if len(self.top) >= self.keep_top else None
            if worst is not None and (value, -cid) <= worst:
                return
            heapq.heappop(self._rest_heap)
            if worst is not None:  # the best of the rest takes the place of the worst
                heapq.heappop(self._top_heap)
                self.top.discard(-worst[1])
                heapq.heappush(self._rest_heap, (-worst[0], -worst[1]))
                self._changed.append(-worst[1])
            self.top.add(cid)
            heapq.heappush(self._top_heap, (value, -cid))

    def _peek_rest(self) -> tuple[float, int] | None:
        heap = self._rest_heap
        while heap and (heap[0][1] in self.top or self.objective.get(heap[0][1]) != -heap[0][0]):
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _peek_top(self) -> tuple[float, int] | None:
        heap = self._top_heap
        while heap and (
            -heap[0][1] not in self.top or self.objective.get(-heap[0][1]) != heap[0][0]
        ):
            heapq.heappop(heap)
        return heap[0] if heap else None
