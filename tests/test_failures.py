"""Errors that every candidate would meet stop a search early, in one line, without training.

A trainer the workers cannot import, an error raised by every candidate alike, a run whose
candidates all failed: each ends the run with a :class:`~ckptnas.errors.CkptnasError` instead
of spending its budget and returning as if it had succeeded.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cloudpickle
import pytest
import xarray as xr
from distributed import Client

from ckptnas import LineageRegistry
from ckptnas.config import Config
from ckptnas.errors import ClusterError, SearchFailedError
from ckptnas.runtime import CandidateResult, CandidateSpec, Experiment

# The trainers below run on worker processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def missing_library(spec: CandidateSpec) -> CandidateResult:
    """Every candidate meets the same broken environment."""
    raise ImportError("libcudart.so.12: cannot open shared object file")


def budget(config: Config, n: int = 20) -> Config:
    return config.replace("experiment", max_candidates=n, max_in_flight=2, max_retries=2)


@pytest.mark.timeout(120)
def test_trainer_the_workers_cannot_import_stops_before_any_candidate(
    tiny_config: Config,
    tmp_path: Path,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A module only this process can import: the workers were started before it existed.
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "my_trainer.py").write_text(
        "from ckptnas.runtime import train_candidate\n\n"
        "def trainer(spec):\n"
        "    return train_candidate(spec)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("my_trainer")
    run_dir = tmp_path / "run"
    with pytest.raises(ClusterError) as raised:
        Experiment(budget(tiny_config), run_dir, progress=False, trainer=module.trainer).run(client)
    message = str(raised.value)
    assert "2 of 2 workers cannot load the trainer" in message
    assert "No module named 'my_trainer'" in message
    assert "worker tcp://127.0.0.1:" in message and "\n" not in message
    assert not run_dir.exists()  # stopped before the run began


def test_first_candidates_failing_alike_stop_the_run(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    with pytest.raises(SearchFailedError) as raised:
        Experiment(budget(tiny_config), tmp_path, progress=False, trainer=missing_library).run(
            client
        )
    message = str(raised.value)
    assert "3 candidates failed with the same error before any succeeded" in message
    assert "ImportError: libcudart.so.12" in message and f"ckptnas resume {tmp_path}" in message
    with LineageRegistry(tmp_path, readonly=True) as registry:
        records = registry.candidates()
    # a few attempts, not 20 candidates of 3 attempts each; those not failed for good train
    # again on resume
    assert len(records) <= 6
    assert {r.status for r in records} <= {"pending", "failed"}
    failed = [r.id for r in records if r.status == "failed"]
    assert list(xr.load_dataset(tmp_path / "results.nc").candidate.values) == failed


def test_every_candidate_failed_is_an_error_from_the_api(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = budget(tiny_config, 4).replace("training", learning_rate=1e30)
    with pytest.raises(
        SearchFailedError, match=r"every candidate failed \(4 of 4\); candidate 1: diverged"
    ):
        Experiment(config, tmp_path, progress=False).run(client)
    ds = xr.load_dataset(tmp_path / "results.nc")  # what was trained is kept and readable
    assert list(ds.status.values) == ["failed"] * 4
