"""Full training of a search's best candidates, from random weights or from their checkpoints.

:func:`train_topk` takes the ``k`` candidates of a finished search with the highest objective
and trains each to convergence (early stopping on the validation loss) on the Dask cluster,
either from random weights (``scratch``) or from the weights the search left in the candidate's
checkpoint (``checkpoint``). Each run is recorded in ``topk.sqlite``
(:class:`~ckptnas.storage.TopKRegistry`), its best weights are saved under
``topk/<init>/``, and ``topk.nc`` (:func:`ckptnas.storage.build_topk_dataset`) is
rewritten from the record with the per-epoch curves, the time each run took to reach the target
(the scratch run's final validation metric of the same candidate) and the speed-up.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import xarray as xr
from distributed import Client
from tqdm.auto import tqdm

from ckptnas.config import Config, Precision
from ckptnas.errors import CheckpointDeletedError, ConfigError, RunDirectoryError
from ckptnas.runtime import Submitter, candidate_seed, connect, data_key, describe_on_cluster
from ckptnas.space import space_from_dict
from ckptnas.storage import (
    INITS,
    CandidateRecord,
    CandidateStatus,
    Init,
    LineageRegistry,
    RunDir,
    TopKRegistry,
    build_topk_dataset,
    deleted_message,
    recorded_config,
    write_dataset,
)
from ckptnas.topk._records import FullTrainResult, FullTrainSpec, TopKSettings
from ckptnas.topk._train import full_train


def _specs(
    config: Config,
    registry: TopKRegistry,
    lineage: LineageRegistry,
    settings: TopKSettings,
    inits: Sequence[Init],
) -> list[FullTrainSpec]:
    """Register and describe the runs still to do: the best ``k`` candidates times ``inits``."""
    ok = [r for r in lineage.candidates(CandidateStatus.OK) if math.isfinite(r.objective)]
    best = sorted(ok, key=lambda r: (-r.objective, r.id))[: settings.k]
    _refuse_deleted(registry, best, inits)
    space = lineage.recorded_space()
    key = data_key(config.data, config.experiment.seed)
    specs = []
    for record in best:
        seed = candidate_seed(config.experiment.seed + 1_000_003, record.id)
        # A candidate trains on with the hyperparameters the search found for it.
        searched = record.hyperparameters
        for init in inits:
            done = registry.find(record.id, init)
            if done is not None and done.status == CandidateStatus.OK:
                continue
            digest = record.checkpoint_digest if init == Init.CHECKPOINT else None
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
                    run_dir=lineage.run_dir.resolved(),
                    data_key=key,
                    source_digest=digest,
                    seed=seed,
                    max_epochs=settings.max_epochs,
                    patience=settings.patience,
                    min_delta=settings.min_delta,
                    batch_size=int(searched.get("batch_size", config.training.batch_size)),
                    learning_rate=searched.get("learning_rate", config.training.learning_rate),
                    device=config.training.device,
                    precision=config.training.precision,
                    weight_decay=searched.get("weight_decay", 0.0),
                    dropout=searched.get("dropout", 0.0),
                )
            )
    return specs


def _refuse_deleted(
    registry: TopKRegistry, best: Sequence[CandidateRecord], inits: Sequence[Init]
) -> None:
    """Refuse, before any run is registered, a checkpoint init of a deleted checkpoint."""
    if Init.CHECKPOINT not in inits:
        return
    for record in best:
        done = registry.find(record.id, Init.CHECKPOINT)
        if record.checkpoint_deleted and (done is None or done.status != CandidateStatus.OK):
            raise CheckpointDeletedError(
                f"{deleted_message(record.id, record.checkpoint_deleted)}; train-topk "
                "--init checkpoint cannot start from it: use --init scratch, or a -k no larger "
                "than the search's [storage] keep_top"
            )


# One keyword per choice a caller makes (which run, how, which inits, on which cluster, with
# which configuration, shown or quiet), each with a default but the first two.
def train_topk(  # noqa: PLR0913
    run_dir: str | Path,
    settings: TopKSettings,
    inits: Sequence[Init] = INITS,
    client: Client | None = None,
    config: Config | None = None,
    progress: bool = True,
    trust_code: bool = False,
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
        Overrides the run's recorded configuration (its ``[cluster]`` table, say); its
        ``[training] precision`` must be the search's.
    progress : bool
    trust_code : bool
        Needed only where the run searched a space object of a user's (recorded as a pickle,
        which the workers unpickle, running its code): only for a run directory you trust.

    Returns
    -------
    xarray.Dataset
        The content of ``topk.nc`` (see :func:`~ckptnas.storage.build_topk_dataset`).

    Raises
    ------
    ConfigError
        If ``config`` asks for another precision than the search's.
    RunDirectoryError
        If the directory holds no search, or another ckptnas process is using it.
    CheckpointDeletedError
        If a checkpoint init would start from a checkpoint the search's ``[storage]`` deleted.
    """
    files = RunDir(run_dir)
    unknown = [i for i in inits if i not in INITS]
    if unknown:
        raise ConfigError(f"unknown init {unknown[0]!r}; known: {', '.join(INITS)}")
    files.require_search()
    config = config or recorded_config(files)
    with (
        files.lock(),
        LineageRegistry(files, readonly=True) as lineage,
        TopKRegistry(files) as registry,
    ):
        _check_search(files, config, lineage, trust_code)
        specs = _specs(config, registry, lineage, settings, inits)
        if specs:
            _run_specs(specs, registry, client, config, progress)
        ds = build_topk_dataset(files, registry, lineage)
    write_dataset(ds, files.topk_results)
    return ds


