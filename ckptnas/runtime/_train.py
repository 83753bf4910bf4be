"""Training one candidate: the function a Dask worker runs for each candidate of a search.

:func:`train_candidate` builds the candidate's network, copies in the tensors its plan names
from the donor's checkpoint, trains it, saves its checkpoint and returns a
:class:`~ckptnas.runtime.CandidateResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from ckptnas.errors import CheckpointError
from ckptnas.runtime._fit import Curves
from ckptnas.runtime._records import CandidateResult, CandidateSpec
from ckptnas.runtime._worker import prepare
from ckptnas.search import SCRATCH, apply_plan
from ckptnas.storage import CandidateStatus, CheckpointStore


def train_candidate(spec: CandidateSpec) -> CandidateResult:
    """Train one candidate; the function Dask runs on a worker.

    Parameters
    ----------
    spec : CandidateSpec

    Returns
    -------
    CandidateResult
        ``status`` is ``ok``; ``failed`` when the loss stopped being finite (the partial curves
        are kept); ``donor_failed`` when the donor's checkpoint could not be read or verified,
        in which case nothing was trained and the client picks another donor.
    """
    ready = prepare(spec, spec.settings.device)
    model, device = ready.model, ready.device
    started = CandidateResult(
        candidate_id=spec.candidate_id,
        status=CandidateStatus.RUNNING,
        n_params=ready.n_params,
        worker=ready.worker,
        device=str(device),
        start_time=ready.start_time,
        plan=spec.plan,
    )
    store = CheckpointStore(spec.run_dir)
    if spec.plan.is_warm:
        assert spec.plan.donor is not None
        try:
            tensors = store.load(
                spec.plan.donor, spec.plan.donor_tensors, spec.donor_digest, device
            )
        except CheckpointError as exc:
            return replace(
                started, status=CandidateStatus.DONOR_FAILED, error=str(exc), end_time=time.time()
            )
        apply_plan(model, tensors, spec.plan, spec.settings.freeze)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=spec.settings.learning_rate) if trainable else None
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    curves = Curves()
    status, error = CandidateStatus.OK, ""
    for epoch in range(1, spec.settings.epochs + 1):
        measured = curves.fit_epoch(
            model, ready.data, optimizer, spec.settings.batch_size, generator
        )
        if not all(math.isfinite(v) for v in measured):
            status = CandidateStatus.FAILED
            error = f"diverged: loss is not finite at epoch {epoch}"
            break
    digest = None
    if status == CandidateStatus.OK:
        digest = store.save(spec.candidate_id, model.state_dict())
    return replace(
        started,
        status=status,
        error=error,
        plan=spec.plan if spec.plan.is_warm else SCRATCH,
        checkpoint_digest=digest,
        end_time=time.time(),
        **curves.as_tuples(),
    )
