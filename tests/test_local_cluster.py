"""The embedded cluster's workers on a GPU machine: how many, of which kind, asking for what.

The machine's GPUs are faked (no candidate runs): these tests check the workers started.
"""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import pytest
from distributed import LocalCluster

from ckptnas.config import config_from_dict
from ckptnas.runtime import _cluster, connect


class FakeCUDACluster(LocalCluster):
    """Stands for dask-cuda's LocalCUDACluster: a LocalCluster that notes it was chosen."""

    started: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeCUDACluster.started.append(kwargs)
        super().__init__(**{**kwargs, "processes": False})


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cluster, "default_workers", lambda: (1, True))


@pytest.fixture
def dask_cuda_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("dask_cuda")
    module.LocalCUDACluster = FakeCUDACluster  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dask_cuda", module)
    FakeCUDACluster.started.clear()


@pytest.mark.usefixtures("one_gpu")
def test_candidates_per_gpu_starts_that_many_workers_per_gpu_each_asking_one_gpu() -> None:
    config = config_from_dict({"cluster": {"candidates_per_gpu": 3}})
    with connect(config) as client:
        client.wait_for_workers(3)
        workers = client.scheduler_info()["workers"].values()
        assert sorted(w["resources"].get("GPU") for w in workers) == [1, 1, 1]
        assert all(w["nthreads"] == 1 for w in workers)


@pytest.mark.usefixtures("one_gpu", "dask_cuda_installed")
def test_dask_cuda_starts_the_workers_of_one_candidate_per_gpu() -> None:
    with connect(config_from_dict({})) as client:
        client.wait_for_workers(1)
        (worker,) = client.scheduler_info()["workers"].values()
        assert worker["resources"] == {"GPU": 1}
    assert [kw["n_workers"] for kw in FakeCUDACluster.started] == [1]
    assert FakeCUDACluster.started[0]["security"].require_encryption  # still TLS


@pytest.mark.usefixtures("dask_cuda_installed")
def test_several_candidates_per_gpu_or_no_gpu_take_a_plain_local_cluster() -> None:
    assert _cluster._local_cluster_class(gpu=True, candidates_per_gpu=4) is LocalCluster
    assert _cluster._local_cluster_class(gpu=False, candidates_per_gpu=1) is LocalCluster
    assert _cluster._local_cluster_class(gpu=True, candidates_per_gpu=1) is FakeCUDACluster


def test_without_dask_cuda_one_candidate_per_gpu_takes_a_plain_local_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # import fails
    assert _cluster._local_cluster_class(gpu=True, candidates_per_gpu=1) is LocalCluster
