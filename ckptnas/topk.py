"""Full training of a search's best candidates, from random weights or from their checkpoints.

:func:`train_topk` takes the ``k`` candidates of a finished search with the highest objective
and trains each to convergence (early stopping on the validation loss) on the Dask cluster,
either from random weights (``scratch``) or from the weights the search left in the candidate's
checkpoint (``checkpoint``). Each run is recorded in ``topk.sqlite``
(:class:`~ckptnas.topk_registry.TopKRegistry`), its best weights are saved under
``topk/<init>/checkpoints/``, and ``topk.nc`` (:mod:`ckptnas.topk_results`) is rewritten from
the record with the per-epoch curves, the time each run took to reach the target (the scratch
run's final validation metric of the same candidate) and the speed-up.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import xarray as xr
from distributed import Client, as_completed
from tqdm.auto import tqdm

from ckptnas.cluster import connect
from ckptnas.config import Config, load_config
from ckptnas.errors import CheckpointError, ConfigError, RunDirectoryError
from ckptnas.lineage import LineageRegistry
from ckptnas.results import write_dataset
from ckptnas.rundir import CONFIG_FILE, run_lock
from ckptnas.runner import candidate_seed
from ckptnas.space import Architecture, SearchSpace
from ckptnas.store import CheckpointStore
from ckptnas.topk_registry import INITS, TopKRegistry
from ckptnas.topk_results import TOPK_FILE, build_topk_dataset
from ckptnas.training import (
    Curves,
    DataPlugin,
    DeviceData,
    choose_device,
    data_key,
    seed_weights,
    worker_name,
)


@dataclass(frozen=True)
class TopKSettings:
    """How the best candidates are fully trained.

    Attributes
    ----------
    k : int
        How many of the search's best candidates.
    max_epochs : int
        Epochs at most per run.
    patience : int
        Stop after this many epochs without a lower validation loss.
    min_delta : float
        An improvement must lower the validation loss by more than this.
    """

    k: int = 5
    max_epochs: int = 50
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        for name in ("k", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"top-K {name} = {getattr(self, name)} must be >= 1")
        if self.min_delta < 0:
            raise ConfigError(f"top-K min_delta = {self.min_delta} must be >= 0")


@dataclass(frozen=True)
class FullTrainSpec:
    """Everything a worker needs for one full-training run."""

    run_id: int
    candidate_id: int
    init: str
    arch: Architecture
    space: dict[str, Any]
    run_dir: str
    data_key: str
    source_digest: str | None
    seed: int
    max_epochs: int
    patience: int
    min_delta: float
    batch_size: int
    learning_rate: float
    device: str = "auto"


@dataclass(frozen=True)
class FullTrainResult:
    """What one full-training run produced; curves hold one value per epoch trained."""

    run_id: int
    candidate_id: int
    init: str
    status: str
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    val_metric: tuple[float, ...] = ()
    epoch_time: tuple[float, ...] = ()
    best_epoch: int = 0
    final_metric: float = math.nan
    setup_time: float = math.nan
    n_params: int = 0
    checkpoint_digest: str | None = None
    worker: str = ""
    device: str = ""
    start_time: float = math.nan
    end_time: float = math.nan
    error: str = ""


def topk_store(run_dir: str | Path, init: str) -> CheckpointStore:
    """Where the fully trained weights of one init go: ``topk/<init>/checkpoints/``."""
    return CheckpointStore(Path(run_dir) / "topk" / init)


def full_train(spec: FullTrainSpec) -> FullTrainResult:
    """Train one candidate to convergence; the function Dask runs on a worker.

    The validation loss is checked after every epoch; training stops after ``patience`` epochs
    without improvement (or at ``max_epochs``), and the weights of the best epoch are kept,
    saved and scored: ``final_metric`` is the validation metric of that epoch. ``setup_time``
    (building the model and, for ``checkpoint``, reading and verifying the checkpoint) counts
    towards the run's wall time.
    """
    start = time.time()
    tic = time.perf_counter()
    device = choose_device(spec.device)
    data = DeviceData.of(spec.data_key, device)
    seed_weights(spec.seed)
    model = SearchSpace.from_dict(spec.space).build(spec.arch).to(device)
    base = FullTrainResult(
        spec.run_id,
        spec.candidate_id,
        spec.init,
        "running",
        n_params=sum(p.numel() for p in model.parameters()),
        worker=worker_name(),
        device=str(device),
        start_time=start,
    )
    if spec.init == "checkpoint":
        try:
            tensors = CheckpointStore(spec.run_dir).load(
                spec.candidate_id, digest=spec.source_digest, device=device
            )
            model.load_state_dict(tensors)
        except (CheckpointError, RuntimeError) as exc:
            return replace(base, status="failed", error=str(exc)[:2000], end_time=time.time())
    setup_time = time.perf_counter() - tic
    curves, best = _fit(model, data, spec)
    status = "ok" if best is not None else "failed"
    digest = None
    if best is not None:
        model.load_state_dict(best[1])
        digest = topk_store(spec.run_dir, spec.init).save(spec.candidate_id, model.state_dict())
    return replace(
        base,
        status=status,
        error="" if best is not None else "diverged: the validation loss was never finite",
        best_epoch=best[0] if best else 0,
        final_metric=curves.val_metric[best[0] - 1] if best else math.nan,
        setup_time=setup_time,
        checkpoint_digest=digest,
        end_time=time.time(),
        **curves.as_tuples(),
    )


def _fit(
    model: torch.nn.Module, data: DeviceData, spec: FullTrainSpec
) -> tuple[Curves, tuple[int, dict[str, torch.Tensor]] | None]:
    """The early-stopped fit loop: per-epoch curves and (best epoch, its weights)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    generator = torch.Generator(device=data.train_y.device).manual_seed(spec.seed)
    curves = Curves()
    best: tuple[int, dict[str, torch.Tensor]] | None = None
    best_loss, waited = math.inf, 0
    for epoch in range(1, spec.max_epochs + 1):
        _, val_loss, _ = curves.fit_epoch(model, data, optimizer, spec.batch_size, generator)
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


