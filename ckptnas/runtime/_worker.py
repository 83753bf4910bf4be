"""What every task on a worker starts with: the dataset, the device, a seeded fresh network.

The dataset is built once per worker process and kept, on the training device, for every later
task (see :class:`DataPlugin`); the client learns its shapes from a worker
(:func:`describe_data`) instead of building it too. :func:`prepare` is the set-up shared by
candidate training (:func:`~ckptnas.runtime.train_candidate`) and top-K full training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from distributed import Client, WorkerPlugin
from torch import nn

from ckptnas.config import DataConfig, Device
from ckptnas.data import DataDescription, TabularData, load_data
from ckptnas.errors import DataError
from ckptnas.runtime._allocator import keep_freed_memory
from ckptnas.runtime._records import WorkerTask
from ckptnas.space import space_from_dict
from ckptnas.storage import TensorCache

logger = logging.getLogger(__name__)

#: Donor tensors this worker process read lately (see :class:`~ckptnas.storage.TensorCache`).
#: 256 MiB holds the whole of ~60 quickstart-sized donors (1 MiB or so each) and is small
#: beside a worker's memory.
DONOR_CACHE_BYTES = 256 * 2**20
_DONOR_CACHE: TensorCache | None = None


def donor_cache() -> TensorCache:
    """This process's cache of donor tensors, made on first use."""
    global _DONOR_CACHE  # noqa: PLW0603  # one cache per worker process
    if _DONOR_CACHE is None:
        _DONOR_CACHE = TensorCache(DONOR_CACHE_BYTES)
    return _DONOR_CACHE


def donor_cache_counts() -> tuple[int, int]:
    """Donor tensors this process served from memory and read from files (for ``client.run``)."""
    stats = donor_cache().stats()
    return stats.hits, stats.misses


def donor_cache_totals(client: Client) -> tuple[int, int]:
    """Donor tensor reads all workers served from memory and from files, so far."""
    try:
        counts = client.run(donor_cache_counts).values()
    except (OSError, TimeoutError):  # a worker gone meanwhile: nothing worth failing for
        return 0, 0
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def log_donor_cache(client: Client, before: tuple[int, int]) -> None:
    """Say how many donor tensor reads since ``before`` came from workers' memory (``-v``)."""
    hits, misses = donor_cache_totals(client)
    hits, misses = hits - before[0], misses - before[1]
    if hits + misses > 0:
        logger.info(
            "donor cache: %d of %d donor tensor reads served from workers' memory (%.0f%%)",
            hits,
            hits + misses,
            100 * hits / (hits + misses),
        )


#: Data built in this process, by :func:`data_key`.
_DATA: dict[str, TabularData] = {}
#: The same data as tensors on a device, by (key, device).
_TENSORS: dict[tuple[str, str], DeviceData] = {}


def data_key(config: DataConfig, seed: int) -> str:
    """A key naming one dataset exactly: its configuration and its seed."""
    return json.dumps({"config": asdict(config), "seed": seed}, sort_keys=True)


def get_data(key: str) -> TabularData:
    """The dataset of a key, built on first use in this process and then kept."""
    if key not in _DATA:
        spec = json.loads(key)
        _DATA[key] = load_data(DataConfig(**spec["config"]), seed=spec["seed"])
    return _DATA[key]


def describe_data(key: str) -> DataDescription | str:
    """The description of a key's dataset, or why the dataset cannot be built (a task).

    The dataset is built in this process at most once (:func:`get_data`), so the worker that
    answers keeps it for training. A :class:`~ckptnas.errors.DataError` comes back as its
    message instead of being raised: a raised one, Dask logs on the worker as "Compute Failed"
    with its traceback, under the client's one-line error.
    """
    try:
        return get_data(key).describe()
    except DataError as exc:
        return str(exc)


class DataPlugin(WorkerPlugin):
    """Build the run's dataset when a worker starts, so no task pays for it or ships it.

    Dask re-applies plugins to a worker that restarts, so a replaced worker is ready too. A
    dataset that cannot be built is left for :func:`describe_data` to report, once, to the
    client: raised here, each worker would log it with its traceback.
    """

    name = "ckptnas-data"

    def __init__(self, key: str) -> None:
        self.key = key

    def setup(self, worker: object) -> None:
        with contextlib.suppress(DataError):
            get_data(self.key)


