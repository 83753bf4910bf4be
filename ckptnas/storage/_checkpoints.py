"""The checkpoint store: each candidate's tensors as one safetensors file, hash-checked.

Files live in ``<run_dir>/checkpoints/<id>.safetensors``. The header's metadata records a
SHA-256 of every tensor's bytes, and the store returns a *digest* of those hashes that the
registry keeps. A partial load reads (memory-maps) only the requested tensors and checks each
one against its hash, so a transfer never reads tensors it does not copy and never uses a
truncated or altered file. No pickle is involved anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ckptnas.errors import CheckpointError
from ckptnas.storage._atomic import replacing
from ckptnas.storage._rundir import RunDir

_HASH_PREFIX = "sha256:"


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's raw bytes (any dtype, on any device)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    # Hash the bytes in place (the array exposes the buffer protocol): no copy of the tensor.
    return hashlib.sha256(flat.view(torch.uint8).numpy().data).hexdigest()


def digest_of(hashes: Mapping[str, str]) -> str:
    """One hash over a checkpoint's per-tensor hashes, independent of their order."""
    return hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()


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
    run_dir : str or Path
        The experiment's run directory; checkpoints go to its ``checkpoints/`` folder.

    Examples
    --------
    >>> store = CheckpointStore(tmp_path)                        # doctest: +SKIP
    >>> digest = store.save(7, model.state_dict())               # doctest: +SKIP
    >>> store.load(7, names=["trunk.0.weight"], digest=digest)   # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.root = RunDir(run_dir).checkpoints

    def path(self, candidate_id: int) -> Path:
        """Where a candidate's checkpoint is (or would be) stored."""
        return self.root / f"{int(candidate_id):06d}.safetensors"

    def exists(self, candidate_id: int) -> bool:
        """Whether a checkpoint file exists for the candidate (it may still be corrupt)."""
        return self.path(candidate_id).is_file()

    def save(self, candidate_id: int, tensors: Mapping[str, torch.Tensor]) -> str:
        """Write a candidate's tensors atomically and return the checkpoint's digest.

        The file is written under a temporary name, flushed to disk and renamed into place, so
        a reader sees either no checkpoint or a complete one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
        hashes = {name: tensor_sha256(t) for name, t in cpu.items()}
        metadata = {f"{_HASH_PREFIX}{name}": h for name, h in hashes.items()}
        try:
            with replacing(self.path(candidate_id), fsync=True) as tmp:
                # Written straight from the tensors' memory: serialising to bytes first would
                # hold two more copies of the model at once.
                save_file(cpu, tmp, metadata=metadata)
        except (OSError, SafetensorError) as exc:
            raise _as_os_error(exc) from None
        return digest_of(hashes)

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
        path = self.path(candidate_id)
        if not path.is_file():
            raise CheckpointError(f"checkpoint of candidate {candidate_id} is missing ({path})")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                hashes = _hashes(f.metadata(), candidate_id)
                if digest is not None and digest_of(hashes) != digest:
                    raise CheckpointError(
                        f"checkpoint of candidate {candidate_id} does not match its recorded digest"
                    )
                wanted = list(hashes) if names is None else list(names)
                missing = [n for n in wanted if n not in hashes]
                if missing:
                    raise CheckpointError(
                        f"checkpoint of candidate {candidate_id} has no tensors {missing}"
                    )
                tensors = {name: f.get_tensor(name) for name in wanted}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint of candidate {candidate_id} is unreadable: {exc}"
            ) from None
        for name, tensor in tensors.items():
            if tensor_sha256(tensor) != hashes[name]:
                raise CheckpointError(
                    f"tensor {name!r} of candidate {candidate_id} does not match its hash"
                )
        return {name: t.to(device) for name, t in tensors.items()}

    def verify(self, candidate_id: int, digest: str | None = None) -> bool:
        """Whether the checkpoint exists and every tensor matches its hash (and the digest)."""
        try:
            self.load(candidate_id, digest=digest)
        except CheckpointError:
            return False
        return True


def _hashes(metadata: Mapping[str, str] | None, candidate_id: int) -> dict[str, str]:
    hashes = {
        k.removeprefix(_HASH_PREFIX): v
        for k, v in (metadata or {}).items()
        if k.startswith(_HASH_PREFIX)
    }
    if not hashes:
        raise CheckpointError(f"checkpoint of candidate {candidate_id} carries no tensor hashes")
    return hashes
