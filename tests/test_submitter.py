"""The Submitter on clusters that cannot take its tasks, or that have CPU nodes only."""

from __future__ import annotations

import logging
import threading

import pytest
from distributed import Client, LocalCluster

from ckptnas.runtime import Outcome, Submitter, _submit


def double(x: int) -> int:
    return 2 * x


def test_tasks_no_worker_can_take_are_reported_then_run_when_one_arrives(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_submit, "NO_WORKER_WARNING", 1.0)
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, int] = Submitter(client, double, name=lambda x: f"double-{x}")
        submitter.submit(21)
        outcomes: list[Outcome[int, int]] = []
        waiting = threading.Thread(target=lambda: outcomes.extend(submitter.outcomes()))
        with caplog.at_level(logging.WARNING, logger="ckptnas"):
            waiting.start()
            waiting.join(timeout=5.0)
            assert waiting.is_alive()  # still waiting, not failed
            cluster.scale(1)
            waiting.join(timeout=30.0)
        assert [o.result for o in outcomes] == [42]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "no worker can take the 1 tasks" in warnings[0]
    assert "the cluster has no workers" in warnings[0]


def test_a_worker_with_zero_gpus_is_a_cpu_worker() -> None:
    with (
        LocalCluster(
            n_workers=1, processes=False, resources={"GPU": 0}, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, int] = Submitter(client, double, name=lambda x: f"double-{x}")
        submitter.submit(4)
        assert submitter.resources is None
        assert [o.result for o in submitter.outcomes()] == [8]
