"""The identity index: which trained candidate shares the most parameters with a new one.

For the ``aligned`` policy. Every trained candidate's layers are filed under their identities
(a posting list per identity). A look-up walks the new architecture's layers and adds each
layer's parameter count to every candidate filed under its identity, so it only touches
candidates that share at least one layer with the new one, never the whole run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from ckptnas.space import LayerLike


class IdentityIndex:
    """Trained candidates by the identities of their layers.

    Examples
    --------
    >>> from ckptnas.space import Layer
    >>> index = IdentityIndex()
    >>> index.add(0, [Layer("a", "id-a", ("a.weight",), 10)], 0.5)
    >>> index.add(1, [Layer("a", "id-a", ("a.weight",), 10), Layer("b", "id-b", (), 5)], 0.1)
    >>> index.best_donor([Layer("x", "id-a", (), 10), Layer("y", "id-b", (), 5)])
    (1, 15)
    """

    def __init__(self) -> None:
        self._postings: defaultdict[str, set[int]] = defaultdict(set)
        self._identities: dict[int, tuple[str, ...]] = {}
        self._objective: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._identities)

    def __contains__(self, candidate_id: object) -> bool:
        return candidate_id in self._identities

    def add(self, candidate_id: int, layers: Sequence[LayerLike], objective: float) -> None:
        """File a trained candidate under its layers' identities (a NaN objective is ignored)."""
        if not math.isfinite(objective) or candidate_id in self._identities:
            return
        identities = tuple(layer.identity for layer in layers)
        self._identities[candidate_id] = identities
        self._objective[candidate_id] = objective
        for identity in identities:
            self._postings[identity].add(candidate_id)

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again."""
        for identity in self._identities.pop(candidate_id, ()):
            posting = self._postings[identity]
            posting.discard(candidate_id)
            if not posting:
                del self._postings[identity]
        self._objective.pop(candidate_id, None)

    def best_donor(self, layers: Sequence[LayerLike]) -> tuple[int, int] | None:
        """The candidate sharing the most parameters with these layers, and how many.

        Ties go to the higher objective, then to the earlier candidate. ``None`` when no
        candidate shares a layer.
        """
        shared: defaultdict[int, int] = defaultdict(int)
        for layer in layers:
            for candidate in self._postings.get(layer.identity, ()):
                shared[candidate] += layer.n_params
        if not shared:
            return None
        best = max(shared, key=lambda c: (shared[c], self._objective[c], -c))
        return best, shared[best]