def space_loads(space: dict[str, Any]) -> str:
    """Rebuild a task's search space as :func:`prepare` does: ``""``, or why it failed."""
    try:
        space_from_dict(space, trust_code=True)
    except Exception as exc:  # whatever unpickling the user's code raises
        return f"{type(exc).__name__}: {exc}"
    return ""


def what_fails_to_load(space: dict[str, Any] | None, pickled: dict[str, bytes]) -> dict[str, str]:
    """What this worker cannot rebuild of what a run sends it: ``{what: error}``, or empty.

    ``space`` (a pickled space's description, or ``None``) is rebuilt as :func:`prepare` does;
    each of ``pickled`` (the trainer, by name) is unpickled as Dask unpickles a task's function,
    which imports the modules it was defined in.
    """
    failed = {"search space": space_loads(space)} if space is not None else {}
    for what, payload in pickled.items():
        try:
            pickle.loads(payload)  # the client's own trainer, as Dask would load it
        except Exception as exc:  # whatever importing the user's module raises
            failed[what] = f"{type(exc).__name__}: {exc}"
    return {what: error for what, error in failed.items() if error}


def choose_device(setting: str) -> torch.device:
    """``cuda`` when asked for or when ``auto`` finds a GPU, else ``cpu``.

    Where a worker sees several GPUs (a LocalCluster on a multi-GPU node, whose workers are
    named 0, 1, ...), worker ``i`` takes GPU ``i`` modulo their number, so each GPU is used.
    Workers started by dask-cuda see one GPU each and take it.
    """
    if setting == Device.CUDA or (setting == Device.AUTO and torch.cuda.is_available()):
        count = torch.cuda.device_count()
        name = worker_name()
        if count > 1 and name.isdigit():
            return torch.device("cuda", int(name) % count)
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass(frozen=True)
class DeviceData:
    """A dataset's splits as tensors on the training device.

    The test split is there for scoring finished models only (top-K full training); training
    and everything that chooses between candidates use the other two.
    """

    train_x: dict[str, torch.Tensor]
    train_y: torch.Tensor
    val_x: dict[str, torch.Tensor]
    val_y: torch.Tensor
    task: str
    test_x: dict[str, torch.Tensor] = field(default_factory=dict)
    test_y: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    @classmethod
    def of(cls, key: str, device: torch.device) -> DeviceData:
        """The tensors of a dataset on a device, moved there once per process."""
        cache_key = (key, str(device))
        if cache_key not in _TENSORS:
            data = get_data(key)
            (tx, ty), (vx, vy) = data.split("train"), data.split("val")
            test_x, test_y = data.split("test")

            def move(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
                return {k: torch.as_tensor(v).to(device) for k, v in d.items()}

            _TENSORS[cache_key] = cls(
                move(tx),
                torch.as_tensor(ty).to(device),
                move(vx),
                torch.as_tensor(vy).to(device),
                data.task,
                move(test_x),
                torch.as_tensor(test_y).to(device),
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


@dataclass(frozen=True)
class Prepared:
    """A task's starting point on a worker: where it runs, its data and its fresh network."""

    device: torch.device
    data: DeviceData
    model: nn.Module
    n_params: int
    worker: str
    #: When the task started (seconds since the epoch).
    start_time: float


def prepare(task: WorkerTask, device: str) -> Prepared:
    """Pick the device, fetch the dataset there and build the task's network, seeded.

    Parameters
    ----------
    task : WorkerTask
        Its dataset (built on this worker at most once), architecture, space and seed.
    device : {"auto", "cpu", "cuda"}
    """
    start = time.time()
    keep_freed_memory()  # whoever started this worker, its epochs run as in a bare loop
    where = choose_device(device)
    data = DeviceData.of(task.data_key, where)
    seed_weights(task.seed)
    # The client sent the space: it trusted the run when it read the space itself.
    model = space_from_dict(task.space, trust_code=True).build(task.arch).to(where)
    n_params = sum(p.numel() for p in model.parameters())
    return Prepared(where, data, model, n_params, worker_name(), start)
