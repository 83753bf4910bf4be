"""Helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from distributed import Client

from ckptnas.runtime import CandidateResult
from ckptnas.search import SCRATCH, TransferPlan
from ckptnas.space import SearchSpace


def shared_layers_by_hand(space: SearchSpace, r: tuple[int, ...], d: tuple[int, ...]) -> list[str]:
    """The layers two architectures share, worked out from their choices alone.

    A branch layer is shared while every earlier choice of its branch agrees; trunk layers are
    shared only when every branch agrees, and then while ops and skips agree in order; the head
    only when everything agrees.
    """
    names = [n.name for n in space.nodes]
    rc, dc = dict(zip(names, r, strict=True)), dict(zip(names, d, strict=True))
    shared: list[str] = []
    branches_equal = True
    for branch, _ in space.branches:
        for k in range(space.input_nodes):
            node = f"branches.{branch}.{k}"
            if rc[node] != dc[node]:
                branches_equal = False
                break
            if rc[node] != 0:
                shared.append(node)
    if not branches_equal:
        return shared
    for i in range(space.num_nodes):
        node = f"trunk.{i}"
        if rc[node] != dc[node]:
            return shared
        if rc[node] != 0:
            shared.append(node)
        if rc.get(f"{node}.skip", 0) != dc.get(f"{node}.skip", 0):
            return shared
    return [*shared, "head"]


def one_epoch_result(
    candidate_id: int, metric: float = 0.5, plan: TransferPlan = SCRATCH
) -> CandidateResult:
    """A successful one-epoch result, as a worker would report it."""
    return CandidateResult(
        candidate_id=candidate_id,
        status="ok",
        train_loss=(1.0,),
        val_loss=(1.0,),
        val_metric=(metric,),
        epoch_time=(0.1,),
        n_params=10,
        plan=plan,
    )


def recorded_search(
    run_dir: Path,
    n: int,
    seed: int = 0,
    failed: Sequence[int] = (),
    pending: Sequence[int] = (),
) -> Path:
    """A run directory whose registry holds ``n`` candidates of a real space, without training.

    Each candidate after the first four is a mutation of a random earlier successful one and
    inherits from it by a real transfer plan (or trains from scratch when the plan is empty).
    Candidate ``i`` is submitted at ``1.7e9 + i`` seconds and trains for 2.5 s from 0.1 s
    later, on one of three workers. Ids in
    ``failed`` end failed, ids in ``pending`` are left in flight.
    """
    from conftest import TINY

    from ckptnas.config import config_from_dict
    from ckptnas.search import plan_transfer
    from ckptnas.storage import LineageRegistry, ResultsWriter

    rng = np.random.default_rng(seed)
    config = config_from_dict(TINY).replace("experiment", max_candidates=n)
    space = SearchSpace(
        (("cell", 6), ("drug1", 4), ("drug2", 4)),
        output_size=1,
        num_nodes=3,
        units=(8, 16),
        activations=("relu", "tanh"),
        shared_inputs=(("drug1", "drug2"),),
    )
    meta = {
        "config": config.to_toml(),
        "space": json.dumps(space.to_dict() | {"node_names": [n.name for n in space.nodes]}),
        "dataset": "synthetic_combo",
        "task": "regression",
        "metric": "r2",
        "policy": "lcp",
        "freeze": "0",
        "seed": str(seed),
    }
    start = 1.7e9
    with LineageRegistry(run_dir) as registry:
        registry.set_meta_many(meta)
        done: dict[int, tuple[int, ...]] = {}
        for cid in range(1, n + 1):
            arch, plan = space.sample(rng), SCRATCH
            if cid > 4 and done:  # as an evolution would: a mutation of an earlier candidate
                donor = int(rng.choice(list(done)))
                arch = space.mutate(done[donor], rng, 2.0)
                plan = plan_transfer(space, arch, done[donor], donor)
            assert registry.add_candidate(arch, plan, space.n_params(arch)) == cid
            if cid in pending:
                continue
            metric = float(rng.uniform(0.2, 0.6))
            status = "failed" if cid in failed else "ok"
            registry.record(
                CandidateResult(
                    candidate_id=cid,
                    status=status,
                    train_loss=(1.0, 0.8),
                    val_loss=(1.0, 0.9),
                    val_metric=(metric - 0.1, metric if status == "ok" else math.nan),
                    epoch_time=(0.1, 0.1),
                    n_params=space.n_params(arch),
                    worker=f"worker-{cid % 3}",
                    start_time=start + cid + 0.1,
                    end_time=start + cid + 2.6,
                    plan=plan,
                    error="diverged" if status == "failed" else "",
                )
            )
            if status == "ok":
                done[cid] = arch
    # One submission a second, as a clock would have stamped them (the registry stamps now).
    with contextlib.closing(sqlite3.connect(run_dir / LineageRegistry.FILE)) as db, db:
        db.execute("UPDATE candidates SET submit_time = ? + id", (start,))
    with LineageRegistry(run_dir) as registry:
        ResultsWriter(run_dir, registry, 2).flush()
    return run_dir


def netcdf_search(root: Path, client: Client, x: np.ndarray, y: np.ndarray) -> Path:
    """``root/run``: a finished 2-candidate search of the tiny configuration on ``x`` and ``y``.

    They are written as ``root/data.nc``: ``x(sample, feature)`` and ``y(sample)``.
    """
    from conftest import TINY

    from ckptnas.config import config_from_dict
    from ckptnas.runtime import Experiment

    xr.Dataset({"x": (("sample", "feature"), x), "y": (("sample",), y)}).to_netcdf(root / "data.nc")
    config = (
        config_from_dict(TINY)
        .replace("data", kind="netcdf", path=str(root / "data.nc"), inputs=["x"], target="y")
        .replace("space", shared_inputs=[])
        .replace("experiment", max_candidates=2)
    )
    Experiment(config, root / "run", progress=False).run(client)
    return root / "run"
