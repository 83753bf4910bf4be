"""The training loop's parts: one epoch, validation, and the per-epoch record of a run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

import torch
from torch import nn

from ckptnas.config import Precision, Task
from ckptnas.runtime._precision import forward_precision
from ckptnas.runtime._worker import DeviceData

#: Validation rows evaluated at once (bounds the activations' memory on large sets).
_EVAL_CHUNK = 8192


def _loss_fn(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task == Task.CLASSIFICATION:
        return nn.functional.cross_entropy
    return lambda out, y: nn.functional.mse_loss(out.squeeze(1), y)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: DeviceData,
    *,
    precision: str = Precision.FLOAT32,
    split: Literal["val", "test"] = "val",
) -> tuple[float, float]:
    """Loss and metric on the validation (or test) rows: R² for regression, else accuracy.

    The forward passes run in ``precision`` (see :func:`forward_precision`); the loss and
    metric are computed from the outputs cast to float32. The test split is for finished
    models only; with no test rows, both are NaN.
    """
    x, y = (data.val_x, data.val_y) if split == "val" else (data.test_x, data.test_y)
    if not len(y):
        return math.nan, math.nan
    model.eval()
    n = len(y)
    with forward_precision(precision, y.device):
        chunks = [
            model({k: v[i : i + _EVAL_CHUNK] for k, v in x.items()})
            for i in range(0, n, _EVAL_CHUNK)
        ]
    outputs = torch.cat(chunks).float()
    loss = float(_loss_fn(data.task)(outputs, y))
    return loss, metric_of(data.task, outputs, y)


def metric_of(task: str, outputs: torch.Tensor, y: torch.Tensor) -> float:
    """The metric of a model's outputs (scaled targets, or class scores) against ``y``.

    Accuracy for classification; R² for regression, which the target's scaling leaves as it is.
    """
    if task == Task.CLASSIFICATION:
        return float((outputs.argmax(1) == y).float().mean())
    residual = ((outputs.reshape(-1) - y) ** 2).sum()
    total = ((y - y.mean()) ** 2).sum()
    return float(1.0 - residual / total)


#: Validation rows of one timed forward pass (:func:`inference_latency`).
LATENCY_ROWS = 256


@torch.no_grad()
def inference_latency(
    model: nn.Module, data: DeviceData, repeats: int = 5, *, precision: str = Precision.FLOAT32
) -> float:
    """Median seconds of one forward pass over :data:`LATENCY_ROWS` validation rows.

    One untimed pass first, so that lazy initialisation and caches are not counted; on a GPU
    each pass is synchronised, so the time is the computation's, not the launch's. The passes
    run in ``precision``, as the candidate trained.
    """
    model.eval()
    batch = {k: v[:LATENCY_ROWS] for k, v in data.val_x.items()}
    cuda = data.val_y.device.type == "cuda"
    times = []
    with forward_precision(precision, data.val_y.device):
        model(batch)
        for _ in range(repeats):
            tic = time.perf_counter()
            model(batch)
            if cuda:
                torch.cuda.synchronize(data.val_y.device)
            times.append(time.perf_counter() - tic)
    return sorted(times)[len(times) // 2]


def train_epoch(  # noqa: PLR0913  # the loop's inputs, then its precision by keyword
    model: nn.Module,
    data: DeviceData,
    optimizer: torch.optim.Optimizer | None,
    batch_size: int,
    generator: torch.Generator,
    *,
    precision: str = Precision.FLOAT32,
) -> float:
    """One pass over the training rows in a random order; returns the mean training loss.

    Parameters
    ----------
    model : torch.nn.Module
    data : DeviceData
        The splits, already on the training device; batches are indexed there.
    optimizer : torch.optim.Optimizer or None
        None when nothing trains (every parameter frozen): the loss is still measured.
    batch_size : int
    generator : torch.Generator
        Draws the batch order; it must be on the data's device.
    precision : {"float32", "bfloat16"}
        Of the forward passes (see :func:`forward_precision`); the loss is float32.

    Returns
    -------
    float
        The mean training loss over the epoch's rows.
    """
    model.train()
    loss_fn = _loss_fn(data.task)
    device = data.train_y.device
    n = len(data.train_y)
    # Drawn on the data's device, so that batches are gathered there: no host copy per batch.
    order = torch.randperm(n, device=device, generator=generator)
    total = torch.zeros((), device=device)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        with forward_precision(precision, device):
            out = model({k: v[index] for k, v in data.train_x.items()})
        loss = loss_fn(out.float(), data.train_y[index])
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        # Accumulate on the device: one host synchronisation per epoch, not per batch.
        total += loss.detach() * len(index)
    return float(total) / n


class CurveTuples(TypedDict):
    """The per-epoch curves as result records hold them."""

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_metric: tuple[float, ...]
    epoch_time: tuple[float, ...]


@dataclass
class Curves:
    """What each epoch of one training run measured, in order."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    #: Seconds of the epoch's training pass and validation together.
    epoch_time: list[float] = field(default_factory=list)

    def fit_epoch(  # noqa: PLR0913  # train_epoch's inputs, precision by keyword
        self,
        model: nn.Module,
        data: DeviceData,
        optimizer: torch.optim.Optimizer | None,
        batch_size: int,
        generator: torch.Generator,
        *,
        precision: str = Precision.FLOAT32,
    ) -> tuple[float, float, float]:
        """Train one epoch, validate, record both; returns the three losses and metric.

        ``precision`` is that of the forward passes (see :func:`train_epoch`).
        """
        tic = time.perf_counter()
        train_loss = train_epoch(model, data, optimizer, batch_size, generator, precision=precision)
        val_loss, val_metric = evaluate(model, data, precision=precision)
        self.train_loss.append(train_loss)
        self.val_loss.append(val_loss)
        self.val_metric.append(val_metric)
        self.epoch_time.append(time.perf_counter() - tic)
        return train_loss, val_loss, val_metric

    def as_tuples(self) -> CurveTuples:
        """The curves as the tuples that result records hold, by name."""
        return CurveTuples(
            train_loss=tuple(self.train_loss),
            val_loss=tuple(self.val_loss),
            val_metric=tuple(self.val_metric),
            epoch_time=tuple(self.epoch_time),
        )
