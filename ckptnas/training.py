"""Training one candidate: what runs on a Dask worker.

:func:`train_candidate` builds the candidate's network, copies in the tensors its plan names
from the donor's checkpoint, trains it, saves its checkpoint and returns a
:class:`~ckptnas.records.CandidateResult`. The dataset is built once per worker process and kept,
on the training device, for every later candidate (see :class:`DataPlugin`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TypedDict

import numpy as np
import torch
from distributed import WorkerPlugin
from torch import nn

from ckptnas.config import DataConfig
from ckptnas.data import TabularData, load_data
from ckptnas.errors import CheckpointError
from ckptnas.records import CandidateResult, CandidateSpec
from ckptnas.space import SearchSpace
from ckptnas.store import CheckpointStore
from ckptnas.transfer import SCRATCH, apply_plan

#: Data built in this process, by :func:`data_key`.
_DATA: dict[str, TabularData] = {}
#: The same data as tensors on a device, by (key, device).
_TENSORS: dict[tuple[str, str], DeviceData] = {}

_EVAL_CHUNK = 8192


def data_key(config: DataConfig, seed: int) -> str:
    """A key naming one dataset exactly: its configuration and its seed."""
    return json.dumps({"config": asdict(config), "seed": seed}, sort_keys=True)


def get_data(key: str) -> TabularData:
    """The dataset of a key, built on first use in this process and then kept."""
    if key not in _DATA:
        spec = json.loads(key)
        _DATA[key] = load_data(DataConfig(**spec["config"]), seed=spec["seed"])
    return _DATA[key]


class DataPlugin(WorkerPlugin):
    """Build the run's dataset when a worker starts, so no task pays for it or ships it.

    Dask re-applies plugins to a worker that restarts, so a replaced worker is ready too.
    """

    name = "ckptnas-data"

    def __init__(self, key: str) -> None:
        self.key = key

    def setup(self, worker: object) -> None:
        get_data(self.key)


def choose_device(setting: str) -> torch.device:
    """``cuda`` when asked for or when ``auto`` finds a GPU, else ``cpu``.

    Where a worker sees several GPUs (a LocalCluster on a multi-GPU node, whose workers are
    named 0, 1, ...), worker ``i`` takes GPU ``i`` modulo their number, so each GPU is used.
    Workers started by dask-cuda see one GPU each and take it.
    """
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        count = torch.cuda.device_count()
        name = worker_name()
        if count > 1 and name.isdigit():
            return torch.device("cuda", int(name) % count)
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass(frozen=True)
class DeviceData:
    """A dataset's splits as tensors on the training device."""

    train_x: dict[str, torch.Tensor]
    train_y: torch.Tensor
    val_x: dict[str, torch.Tensor]
    val_y: torch.Tensor
    task: str

    @classmethod
    def of(cls, key: str, device: torch.device) -> DeviceData:
        """The tensors of a dataset on a device, moved there once per process."""
        cache_key = (key, str(device))
        if cache_key not in _TENSORS:
            data = get_data(key)
            (tx, ty), (vx, vy) = data.split("train"), data.split("val")

            def move(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
                return {k: torch.as_tensor(v).to(device) for k, v in d.items()}

            _TENSORS[cache_key] = cls(
                move(tx),
                torch.as_tensor(ty).to(device),
                move(vx),
                torch.as_tensor(vy).to(device),
                data.task,
            )
        return _TENSORS[cache_key]


def seed_weights(seed: int) -> None:
    """Seed the generator that initialises a network's weights.

    Networks are built on the CPU and then moved, so only the CPU generator matters (the batch
    order has a generator of its own). :func:`torch.manual_seed` would also queue a seed for
    every accelerator backend not yet started, formatting a stack trace for each: most of a
    millisecond per candidate on a Dask worker.
    """
    torch.default_generator.manual_seed(seed)


def worker_name() -> str:
    """The Dask worker running this code, or ``local`` outside a worker."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:
        return "local"


def _loss_fn(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task == "classification":
        return nn.functional.cross_entropy
    return lambda out, y: nn.functional.mse_loss(out.squeeze(1), y)


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceData) -> tuple[float, float]:
    """Validation loss and metric: R² for regression, accuracy for classification."""
    model.eval()
    n = len(data.val_y)
    outputs = torch.cat(
        [
            model({k: v[i : i + _EVAL_CHUNK] for k, v in data.val_x.items()})
            for i in range(0, n, _EVAL_CHUNK)
        ]
    )
    loss = float(_loss_fn(data.task)(outputs, data.val_y))
    if data.task == "classification":
        metric = float((outputs.argmax(1) == data.val_y).float().mean())
    else:
        residual = ((outputs.squeeze(1) - data.val_y) ** 2).sum()
        total = ((data.val_y - data.val_y.mean()) ** 2).sum()
        metric = float(1.0 - residual / total)
    return loss, metric


def train_epoch(
    model: nn.Module,
    data: DeviceData,
    optimizer: torch.optim.Optimizer | None,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over the training rows in a random order; returns the mean training loss."""
    model.train()
    loss_fn = _loss_fn(data.task)
    n = len(data.train_y)
    order = torch.randperm(n, device=data.train_y.device, generator=generator)
    total = torch.zeros((), device=data.train_y.device)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        out = model({k: v[index] for k, v in data.train_x.items()})
        loss = loss_fn(out, data.train_y[index])
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

    def fit_epoch(
        self,
        model: nn.Module,
        data: DeviceData,
        optimizer: torch.optim.Optimizer | None,
        batch_size: int,
        generator: torch.Generator,
    ) -> tuple[float, float, float]:
        """Train one epoch, validate, record both; returns the three losses and metric."""
        tic = time.perf_counter()
        train_loss = train_epoch(model, data, optimizer, batch_size, generator)
        val_loss, val_metric = evaluate(model, data)
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
    start = time.time()
    device = choose_device(spec.settings.device)
    data = DeviceData.of(spec.data_key, device)
    space = SearchSpace.from_dict(spec.space)
    seed_weights(spec.seed)
    model = space.build(spec.arch).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    started = CandidateResult(
        candidate_id=spec.candidate_id,
        status="running",
        n_params=n_params,
        worker=worker_name(),
        device=str(device),
        start_time=start,
        plan=spec.plan,
    )
    store = CheckpointStore(spec.run_dir)
    if spec.plan.is_warm:
        assert spec.plan.donor is not None
        try:
            tensors = store.load(spec.plan.donor, spec.plan.tensors, spec.donor_digest, device)
        except CheckpointError as exc:
            return replace(started, status="donor_failed", error=str(exc), end_time=time.time())
        apply_plan(model, tensors, spec.plan, spec.settings.freeze)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=spec.settings.learning_rate) if trainable else None
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    curves = Curves()
    status, error = "ok", ""
    for epoch in range(1, spec.settings.epochs + 1):
        measured = curves.fit_epoch(model, data, optimizer, spec.settings.batch_size, generator)
        if not all(math.isfinite(v) for v in measured):
            status, error = "failed", f"diverged: loss is not finite at epoch {epoch}"
            break
    digest = store.save(spec.candidate_id, model.state_dict()) if status == "ok" else None
    return replace(
        started,
        status=status,
        error=error,
        plan=spec.plan if spec.plan.is_warm else SCRATCH,
        checkpoint_digest=digest,
        end_time=time.time(),
        **curves.as_tuples(),
    )