def _specs(
    run_dir: Path,
    config: Config,
    registry: TopKRegistry,
    lineage: LineageRegistry,
    settings: TopKSettings,
    inits: Sequence[str],
) -> list[FullTrainSpec]:
    """Register and describe the runs still to do: the best ``k`` candidates times ``inits``."""
    ok = [r for r in lineage.candidates("ok") if math.isfinite(r.objective)]
    best = sorted(ok, key=lambda r: (-r.objective, r.id))[: settings.k]
    space = json_space(lineage)
    key = data_key(config.data, config.experiment.seed)
    specs = []
    for record in best:
        seed = candidate_seed(config.experiment.seed + 1_000_003, record.id)
        for init in inits:
            done = registry.find(record.id, init)
            if done is not None and done.status == "ok":
                continue
            digest = record.checkpoint_digest if init == "checkpoint" else None
            run_id = registry.start(
                record.id,
                init,
                search_objective=record.objective,
                source_digest=digest,
                ancestors=lineage.ancestors(record.id),
                seed=seed,
                max_epochs=settings.max_epochs,
                patience=settings.patience,
            )
            specs.append(
                FullTrainSpec(
                    run_id=run_id,
                    candidate_id=record.id,
                    init=init,
                    arch=record.arch,
                    space=space,
                    run_dir=str(run_dir.resolve()),
                    data_key=key,
                    source_digest=digest,
                    seed=seed,
                    max_epochs=settings.max_epochs,
                    patience=settings.patience,
                    min_delta=settings.min_delta,
                    batch_size=config.training.batch_size,
                    learning_rate=config.training.learning_rate,
                    device=config.training.device,
                )
            )
    return specs


