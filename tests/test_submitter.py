"""The Submitter on clusters that cannot take its tasks, or that have CPU nodes only."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from distributed import Client, LocalCluster

from ckptnas.errors import ClusterError
from ckptnas.runtime import Outcome, Submitter, _submit, _window


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


def test_tasks_finished_meanwhile_come_back_as_one_batch_in_submission_order() -> None:
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, int] = Submitter(
            client, double, name=lambda x: f"double-{x}", window=8
        )
        submitter.submit_many([(x, 1) for x in range(5)])
        client.wait_for_workers(1)
        while not all(f.done() for f in submitter.in_flight):  # let all five finish first
            threading.Event().wait(0.01)
        batches = list(submitter.batches())
        assert [[o.result for o in b] for b in batches] == [[0, 2, 4, 6, 8]]
        assert len(submitter) == 0


def test_a_raising_task_is_an_outcome_of_its_batch_not_the_end_of_it() -> None:
    def half(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd: {x}")
        return x // 2

    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, int] = Submitter(client, half, name=lambda x: f"half-{x}")
        submitter.submit_many([(4, 1), (3, 2)])
        outcomes = sorted(submitter.outcomes(), key=lambda o: o.spec)
    assert [(o.spec, o.attempt, o.result) for o in outcomes] == [(3, 2, None), (4, 1, 2)]
    assert outcomes[0].error_text == "ValueError: odd: 3"


@pytest.mark.parametrize(
    ("task_seconds", "turnaround_seconds", "per_worker"),
    [
        (float("nan"), float("nan"), 2),  # nothing measured yet
        (10.0, 0.005, 2),  # long tasks: two each hide the round trip
        (0.010, 0.025, 4),  # 10 ms tasks, 25 ms of client: 1 + 3 each
        (0.0, 0.004, _window.MAX_PER_WORKER),  # tasks that take no time at all
        (1e-6, 0.004, _window.MAX_PER_WORKER),  # never more than the bound
    ],
)
def test_the_window_grows_while_tasks_are_shorter_than_the_clients_turnaround(
    task_seconds: float, turnaround_seconds: float, per_worker: int
) -> None:
    assert _window.window_size(3, task_seconds, turnaround_seconds) == 3 * per_worker


def timed(x: int) -> tuple[float, float]:
    start = time.time()
    time.sleep(0.005)
    return start, time.time()


def test_a_client_slower_than_its_tasks_keeps_more_of_them_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_submit, "_CLUSTER_LOOK_INTERVAL", 0.0)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, tuple[float, float]] = Submitter(
            client, timed, name=lambda x: f"timed-{x}", timing=lambda times: times
        )
        assert submitter.room() == 2  # nothing measured: two per worker
        submitter.submit_many([(0, 1), (1, 1)])
        for n, batch in enumerate(submitter.batches()):
            time.sleep(0.030)  # the client's turn-around: 30 ms against 5 ms tasks
            if n < 5:
                submitter.submit_many([(o.spec + 2, 1) for o in batch])
        assert 0.005 <= submitter.task_seconds < 0.030
        assert submitter.turnaround_seconds >= 0.030
        assert submitter.room() >= 1 + 30 // 5  # 1 + ceil(T / d), at most 16


@pytest.mark.timeout(60)
def test_a_result_lost_with_the_last_worker_before_it_was_fetched_stops_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_submit, "NO_WORKER_WARNING", 1.0)
    monkeypatch.setattr(_submit, "_FETCH_SECONDS", 1.0)
    with (
        LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        submitter: Submitter[int, int] = Submitter(
            client, double, name=lambda x: f"double-{x}", workers_may_join=False
        )
        submitter.submit(5)
        (future,) = submitter.in_flight
        future.result(timeout=30)  # finished: its result is on the worker, not yet fetched
        cluster.scale(0)  # and that worker goes, for good
        while client.scheduler_info()["workers"]:
            time.sleep(0.05)
        with pytest.raises(ClusterError, match="lost every worker"):
            list(submitter.batches())
