"""Training one of the best candidates to convergence: what a Dask worker runs."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from ckptnas.errors import CheckpointError
from ckptnas.runtime import Curves, DeviceData, evaluate, prepare
from ckptnas.space import set_dropout
from ckptnas.storage import CandidateStatus, CheckpointStore, Init, RunDir
from ckptnas.topk._records import FullTrainResult, FullTrainSpec


def topk_store(run_dir: str | Path | RunDir, init: Init) -> CheckpointStore:
    """Where the fully trained weights of one init go: ``topk/<init>/``.

    Runs whose earlier full training wrote into ``topk/<init>/checkpoints/`` keep using it
    (see :meth:`~ckptnas.storage.RunDir.topk_checkpoints`).
    """
    return CheckpointStore.in_folder(RunDir(run_dir).topk_checkpoints(init))


def full_train(spec: FullTrainSpec) -> FullTrainResult:
    """Train one candidate to convergence; the function Dask runs on a worker.

    The validation loss is checked after every epoch; training stops after ``patience`` epochs
    without improvement (or at ``max_epochs``), and the weights of the best epoch are kept,
    saved and scored: ``final_metric`` is the validation metric of that epoch, ``test_metric``
    that of the same weights on the held-out test rows. ``setup_time``
    (building the model and, for ``checkpoint``, reading and verifying the checkpoint) counts
    towards the run's wall time.
    """
    tic = time.perf_counter()
    ready = prepare(spec, spec.device)
    model = ready.model
    base = spec.result(
        CandidateStatus.RUNNING,
        n_params=ready.n_params,
        worker=ready.worker,
        device=str(ready.device),
        start_time=ready.start_time,
    )
    if spec.init == Init.CHECKPOINT:
        try:
            tensors = CheckpointStore(spec.run_dir).load(
                spec.candidate_id, digest=spec.source_digest, device=ready.device
            )
            model.load_state_dict(tensors)
        except (CheckpointError, RuntimeError) as exc:
            return replace(
                base, status=CandidateStatus.FAILED, error=str(exc)[:2000], end_time=time.time()
            )
    setup_time = time.perf_counter() - tic
    curves, best = _fit(model, ready.data, spec)
    status = CandidateStatus.OK if best is not None else CandidateStatus.FAILED
    digest, test_metric = None, math.nan
    if best is not None:
        model.load_state_dict(best[1])
        digest = topk_store(spec.run_dir, spec.init).save(spec.candidate_id, model.state_dict())
        # Scored on the held-out rows once, after every choice was made on the validation rows.
        _, test_metric = evaluate(model, ready.data, precision=spec.precision, split="test")
    return replace(
        base,
        status=status,
        error="" if best is not None else "diverged: the validation loss was never finite",
        best_epoch=best[0] if best else 0,
        final_metric=curves.val_metric[best[0] - 1] if best else math.nan,
        setup_time=setup_time,
        test_metric=test_metric,
        checkpoint_digest=digest,
        end_time=time.time(),
        **curves.as_tuples(),
    )


def _fit(
    model: torch.nn.Module, data: DeviceData, spec: FullTrainSpec
) -> tuple[Curves, tuple[int, dict[str, torch.Tensor]] | None]:
    """The early-stopped fit loop: per-epoch curves and (best epoch, its weights)."""
    set_dropout(model, spec.dropout)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay
    )
    generator = torch.Generator(device=data.train_y.device).manual_seed(spec.seed)
    curves = Curves()
    best: tuple[int, dict[str, torch.Tensor]] | None = None
    best_loss, waited = math.inf, 0
    for epoch in range(1, spec.max_epochs + 1):
        _, val_loss, _ = curves.fit_epoch(
            model, data, optimizer, spec.batch_size, generator, precision=spec.precision
        )
        if not math.isfinite(val_loss):
            break
        if val_loss < best_loss - spec.min_delta:
            best_loss, waited = val_loss, 0
            best = (epoch, copy.deepcopy(model.state_dict()))
        else:
            waited += 1
            if waited >= spec.patience:
                break
    return curves, best