def json_space(lineage: LineageRegistry) -> dict[str, Any]:
    """The search space a run recorded, as :meth:`SearchSpace.to_dict` wrote it."""
    meta: dict[str, Any] = json.loads(lineage.get_meta("space") or "{}")
    meta.pop("node_names", None)
    if not meta:
        raise RunDirectoryError(f"{lineage.path} records no search space")
    return meta


def train_topk(
    run_dir: str | Path,
    settings: TopKSettings,
    inits: Sequence[str] = INITS,
    client: Client | None = None,
    config: Config | None = None,
    progress: bool = True,
) -> xr.Dataset:
    """Fully train a search's best candidates and write ``topk.nc``.

    Parameters
    ----------
    run_dir : str or Path
        A finished (or stopped) search's run directory.
    settings : TopKSettings
    inits : sequence of {"scratch", "checkpoint"}
        Which initialisations to run; runs already finished are not repeated.
    client : distributed.Client, optional
        Use this cluster; by default one is started as the run's ``[cluster]`` table says.
    config : Config, optional
        Overrides the run's recorded configuration (its ``[cluster]`` table, say).
    progress : bool

    Returns
    -------
    xarray.Dataset
        The content of ``topk.nc`` (see :func:`~ckptnas.topk_results.build_topk_dataset`).

    Raises
    ------
    RunDirectoryError
        If the directory holds no search, or another ckptnas process is using it.
    """
    run_dir = Path(run_dir)
    unknown = [i for i in inits if i not in INITS]
    if unknown:
        raise ConfigError(f"unknown init {unknown[0]!r}; known: {', '.join(INITS)}")
    if not (run_dir / "lineage.sqlite").is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise RunDirectoryError(f"{str(run_dir)!r} holds no search (lineage.sqlite, config.toml)")
    config = config or load_config(run_dir / CONFIG_FILE)
    with (
        run_lock(run_dir),
        LineageRegistry(run_dir, readonly=True) as lineage,
        TopKRegistry(run_dir) as registry,
    ):
        if not lineage.candidates("ok"):
            raise RunDirectoryError(f"{str(run_dir)!r} has no successfully trained candidate")
        specs = _specs(run_dir, config, registry, lineage, settings, inits)
        if specs and client is None:
            with connect(config) as own:
                _submit_all(own, specs, registry, progress)
        elif specs:
            assert client is not None
            _submit_all(client, specs, registry, progress)
        ds = build_topk_dataset(run_dir, registry, lineage)
    write_dataset(ds, run_dir / TOPK_FILE)
    return ds


def _submit_all(
    client: Client, specs: list[FullTrainSpec], registry: TopKRegistry, progress: bool
) -> None:
    """Run the specs on the cluster, at most two per worker at a time, recording each result."""
    client.register_plugin(DataPlugin(specs[0].data_key))
    workers = client.scheduler_info()["workers"].values()
    window = 2 * max(1, len(workers))
    gpu = any("GPU" in w.get("resources", {}) for w in workers)
    spec_of = {_key(s): s for s in specs}
    todo = list(reversed(specs))
    queue = as_completed()
    bar = tqdm(total=len(specs), desc="full training", disable=not progress, file=sys.stderr)

    def submit() -> None:
        spec = todo.pop()
        queue.add(
            client.submit(
                full_train,
                spec,
                key=_key(spec),
                pure=False,
                retries=1,
                resources={"GPU": 1} if gpu else None,
            )
        )

    for _ in range(min(window, len(todo))):
        submit()
    for future in queue:
        spec = spec_of[future.key]
        if future.status == "error":
            exc = future.exception()
            result = FullTrainResult(
                spec.run_id, spec.candidate_id, spec.init, "failed", error=f"{exc!r}"[:2000]
            )
        else:
            result = future.result()
        future.release()
        registry.finish(spec.run_id, result)
        bar.update(1)
        if todo:
            submit()
    bar.close()


def _key(spec: FullTrainSpec) -> str:
    return f"topk-{spec.candidate_id}-{spec.init}-{spec.run_id}"
