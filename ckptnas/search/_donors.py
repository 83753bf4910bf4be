"""The donor index: which trained candidate a new one inherits from.

The client keeps one :class:`DonorIndex` per run. It is rebuilt from the registry's records
when a run starts or resumes, grows as candidates finish, and forgets a candidate whose
checkpoint turned out to be unusable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

from ckptnas.search._prefix_tree import PrefixTree
from ckptnas.space import Architecture


class DonorCandidate(Protocol):
    """What the index needs of a recorded candidate (a registry's ``CandidateRecord``)."""

    @property
    def id(self) -> int: ...
    @property
    def arch(self) -> Architecture: ...
    @property
    def objective(self) -> float: ...
    @property
    def donor_usable(self) -> bool: ...


class DonorIndex:
    """Trained candidates that may serve as donors, searchable by longest common prefix.

    Look-ups take time independent of the number of candidates (a prefix tree, see
    :class:`~ckptnas.search.PrefixTree`).

    Examples
    --------
    >>> index = DonorIndex()
    >>> index.add(0, (1, 2, 3), 0.5)
    >>> index.add(1, (1, 2, 4), 0.9)
    >>> index.best_donor((1, 2, 9))
    (1, (1, 2, 4), 2)
    """

    def __init__(self) -> None:
        self._tree = PrefixTree()

    @classmethod
    def from_records(cls, records: Iterable[DonorCandidate]) -> DonorIndex:
        """The index of a run's successfully trained candidates, those marked unusable left out."""
        index = cls()
        for record in records:
            if record.donor_usable:
                index.add(record.id, record.arch, record.objective)
        return index

    def __len__(self) -> int:
        return len(self._tree)

    def __contains__(self, candidate_id: object) -> bool:
        return candidate_id in self._tree

    def add(self, candidate_id: int, arch: Sequence[int], objective: float) -> None:
        """Offer a trained candidate as a donor; one without a finite objective is ignored."""
        if math.isfinite(objective):
            self._tree.insert(tuple(arch), candidate_id, objective)

    def discard(self, candidate_id: int) -> None:
        """Never offer this candidate again (its checkpoint is broken, say)."""
        if candidate_id in self._tree:
            self._tree.remove(candidate_id)

    def best_donor(self, arch: Sequence[int]) -> tuple[int, Architecture, int] | None:
        """The donor sharing the longest prefix with ``arch``.

        Ties go to the higher objective, then to the earlier candidate.

        Returns
        -------
        (donor id, donor architecture, prefix length), or None when the index is empty.
        """
        match = self._tree.best_match(tuple(arch))
        if match is None:
            return None
        donor, length = match
        return donor, self._tree.arch_of(donor), length
