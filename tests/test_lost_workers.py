"""The embedded cluster, whose workers will not come back, says so when it has lost them all."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from distributed import get_worker

from ckptnas.config import Config
from ckptnas.errors import ClusterError
from ckptnas.runtime import CandidateResult, CandidateSpec, Experiment, train_candidate

# The trainers below run on worker processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def closes_its_worker_from_3(spec: CandidateSpec) -> CandidateResult:
    """From candidate 3 on, each worker closes itself and its nanny: it is gone for good."""
    if spec.candidate_id >= 3:
        worker = get_worker()
        worker.loop.add_callback(worker.close, nanny=True, executor_wait=False, reason="test")
        time.sleep(60)
    return train_candidate(spec)


@pytest.mark.timeout(120)
def test_embedded_cluster_without_workers_stops_in_one_line(
    tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ckptnas.runtime._submit.NO_WORKER_WARNING", 5.0)  # 30 s in a real run
    config = tiny_config.replace("experiment", max_candidates=8, max_in_flight=2)
    with pytest.raises(ClusterError) as raised:
        Experiment(config, tmp_path, progress=False, trainer=closes_its_worker_from_3).run()
    message = str(raised.value)
    assert "lost every worker" in message and "starts no others" in message
    assert "still waiting" not in message and "\n" not in message
