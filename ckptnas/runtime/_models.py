"""Trained candidates as models that take raw data: :func:`load_model`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ckptnas.config import Task
from ckptnas.errors import CandidateError, CheckpointDeletedError, DataError
from ckptnas.space import space_from_dict
from ckptnas.storage import (
    CandidateStatus,
    CheckpointStore,
    Init,
    LineageRegistry,
    Preprocessing,
    RunDir,
    TopKRegistry,
    deleted_message,
)


def run_space(run_dir: str | Path, trust_code: bool = False) -> Any:
    """The search space a run used, as recorded in its registry.

    A :class:`~ckptnas.space.SearchSpace` for the dense space, else the space object the run
    searched (unpickled, only with ``trust_code``: its code must be importable here).
    """
    with LineageRegistry(run_dir, readonly=True) as registry:
        return space_from_dict(registry.recorded_space(), trust_code).space


class TrainedModel(nn.Module):
    """A trained candidate that takes raw inputs and answers in the data's units or labels.

    Calling it with a mapping of input name to raw ``(batch, feature)`` values (tensors or
    arrays) returns a tensor: for regression the predictions in the target's units, shape
    ``(batch,)``; for classification the class probabilities, shape ``(batch, class)``, classes
    in the order of :attr:`classes`. :meth:`predict` returns predictions or labels as an array.
    The bare network, which takes the scaled inputs it was trained on, is :attr:`network`.
    Inputs are checked against the run's recorded inputs: a missing one, or one whose shape
    per sample is not :attr:`input_shapes`, raises :class:`~ckptnas.errors.DataError`.

    Parameters
    ----------
    network : torch.nn.Module
    preprocessing : Preprocessing
        The run's fitted scalings and target encoding; they become buffers of the module, so
        they move with it to a device and are saved in its ``state_dict``.
    """

    def __init__(self, network: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.network = network
        self.task = Task(preprocessing.task)
        self.input_names = list(preprocessing.inputs)
        #: Each input's shape for one sample, as the run recorded it (its scaling's shape).
        self.input_shapes = {
            name: tuple(int(n) for n in np.shape(scaling.shift))
            for name, scaling in preprocessing.inputs.items()
        }
        #: The label of each class index (classification).
        self.classes = preprocessing.classes
        for k, scaling in enumerate(preprocessing.inputs.values()):
            self.register_buffer(f"input{k}_shift", _float(scaling.shift))
            self.register_buffer(f"input{k}_scale", _float(scaling.scale))
        target = preprocessing.target
        self.register_buffer("target_shift", _float(0.0 if target is None else target.shift))
        self.register_buffer("target_scale", _float(1.0 if target is None else target.scale))

    def forward(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        device = self._buffer("target_shift").device
        scaled = {}
        for k, name in enumerate(self.input_names):
            x = self._checked(inputs, name, device)
            shift, scale = self._buffer(f"input{k}_shift"), self._buffer(f"input{k}_scale")
            scaled[name] = (x - shift) / scale
        out: torch.Tensor = self.network(scaled)
        if self.task == Task.CLASSIFICATION:
            return torch.softmax(out, dim=1)
        return out.squeeze(1) * self._buffer("target_scale") + self._buffer("target_shift")

    def _checked(self, inputs: Mapping[str, Any], name: str, device: torch.device) -> torch.Tensor:
        """One input as a ``(batch, ...)`` tensor, refused unless its shape is the recorded one.

        Broadcasting would otherwise turn a wrongly shaped input into plausible numbers.
        """
        if name not in inputs:
            takes = ", ".join(map(repr, self.input_names))
            given = ", ".join(map(repr, inputs)) or "none"
            raise DataError(f"input {name!r} is missing: the model takes {takes} (given {given})")
        x = torch.as_tensor(inputs[name], dtype=torch.float32, device=device)
        expected = self.input_shapes[name]
        if x.ndim == 1 and expected == (1,):  # one value per sample
            x = x[:, None]
        if x.ndim == 0 or tuple(x.shape[1:]) != expected:
            raise DataError(
                f"input {name!r} must have shape {shape_text(expected)} for this model, "
                f"not {tuple(x.shape)}"
            )
        return x

    def _buffer(self, name: str) -> torch.Tensor:
        buffer: torch.Tensor = getattr(self, name)
        return buffer

    @torch.no_grad()
    def predict(self, inputs: Mapping[str, Any]) -> np.ndarray:
        """Predictions in the target's units, or the predicted labels, for raw inputs."""
        out: np.ndarray = self(inputs).cpu().numpy()
        if self.task == Task.CLASSIFICATION:
            labels: np.ndarray = np.asarray(self.classes)[out.argmax(1)]
            return labels
        return out


