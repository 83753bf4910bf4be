"""The strategy base class: an ask/tell interface that never proposes an architecture twice.

A strategy proposes architectures (:meth:`Strategy.ask`) and learns their objectives
(:meth:`Strategy.tell`, higher is better, NaN for a failed candidate). Unless duplicates are
allowed, it never proposes an architecture it has proposed before in the run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ckptnas.errors import SearchExhaustedError
from ckptnas.space import Architecture, ResolvedSpace, SearchSpace

_MAX_TRIES = 1000


class Strategy(ABC):
    """Base class: seeded proposal of unseen architectures.

    Parameters
    ----------
    space : SearchSpace or ResolvedSpace
    seed : int
    allow_duplicates : bool
        Propose architectures again even if they were proposed before.
    """

    def __init__(
        self, space: SearchSpace | ResolvedSpace, seed: int = 0, allow_duplicates: bool = False
    ) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.allow_duplicates = allow_duplicates
        self.seen: set[Architecture] = set()

    @abstractmethod
    def propose(self) -> Architecture:
        """One architecture, possibly already seen."""

    def ask(self) -> Architecture:
        """The next architecture to train.

        Raises
        ------
        SearchExhaustedError
            If no unseen architecture turns up in many tries.
        """
        for _ in range(_MAX_TRIES):
            arch = self.propose()
            if self.allow_duplicates or arch not in self.seen:
                self.seen.add(arch)
                return arch
        raise SearchExhaustedError(
            f"no unseen architecture found in {_MAX_TRIES} proposals; "
            "the search space may be exhausted (set [experiment] allow_duplicates = true)"
        )

    def tell(self, arch: Architecture, objective: float) -> None:
        """Learn a candidate's objective (NaN when it failed)."""
        self.seen.add(arch)
