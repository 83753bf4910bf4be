"""``[training] max_seconds``: a candidate that runs past it is stopped, and the run goes on."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from distributed import Client

from ckptnas.config import Config
from ckptnas.runtime import CandidateResult, CandidateSpec, Experiment, train_candidate

# The trainers below run on worker processes, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def candidate_2_never_returns(spec: CandidateSpec) -> CandidateResult:
    """Candidate 2 hangs as a ``build()`` stuck in a loop would: its worker does nothing else."""
    while spec.candidate_id == 2:
        time.sleep(0.1)
    return train_candidate(spec)


@pytest.mark.timeout(240)
def test_candidate_past_max_seconds_fails_and_the_run_goes_on(
    tiny_config: Config, tmp_path: Path, client: Client
) -> None:
    config = tiny_config.replace(
        "experiment", max_candidates=6, max_in_flight=2, max_retries=2
    ).replace("training", max_seconds=15.0)
    ds = Experiment(config, tmp_path, progress=False, trainer=candidate_2_never_returns).run(client)
    assert list(ds.candidate.values) == list(range(1, 7))
    assert str(ds.status.sel(candidate=2).values) == "failed"
    error = str(ds.error.sel(candidate=2).values)
    assert "TaskTimeoutError: ran past [training] max_seconds = 15" in error
    assert int(ds.attempts.sel(candidate=2)) == 1  # not retried: it would run as long again
    assert set(ds.status.drop_sel(candidate=2).values) == {"ok"}
    client.wait_for_workers(2)
    # the restarted worker is free: it trains again
    assert len(client.run(lambda: 1)) == 2
