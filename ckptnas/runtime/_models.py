"""Rebuilding trained candidates from a run directory."""

from __future__ import annotations

from pathlib import Path

from ckptnas.space import CandidateNet, SearchSpace
from ckptnas.storage import CheckpointStore, LineageRegistry


def run_space(run_dir: str | Path) -> SearchSpace:
    """The search space a run used, as recorded in its registry."""
    with LineageRegistry(run_dir, readonly=True) as registry:
        return SearchSpace.from_dict(registry.recorded_space())


def load_model(run_dir: str | Path, candidate_id: int) -> CandidateNet:
    """A trained candidate as a :class:`torch.nn.Module` with its checkpointed weights.

    Parameters
    ----------
    run_dir : str or Path
    candidate_id : int

    Returns
    -------
    CandidateNet
        In evaluation mode; call it with a mapping of input name to tensor.

    Raises
    ------
    KeyError
        If the run has no such candidate.
    CheckpointError
        If its checkpoint is missing or does not match its recorded hashes.

    Examples
    --------
    >>> best = int(load_results(run).objective.idxmax())   # doctest: +SKIP
    >>> model = load_model(run, best)                        # doctest: +SKIP
    """
    with LineageRegistry(run_dir, readonly=True) as registry:
        record = registry.get(candidate_id)
        space = SearchSpace.from_dict(registry.recorded_space())
    model = space.build(record.arch)
    tensors = CheckpointStore(run_dir).load(candidate_id, digest=record.checkpoint_digest)
    model.load_state_dict(tensors)
    return model.eval()
