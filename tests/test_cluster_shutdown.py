"""Closing the embedded cluster leaves nothing on the terminal but the run's own lines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from ckptnas.config import config_from_dict
from ckptnas.runtime import connect


def test_a_heartbeat_cut_short_by_the_workers_own_close_is_not_logged(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A loaded machine makes a worker's heartbeat slow; closing the cluster then closes the
    # worker's connections under a heartbeat still in flight, and Dask's worker logged that
    # as a 30-line traceback under the run's error message. A slow scheduler makes it certain.
    with connect(config_from_dict({"cluster": {"n_workers": 2}})) as client:
        client.wait_for_workers(2)
        scheduler = client.cluster.scheduler  # type: ignore[union-attr]
        answer = scheduler.handlers["heartbeat_worker"]

        async def slow_heartbeat(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(5)
            return answer(*args, **kwargs)

        scheduler.handlers["heartbeat_worker"] = slow_heartbeat
        client.run(lambda: None)  # both workers are up and heartbeating
        time.sleep(1.5)  # heartbeats are sent every 0.5 s: some are waiting
    err = capfd.readouterr().err
    assert "Failed to communicate with scheduler during heartbeat" not in err
    assert "Traceback (most recent call last)" not in err
