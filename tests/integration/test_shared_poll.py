"""Fifty deferred sensors' triggers in one event loop on the real JobManager, sharing one overview poll.

Fifty jobs of our own would take 50 of the shared cluster's 8 slots, so the fifty triggers watch a few jobs
of this test (one running, one cancelled) plus ids Flink does not know: the triggers, their outcomes and the
requests are what scale, and one shared poll serves them whatever jobs they watch.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.protocol.job_state import CAUSE_WAIT
from airflow_flink_provider.triggers import shared_poll
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.integration import _flink_it as it
from tests.support.proxy import FaultProxy

pytestmark = pytest.mark.integration


POLL = 1.0




def test_fifty_triggers_share_one_overview_poll_on_the_real_jobmanager(
    rest: FlinkRestHook, started_jobs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    running, cancelled = it.start_sql_job("it_poll"), it.start_sql_job("it_poll")
    started_jobs += [running, cancelled]
    it.wait_until(lambda: {rest.get_job_overview(job)["state"] for job in (running, cancelled)} == {"RUNNING"})
    rest.cancel_job(cancelled)
    it.wait_until(lambda: rest.get_job_overview(cancelled)["state"] == "CANCELED")
    unknown = [uuid.uuid4().hex for _ in range(10)]

    with FaultProxy(rest.transport_config.base_url) as proxy:
        conn = {"conn_type": "flink", "host": "127.0.0.1", "port": proxy.port}
        monkeypatch.setenv("AIRFLOW_CONN_IT_SHARED_POLL", json.dumps(conn))

        def trigger(job_id: str, **kwargs: Any) -> FlinkJobStateTrigger:
            return FlinkJobStateTrigger(job_id=job_id, flink_conn_id="it_shared_poll", poll_interval=POLL, **kwargs)

        triggers = (
            [trigger(running) for _ in range(20)]
            + [trigger(running, target_states=["FINISHED"], deadline=time.time() + 6) for _ in range(10)]
            + [trigger(cancelled) for _ in range(10)]
            + [trigger(job_id) for job_id in unknown]
        )

        async def run_all() -> tuple[list[dict[str, Any]], float]:
            began = time.monotonic()
            events = await asyncio.gather(*(it.next_event(it.rebuilt(each)) for each in triggers))
            assert shared_poll._REGISTRY == {}  # the last trigger closed the shared poll and its client
            return list(events), time.monotonic() - began

        events, elapsed = asyncio.run(asyncio.wait_for(run_all(), timeout=120))

    assert {(e["status"], e["state"]) for e in events[:20]} == {("success", "RUNNING")}
    assert {(e["status"], e["state"]) for e in events[20:30]} == {("timeout", "RUNNING")}
    assert {(e["status"], e["state"]) for e in events[30:40]} == {("failed", "CANCELED")}
    assert {(e["status"], e["error_type"]) for e in events[40:]} == {("error", "FlinkNotFoundError")}
    assert [e["job_id"] for e in events[40:]] == unknown
    assert 6 <= elapsed < 60
    # One overview per interval for all fifty (polling alone, each would have made one at once, and the ten
    # waiting for FINISHED one a second until their deadline: 50 + 60).
    overviews = proxy.count("GET", r"^/jobs/overview$")
    assert 2 <= overviews <= elapsed / POLL + 2
    # Details only where the overview does not answer: the cancelled job's root cause for its ten triggers
    # together (read again each second while its history is empty, as the wait does), and each unknown id
    # once (Flink answers 404).
    assert 1 <= proxy.count("GET", rf"^/jobs/{cancelled}/exceptions") <= 1 + CAUSE_WAIT
    assert sum(proxy.count("GET", rf"^/jobs/{job_id}$") for job_id in unknown) == len(unknown)
    # The running job's 30 triggers read its details only when its tasks do not all run (a TaskManager of the
    # shared cluster restarting), and then together: at most its details and cause once per round.
    assert proxy.count("GET", rf"^/jobs/{running}") <= 2 * (elapsed / POLL + 2)
