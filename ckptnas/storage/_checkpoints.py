"""The checkpoint store: each candidate's tensors as one safetensors file, hash-checked.

Files live in ``<run_dir>/checkpoints/<id>.safetensors``. The header's metadata records a
SHA-256 of every tensor's bytes, and the store returns a *digest* of those hashes that the
registry keeps. A partial load reads (memory-maps) only the requested tensors and checks each
one against its hash, so a transfer never reads tensors it does not copy and never uses a
truncated or altered file. No pickle is involved anywhere.

A candidate continued to more epochs (successive halving) gets a new file,
``<id>.e<epochs>.safetensors``, beside the earlier ones: a donor planned from an earlier
version, or a continuation retried after its worker died, still finds the version its digest
names. The state that continuing needs besides the weights (the optimizer's moments, the
random generators) lives in a file of its own named by the weights' digest,
``<id>.<digest>.state.safetensors``, so that transfers never read it.

A checkpoint saved with ``share_from`` (a frozen child, naming its donor) holds only the tensors
it does not share: one whose hash, dtype and shape equal a tensor of a named checkpoint is
referred to in that checkpoint's blob instead (:mod:`ckptnas.storage._blobs`), and read from
there, verified against the same hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ckptnas.errors import CheckpointError
from ckptnas.storage._atomic import replacing
from ckptnas.storage._blobs import BlobStore
from ckptnas.storage._header import HASH_PREFIX, SHARED, digest_of, read_header, shared_of
from ckptnas.storage._rundir import RunDir
from ckptnas.storage._sharing import read_shared, share

#: The metadata key of a training state's description (JSON text).
_INFO = "ckptnas:info"
#: A continued version's file name: candidate id and epochs trained.
_VERSION = re.compile(r"^(\d+)\.e(\d+)\.safetensors$")


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's raw bytes (any dtype, on any device)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    # Hash the bytes in place (the array exposes the buffer protocol): no copy of the tensor.
    return hashlib.sha256(flat.view(torch.uint8).numpy().data).hexdigest()


def _as_os_error(exc: Exception) -> Exception:
    """An I/O failure of safetensors as the OSError it wraps, so its errno can be acted on.

    safetensors reports a failed write as ``SafetensorError("... (os error 28)")``; the runner
    tells a full disk or quota (ENOSPC, EDQUOT, EFBIG) from other failures by ``errno``.
    """
    if isinstance(exc, OSError):
        return exc
    match = re.search(r"\(os error (\d+)\)", str(exc))
    if match is None:
        return exc
    code = int(match.group(1))
    return OSError(code, f"{os.strerror(code)} (writing a checkpoint)")


class CheckpointStore:
    """Save and load candidates' named tensors in a run directory.

    Parameters
    ----------
    run_dir : str, Path or RunDir
        The experiment's run directory; checkpoints go to its ``checkpoints/`` folder. A store
        of another folder (full training's) is made with :meth:`in_folder`.

    Examples
    --------
    >>> store = CheckpointStore(tmp_path)                        # doctest: +SKIP
    >>> digest = store.save(7, model.state_dict())               # doctest: +SKIP
    >>> store.load(7, names=["trunk.0.weight"], digest=digest)   # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path | RunDir) -> None:
        self._own(RunDir(run_dir).checkpoints)

    @classmethod
    def in_folder(cls, folder: Path) -> CheckpointStore:
        """A store of the checkpoints in ``folder`` itself (the folder it owns)."""
        store = cls.__new__(cls)
        store._own(folder)
        return store

    def _own(self, folder: Path) -> None:
        self.root = folder
        self.blobs = BlobStore(self.root)

    def path(self, candidate_id: int, epochs: int | None = None) -> Path:
        """Where a candidate's checkpoint is (or would be) stored.

        ``epochs`` names the version of a candidate continued to that many epochs; ``None``
        the file of its first training.
        """
        if epochs is None:
            return self.root / f"{int(candidate_id):06d}.safetensors"
        return self.root / f"{int(candidate_id):06d}.e{int(epochs):04d}.safetensors"

    def versions(self, candidate_id: int) -> list[Path]:
        """A candidate's checkpoint files, the most trained first."""
        continued = sorted(
            (int(m.group(2)), p)
            for p in self.root.glob(f"{int(candidate_id):06d}.e*.safetensors")
            if (m := _VERSION.match(p.name)) and int(m.group(1)) == candidate_id
        )
        first = self.path(candidate_id)
        return [p for _, p in reversed(continued)] + ([first] if first.is_file() else [])

    def exists(self, candidate_id: int) -> bool:
        """Whether a checkpoint file exists for the candidate (it may still be corrupt)."""
        return bool(self.versions(candidate_id))

    def save(
        self,
        candidate_id: int,
        tensors: Mapping[str, torch.Tensor],
        epochs: int | None = None,
        share_from: Iterable[tuple[int, str]] = (),
    ) -> str:
        """Write a candidate's tensors atomically and return the checkpoint's digest.

        The file is written under a temporary name, flushed to disk and renamed into place, so
        a reader sees either no checkpoint or a complete one. ``epochs`` writes the version of
        a continued candidate (see :meth:`path`).

        Parameters
        ----------
        candidate_id : int
        tensors : mapping of str to torch.Tensor
        epochs : int, optional
        share_from : iterable of (int, str)
            Checkpoints, as (candidate id, digest), that may hold some of these tensors
            unchanged (a frozen child's donor). A tensor with the same hash, dtype and shape as
            one of theirs is not written again: the checkpoint refers to it in their blob.
            The digest is the same either way.
        """
        path = self.path(candidate_id, epochs)
        return digest_of(self._write(path, tensors, {}, tuple(share_from)))

    def _write(
        self,
        path: Path,
        tensors: Mapping[str, torch.Tensor],
        extra: Mapping[str, str],
        share_from: tuple[tuple[int, str], ...] = (),
    ) -> dict[str, str]:
        """Write tensors with their hashes (and ``extra`` metadata); returns the hashes."""
        self.root.mkdir(parents=True, exist_ok=True)
        cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
        hashes = {name: tensor_sha256(t) for name, t in cpu.items()}
        metadata = {f"{HASH_PREFIX}{name}": h for name, h in hashes.items()} | dict(extra)
        shared = share(self.blobs, cpu, hashes, share_from, self._source) if share_from else {}
        if shared:
            metadata[SHARED] = json.dumps({n: s.to_json() for n, s in shared.items()})
        blobs = {s.blob for s in shared.values()}
        before = self._blobs_of(path)
        # Referrers are recorded before the file that refers exists, and dropped after the
        # file that referred is gone: a crash between leaves one too many, never too few.
        self.blobs.add_refs(path.name, blobs)
        try:
            with replacing(path, fsync=True) as tmp:
                # Written straight from the tensors' memory: serialising to bytes first would
                # hold two more copies of the model at once.
                stored = {n: t for n, t in cpu.items() if n not in shared}
                save_file(stored, tmp, metadata=metadata)
        except (OSError, SafetensorError) as exc:
            self.blobs.drop_refs(path.name, blobs - before)
            raise _as_os_error(exc) from None
        self.blobs.drop_refs(path.name, before - blobs)
        return hashes

    def _source(self, candidate_id: int, digest: str) -> Path | None:
        """The file of a candidate's checkpoint of ``digest``, if it has one."""
        return self._version_of(candidate_id, digest) if self.versions(candidate_id) else None

    def _blobs_of(self, path: Path) -> set[str]:
        """The blobs the checkpoint file at ``path`` refers to (none when there is none)."""
        if not path.is_file():  # the usual case: a new file, one stat
            return set()
        try:
            return {s.blob for s in read_header(path).shared.values()}
        except (OSError, ValueError):
            return set()

    def state_path(self, candidate_id: int, digest: str) -> Path:
        """Where the training state that goes with the weights of ``digest`` is stored."""
        return self.root / f"{int(candidate_id):06d}.{digest[:16]}.state.safetensors"

    def save_state(
        self,
        candidate_id: int,
        digest: str,
        tensors: Mapping[str, torch.Tensor],
        info: Mapping[str, object],
    ) -> None:
        """Write what continuing the weights of ``digest`` needs: tensors and a description.

        Parameters
        ----------
        candidate_id : int
        digest : str
            The digest :meth:`save` returned for the weights this state goes with.
        tensors : mapping of str to torch.Tensor
            Optimizer moments, random generator states, ...
        info : mapping
            Anything else, as JSON (the optimizer's settings, the names of trained tensors).
        """
        extra = {_INFO: json.dumps({**info, "weights_digest": digest})}
        self._write(self.state_path(candidate_id, digest), tensors, extra)

    def load_state(
        self, candidate_id: int, digest: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The training state saved with the weights of ``digest``, verified.

        Raises
        ------
        CheckpointError
            If it is missing, unreadable, altered or belongs to other weights.
        """
        path = self.state_path(candidate_id, digest)
        tensors, metadata = self._read(path, candidate_id, None, None, "training state")
        info: dict[str, Any] = json.loads(metadata.get(_INFO, "{}"))
        if info.get("weights_digest") != digest:
            raise CheckpointError(
                f"training state of candidate {candidate_id} belongs to other weights"
            )
        return tensors, info

    def load(
        self,
        candidate_id: int,
        names: Iterable[str] | None = None,
        digest: str | None = None,
        device: str | torch.device = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Read a candidate's tensors, all or some, and verify them.

        Parameters
        ----------
        candidate_id : int
        names : iterable of str, optional
            Read only these tensors; all when omitted.
        digest : str, optional
            The digest :meth:`save` returned; when given, the header's hashes must match it.
        device : str or torch.device
            Where the tensors are placed.

        Returns
        -------
        dict of str to torch.Tensor

        Raises
        ------
        CheckpointError
            If the file is missing or unreadable, a requested tensor is absent, or a tensor's
            bytes or the header do not match their hashes.
        """
        versions = self.versions(candidate_id)
        if not versions:
            raise CheckpointError(
                f"checkpoint of candidate {candidate_id} is missing ({self.path(candidate_id)})"
            )
        path = versions[0] if digest is None else self._version_of(candidate_id, digest)
        tensors, _ = self._read(path, candidate_id, names, digest)
        return {name: t.to(device) for name, t in tensors.items()}

    def _version_of(self, candidate_id: int, digest: str) -> Path:
        """The version whose header hashes give ``digest``; the newest if none does."""
        versions = self.versions(candidate_id)
        for path in versions:
            try:
                with safe_open(str(path), framework="pt", device="cpu") as f:
                    if digest_of(_hashes(f.metadata(), candidate_id)) == digest:
                        return path
            except (SafetensorError, OSError, ValueError, CheckpointError):
                continue
        return versions[0]  # reading it names what is wrong

    def _read(
        self,
        path: Path,
        candidate_id: int,
        names: Iterable[str] | None,
        digest: str | None,
        what: str = "checkpoint",
    ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Read and verify tensors of one file; returns them and the file's metadata."""
        if not path.is_file():
            raise CheckpointError(f"{what} of candidate {candidate_id} is missing ({path})")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = dict(f.metadata() or {})
                hashes = _hashes(metadata, candidate_id)
                if digest is not None and digest_of(hashes) != digest:
                    raise CheckpointError(
                        f"{what} of candidate {candidate_id} does not match its recorded digest"
                    )
                wanted = list(hashes) if names is None else list(names)
                missing = [n for n in wanted if n not in hashes]
                if missing:
                    raise CheckpointError(
                        f"{what} of candidate {candidate_id} has no tensors {missing}"
                    )
                shared = shared_of(metadata)
                tensors = {name: f.get_tensor(name) for name in wanted if name not in shared}
            tensors |= read_shared(
                self.blobs, {n: shared[n] for n in wanted if n in shared}, candidate_id, what
            )
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{what} of candidate {candidate_id} is unreadable: {exc}"
            ) from None
        for name in wanted:
            if tensor_sha256(tensors[name]) != hashes[name]:
                raise CheckpointError(
                    f"tensor {name!r} of candidate {candidate_id} does not match its hash"
                )
        return {name: tensors[name] for name in wanted}, metadata

    def verify(self, candidate_id: int, digest: str | None = None) -> bool:
        """Whether the checkpoint exists and every tensor matches its hash (and the digest)."""
        try:
            self.load(candidate_id, digest=digest)
        except CheckpointError:
            return False
        return True


def _hashes(metadata: Mapping[str, str] | None, candidate_id: int) -> dict[str, str]:
    hashes = {
        k.removeprefix(HASH_PREFIX): v
        for k, v in (metadata or {}).items()
        if k.startswith(HASH_PREFIX)
    }
    if not hashes:
        raise CheckpointError(f"checkpoint of candidate {candidate_id} carries no tensor hashes")
    return hashes
