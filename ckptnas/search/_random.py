"""Random search: every architecture and hyperparameter drawn uniformly."""

from __future__ import annotations

from ckptnas.search._base import Strategy, Suggestion
from ckptnas.storage import SearchStage


class RandomSearch(Strategy):
    """Every architecture drawn uniformly, one choice per node; hyperparameters likewise.

    A seeded search (:meth:`~ckptnas.search.Strategy.seed_population`) proposes its seeds first.
    """

    def propose(self) -> Suggestion:
        return Suggestion.of(
            self.space.sample(self.rng), self.sample_hyperparameters(), stage=SearchStage.RANDOM
        )
