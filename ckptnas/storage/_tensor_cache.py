"""A bounded LRU cache of verified checkpoint tensors, kept by each worker process.

In a search, a few good candidates serve as donors again and again (on the quickstart, the most
popular donor of 30 candidates was read by 5 of them). On a cluster every such read crosses the
shared file system; a worker keeps the tensors it read last, within a byte budget, and reads
only what it does not hold.

A worker also keeps the tensors of each checkpoint it writes (:meth:`TensorCache.put`): the
child of a candidate it trained then starts from memory. Those tensors need no verifying:
their hashes, and so the digest, were computed from them. With one worker and the quickstart,
reading and verifying a fresh donor's file was 3 of the 4.5 ms that setting up a warm start
took (most donors of an evolution are candidates that have just finished).

Entries are keyed by checkpoint file, checkpoint digest and tensor name: a checkpoint rewritten
under the same file name (a candidate that continues training) has another digest, so a stale
version is never served. Tensors are kept on the CPU as they were read and verified; only reads
that name a digest are cached, since without one nothing tells two versions of a file apart.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from ckptnas.storage._checkpoints import CheckpointStore


@dataclass(frozen=True)
class CacheStats:
    """What a :class:`TensorCache` has served: tensors from memory, tensors read from files."""

    hits: int
    misses: int
    bytes_held: int

    @property
    def hit_rate(self) -> float:
        """Share of requested tensors served from memory (NaN before any request)."""
        total = self.hits + self.misses
        return self.hits / total if total else float("nan")


class TensorCache:
    """Checkpoint tensors read through :meth:`load`, the least recently used dropped first.

    Parameters
    ----------
    max_bytes : int
        The most tensor bytes held; 0 holds nothing (every read goes to the file).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, str], torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    def load(
        self,
        store: CheckpointStore,
        candidate_id: int,
        names: Iterable[str],
        digest: str | None,
        device: str | torch.device = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Some tensors of a checkpoint, from memory where held, else read (and verified).

        Parameters and exceptions are those of :meth:`CheckpointStore.load`.
        """
        wanted = list(names)
        if digest is None or self.max_bytes <= 0:
            self._misses += len(wanted)
            return store.load(candidate_id, wanted, digest, device)
        file = str(store.path(candidate_id).resolve())
        held: dict[str, torch.Tensor] = {}
        for name in wanted:
            key = (file, digest, name)
            if key in self._entries:
                self._entries.move_to_end(key)
                held[name] = self._entries[key]
        missing = [name for name in wanted if name not in held]
        if missing:
            read = store.load(candidate_id, missing, digest)
            for name, tensor in read.items():
                self._add((file, digest, name), tensor)
            held |= read
        self._hits += len(wanted) - len(missing)
        self._misses += len(missing)
        return {name: held[name].to(device) for name in wanted}

    def put(
        self,
        store: CheckpointStore,
        candidate_id: int,
        digest: str,
        tensors: Mapping[str, torch.Tensor],
    ) -> None:
        """Keep the tensors of a checkpoint this process has just written, under its digest.

        Parameters
        ----------
        store : CheckpointStore
        candidate_id : int
        digest : str
            The digest :meth:`CheckpointStore.save` returned for exactly these tensors.
        tensors : mapping of str to torch.Tensor
            Copied to the CPU: the caller may go on changing its own.
        """
        if self.max_bytes <= 0:
            return
        file = str(store.path(candidate_id).resolve())
        for name, tensor in tensors.items():
            self._add((file, digest, name), tensor.detach().to("cpu", copy=True))

    def discard(self, store: CheckpointStore, candidate_id: int) -> None:
        """Forget every tensor held of a candidate's checkpoint, whatever its version."""
        file = str(store.path(candidate_id).resolve())
        for key in [k for k in self._entries if k[0] == file]:
            dropped = self._entries.pop(key)
            self._bytes -= dropped.numel() * dropped.element_size()

    def _add(self, key: tuple[str, str, str], tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if size > self.max_bytes:
            return
        if (old := self._entries.pop(key, None)) is not None:  # kept again: counted once
            self._bytes -= old.numel() * old.element_size()
        self._entries[key] = tensor
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.numel() * dropped.element_size()

    def stats(self) -> CacheStats:
        """Requests served so far, and the bytes held now."""
        return CacheStats(self._hits, self._misses, self._bytes)
