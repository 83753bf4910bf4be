"""Random search: every architecture drawn uniformly."""

from __future__ import annotations

from ckptnas.search._base import Strategy
from ckptnas.space import Architecture


class RandomSearch(Strategy):
    """Every architecture drawn uniformly, one choice per node."""

    def propose(self) -> Architecture:
        return self.space.sample(self.rng)