def shape_text(per_sample: tuple[int, ...], sample: str = "sample") -> str:
    """An input's shape as a message names it: ``(sample, 10)``."""
    return f"({', '.join([sample, *map(str, per_sample)])})"


def _float(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


def load_model(
    run_dir: str | Path, candidate_id: int, trust_code: bool = False, *, init: Init | None = None
) -> TrainedModel:
    """A trained candidate, with its checkpointed weights, that takes raw inputs.

    Parameters
    ----------
    run_dir : str or Path
    candidate_id : int
    trust_code : bool
        Needed only where the run searched a space object of a user's (recorded as a pickle,
        which runs its code when loaded): only for a run directory you trust.
    init : {"scratch", "checkpoint"}, optional
        The weights of the candidate's full training with this init (``train-topk``), instead
        of those it ended the search with.

    Returns
    -------
    TrainedModel
        In evaluation mode; the run's input scaling and target encoding travel with it.

    Raises
    ------
    CandidateError
        If the run has no such candidate, or it did not finish training.
    CheckpointDeletedError
        If the run's ``[storage]`` policy deleted its checkpoint (without ``init``).
    CheckpointError
        If its checkpoint is missing or does not match its recorded hashes.
    RunDirectoryError
        If the run recorded no preprocessing (runs of ckptnas 0.1).

    Examples
    --------
    >>> best = int(load_results(run).objective.idxmax())   # doctest: +SKIP
    >>> model = load_model(run, best)                        # doctest: +SKIP
    >>> model.predict({"x": raw_features})                   # doctest: +SKIP
    """
    with LineageRegistry(run_dir, readonly=True) as registry:
        try:
            record = registry.get(candidate_id)
        except KeyError:
            raise CandidateError(f"run {run_dir} has no candidate {candidate_id}") from None
        space = space_from_dict(registry.recorded_space(), trust_code)
    if record.status != CandidateStatus.OK:
        why = f": {record.error}" if record.error else ""
        raise CandidateError(
            f"candidate {candidate_id} of run {run_dir} has no trained weights "
            f"(status {record.status.value}{why})"
        )
    if init is None and record.checkpoint_deleted:  # said before anything is built
        raise CheckpointDeletedError(deleted_message(candidate_id, record.checkpoint_deleted))
    network = space.build(record.arch)
    if init is None:
        tensors = CheckpointStore(run_dir).load(candidate_id, digest=record.checkpoint_digest)
    else:
        tensors = _fully_trained(run_dir, candidate_id, Init(init))
    network.load_state_dict(tensors)
    return TrainedModel(network, Preprocessing.load(run_dir)).eval()


def _fully_trained(run_dir: str | Path, candidate_id: int, init: Init) -> dict[str, torch.Tensor]:
    """The weights a candidate's full training with ``init`` kept, checked against its record."""
    files = RunDir(run_dir)
    record = None
    if files.topk_db.is_file():
        with TopKRegistry(files, readonly=True) as registry:
            record = registry.find(candidate_id, init)
    if record is None or record.status != CandidateStatus.OK:
        raise CandidateError(
            f"candidate {candidate_id} of run {run_dir} has no finished {init} full training "
            "(train-topk trains the best candidates)"
        )
    store = CheckpointStore.in_folder(files.topk_checkpoints(init))
    return store.load(candidate_id, digest=record.checkpoint_digest)
