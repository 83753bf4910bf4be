"""Training one candidate: the function a Dask worker runs for each candidate of a search.

:func:`train_candidate` builds the candidate's network, copies in the tensors its plan names
from the donor's checkpoint (or, to continue a candidate its scheduler sent on, loads
its own checkpoint and training state), trains it, saves its checkpoint and returns a
:class:`~ckptnas.runtime.CandidateResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import replace
from functools import partial

import torch
from torch import nn

from ckptnas.errors import CheckpointError
from ckptnas.runtime import _state
from ckptnas.runtime._fit import Curves, inference_latency
from ckptnas.runtime._records import CandidateResult, CandidateSpec, TrainingSettings
from ckptnas.runtime._worker import Prepared, donor_cache, prepare
from ckptnas.search import SCRATCH, apply_plan
from ckptnas.space import set_dropout
from ckptnas.storage import CandidateStatus, CheckpointStore


def _adam(settings: TrainingSettings, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        list(params), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )


def train_candidate(spec: CandidateSpec) -> CandidateResult:
    """Train one candidate; the function Dask runs on a worker.

    Parameters
    ----------
    spec : CandidateSpec
        With ``start_epoch > 0``, continue the candidate from its own checkpoint (the version
        ``own_digest`` names) and training state, up to ``settings.epochs``.

    Returns
    -------
    CandidateResult
        ``status`` is ``ok``; ``failed`` when the loss stopped being finite (the partial curves
        are kept) or a continued candidate's own checkpoint could not be read; ``donor_failed``
        when the donor's checkpoint could not be read or verified, in which case nothing was
        trained and the client picks another donor. The curves hold the epochs this task
        trained.
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
    set_dropout(model, spec.settings.dropout)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    try:
        if spec.start_epoch:
            optimizer = _continue(spec, store, model, generator, device)
        else:
            optimizer = _start(spec, store, model, device)
    except CheckpointError as exc:
        status = CandidateStatus.FAILED if spec.start_epoch else CandidateStatus.DONOR_FAILED
        return replace(started, status=status, error=str(exc), end_time=time.time())
    curves, error = _fit(spec, ready, optimizer, generator)
    status = CandidateStatus.FAILED if error else CandidateStatus.OK
    digest, latency = None, math.nan
    if status == CandidateStatus.OK:
        if spec.settings.measure_latency:
            latency = inference_latency(model, ready.data, precision=spec.settings.precision)
        digest = _save(spec, store, model, optimizer, generator)
    return replace(
        started,
        status=status,
        error=error,
        plan=spec.plan if spec.plan.is_warm else SCRATCH,
        checkpoint_digest=digest,
        latency=latency,
        end_time=time.time(),
        **curves.as_tuples(),
    )


def _fit(
    spec: CandidateSpec,
    ready: Prepared,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator,
) -> tuple[Curves, str]:
    """Train the epochs ``spec`` asks for; returns the curves and why it stopped early, if so."""
    curves = Curves()
    for epoch in range(spec.start_epoch + 1, spec.settings.epochs + 1):
        measured = curves.fit_epoch(
            ready.model,
            ready.data,
            optimizer,
            spec.settings.batch_size,
            generator,
            precision=spec.settings.precision,
        )
        if not all(math.isfinite(v) for v in measured):
            return curves, f"diverged: loss is not finite at epoch {epoch}"
    return curves, ""


def _save(
    spec: CandidateSpec,
    store: CheckpointStore,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator,
) -> str:
    """Checkpoint the trained candidate (and its training state, to be continued later)."""
    version = spec.settings.epochs if spec.start_epoch else None
    state = model.state_dict()
    digest = store.save(spec.candidate_id, state, version, _share_from(spec))
    donor_cache().put(store, spec.candidate_id, digest, state)  # its children may start here
    if spec.keep_state:
        tensors, info = _state.capture(model, optimizer, generator)
        store.save_state(spec.candidate_id, digest, tensors, info)
    return digest


def _share_from(spec: CandidateSpec) -> tuple[tuple[int, str], ...]:
    """Checkpoints that hold this candidate's frozen tensors as they are: where they came from.

    A new candidate's frozen tensors are its donor's; a continued one's, its own earlier
    version's. Unfrozen tensors all train, so nothing is looked up for them.
    """
    if not (spec.settings.freeze and spec.settings.dedup):
        return ()
    if spec.start_epoch:
        return ((spec.candidate_id, spec.own_digest),) if spec.own_digest else ()
    # An earlier run's checkpoint is not this run's to link to: its tensors are written again.
    if spec.plan.is_warm and spec.plan.donor is not None and spec.donor_digest:
        return () if spec.plan.run else ((spec.plan.donor, spec.donor_digest),)
    return ()


def _start(
    spec: CandidateSpec, store: CheckpointStore, model: nn.Module, device: torch.device
) -> torch.optim.Optimizer | None:
    """A new candidate: copy its donor's tensors in; its optimizer, over what trains."""
    if spec.plan.is_warm:
        assert spec.plan.donor is not None
        # A donor of an earlier run is read, never written, from its own run directory.
        donors = CheckpointStore(spec.plan.run) if spec.plan.run else store
        tensors = donor_cache().load(
            donors, spec.plan.donor, spec.plan.donor_tensors, spec.donor_digest, device
        )
        apply_plan(model, tensors, spec.plan, spec.settings.freeze)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return _adam(spec.settings, trainable) if trainable else None


def _continue(
    spec: CandidateSpec,
    store: CheckpointStore,
    model: nn.Module,
    generator: torch.Generator,
    device: torch.device,
) -> torch.optim.Optimizer | None:
    """A promoted candidate: its own weights, optimizer and generators as it left them."""
    assert spec.own_digest is not None
    model.load_state_dict(store.load(spec.candidate_id, digest=spec.own_digest, device=device))
    tensors, info = store.load_state(spec.candidate_id, spec.own_digest)
    return _state.restore(model, tensors, info, generator, partial(_adam, spec.settings))
