"""A prefix tree over architectures for donor look-up in time independent of the run's size.

Each node keeps the best entry of its subtree, so the donor sharing the longest prefix with a
query (ties to the higher objective, then the lower id) is found by walking the query's path:
``O(len(arch) + bucket)`` whatever the number of candidates. Small subtrees stay as flat
buckets until they exceed :data:`BUCKET`, which keeps memory near one entry per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ckptnas.search._plan import common_prefix_length

BUCKET = 8


@dataclass(frozen=True, order=True)
class Entry:
    """A trained candidate; entries order by objective, then by earlier id."""

    objective: float
    neg_id: int
    arch: tuple[int, ...] = field(compare=False)

    @property
    def candidate_id(self) -> int:
        return -self.neg_id


class _Node:
    __slots__ = ("best", "bucket", "children")

    def __init__(self) -> None:
        self.children: dict[int, _Node] | None = None
        self.bucket: list[Entry] | None = []
        self.best: Entry | None = None

    def refresh(self) -> None:
        candidates = list(self.bucket or ()) + [c.best for c in (self.children or {}).values()]
        self.best = max((c for c in candidates if c is not None), default=None)


class PrefixTree:
    """Architectures of trained candidates, indexed by prefix.

    Examples
    --------
    >>> tree = PrefixTree()
    >>> tree.insert((1, 2, 3), 0, 0.5)
    >>> tree.insert((1, 2, 4), 1, 0.9)
    >>> tree.best_match((1, 2, 3))
    (0, 3)
    >>> tree.best_match((1, 5, 5))
    (1, 1)
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._arch: dict[int, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._arch)

    def __contains__(self, candidate_id: object) -> bool:
        return candidate_id in self._arch

    def arch_of(self, candidate_id: int) -> tuple[int, ...]:
        """The architecture a candidate was inserted with."""
        return self._arch[candidate_id]

    def insert(self, arch: tuple[int, ...], candidate_id: int, objective: float) -> None:
        """Add a trained candidate (its objective must be a number, higher is better)."""
        if candidate_id in self._arch:
            raise ValueError(f"candidate {candidate_id} is already in the tree")
        self._arch[candidate_id] = arch
        self._insert(self._root, 0, Entry(objective, -candidate_id, arch))

    def _insert(self, node: _Node, depth: int, entry: Entry) -> None:
        while True:
            if node.best is None or entry > node.best:
                node.best = entry
            if node.bucket is not None:
                node.bucket.append(entry)
                if len(node.bucket) > BUCKET and depth < len(entry.arch):
                    self._split(node, depth)
                return
            assert node.children is not None
            node = node.children.setdefault(entry.arch[depth], _Node())
            depth += 1

    def _split(self, node: _Node, depth: int) -> None:
        entries, node.bucket, node.children = node.bucket or [], None, {}
        for entry in entries:
            child = node.children.setdefault(entry.arch[depth], _Node())
            self._insert(child, depth + 1, entry)

    def remove(self, candidate_id: int) -> None:
        """Take a candidate out, e.g. because its checkpoint turned out to be broken."""
        arch = self._arch.pop(candidate_id)
        path = [self._root]
        while path[-1].bucket is None:
            children = path[-1].children
            assert children is not None
            path.append(children[arch[len(path) - 1]])
        leaf = path[-1]
        assert leaf.bucket is not None
        leaf.bucket = [e for e in leaf.bucket if e.candidate_id != candidate_id]
        for depth in range(len(path) - 1, -1, -1):
            node = path[depth]
            node.refresh()
            if depth and node.best is None:
                parent_children = path[depth - 1].children
                assert parent_children is not None
                del parent_children[arch[depth - 1]]

    def best_match(self, arch: tuple[int, ...]) -> tuple[int, int] | None:
        """The candidate sharing the longest prefix with ``arch``, and that prefix's length.

        Ties between equally long prefixes go to the higher objective, then the lower id.
        Returns ``None`` when the tree is empty.
        """
        node, depth = self._root, 0
        while node.bucket is None:
            assert node.children is not None
            child = node.children.get(arch[depth]) if depth < len(arch) else None
            if child is None:
                break
            node, depth = child, depth + 1
        if node.bucket is not None:
            scored = [(common_prefix_length(arch, e.arch), e) for e in node.bucket]
            if not scored:
                return None
            length, entry = max(scored)
            return entry.candidate_id, length
        assert node.best is not None
        return node.best.candidate_id, depth