def _check_search(
    files: RunDir, config: Config, lineage: LineageRegistry, trust_code: bool
) -> None:
    """Refuse a search with nothing to train, in another precision, or of a space not trusted."""
    if not lineage.candidates(CandidateStatus.OK):
        raise RunDirectoryError(f"{str(files)!r} has no successfully trained candidate")
    _check_precision(config, lineage)
    # Refused here, before any worker unpickles it, when the space is code not trusted.
    space_from_dict(lineage.recorded_space(), trust_code)


def _run_specs(
    specs: list[FullTrainSpec],
    registry: TopKRegistry,
    client: Client | None,
    config: Config,
    progress: bool,
) -> None:
    """Run the specs on ``client``, or on a cluster started as ``config`` says if none is given."""
    if client is None:
        with connect(config) as own:
            _run_all(own, specs, registry, progress)
    else:
        _run_all(client, specs, registry, progress)


def _check_precision(config: Config, lineage: LineageRegistry) -> None:
    """Refuse to train in another precision than the search's, which ``topk.nc`` records."""
    searched = lineage.get_meta("precision") or Precision.FLOAT32  # older runs: float32
    if config.training.precision != searched:
        raise ConfigError(
            f"[training] precision = {config.training.precision!r} differs from the search's "
            f"{searched!r}: full training runs in the precision the search recorded"
        )


def _run_all(
    client: Client, specs: list[FullTrainSpec], registry: TopKRegistry, progress: bool
) -> None:
    """Run the specs on the cluster, at most two per worker at a time, recording each result."""
    # Every worker builds the dataset once; one that cannot stops here with its one line.
    describe_on_cluster(client, specs[0].data_key)
    tasks: Submitter[FullTrainSpec, FullTrainResult] = Submitter(
        client, full_train, _task_name, retries=1
    )
    todo = list(reversed(specs))
    bar = tqdm(total=len(specs), desc="full training", disable=not progress, file=sys.stderr)
    while todo and tasks.has_room():
        tasks.submit(todo.pop())
    for outcome in tasks.outcomes():
        spec, result = outcome.spec, outcome.result
        if result is None:
            result = spec.result(CandidateStatus.FAILED, error=outcome.error_text)
        registry.finish(spec.run_id, result)
        bar.update(1)
        while todo and tasks.has_room():
            tasks.submit(todo.pop())
    bar.close()


def _task_name(spec: FullTrainSpec) -> str:
    return f"topk-{spec.candidate_id}-{spec.init}"
