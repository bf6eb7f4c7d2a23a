"""FlinkJobStateTrigger's run() and on_kill() in an asyncio loop against the real cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkJobFailedError, FlinkNotFoundError, FlinkTimeoutError
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event
from tests.integration import _flink_it as it
from tests.integration._flink_it import context_for

pytestmark = pytest.mark.integration

rest, started_jobs = it.rest, it.started_jobs  # fixtures


def start_job() -> str:
    table = f"it_trigger_{uuid.uuid4().hex[:8]}"
    script = (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    )
    op = FlinkSqlGatewayOperator(task_id="start", sql=script, session_properties={"parallelism.default": "1"})
    (job_id,) = op.execute(context_for("start"))["job_ids"]
    return str(job_id)


def first_event(trigger: FlinkJobStateTrigger, timeout: float = 120) -> dict[str, Any]:
    """Rebuild the trigger from its serialized form (as the triggerer does) and run it to its first event."""
    _, kwargs = trigger.serialize()
    rebuilt = FlinkJobStateTrigger(**kwargs)

    async def run() -> dict[str, Any]:
        async for event in rebuilt.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(run(), timeout=timeout))


def test_reports_running(started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    assert first_event(FlinkJobStateTrigger(job_id=job_id, poll_interval=0.5)) == {
        "status": "success",
        "job_id": job_id,
        "state": "RUNNING",
    }


def test_reports_a_failure_state(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    rest.cancel_job(job_id)

    event = first_event(FlinkJobStateTrigger(job_id=job_id, target_states=["FINISHED"], poll_interval=0.5))

    assert event["status"] == "failed" and event["state"] in ("CANCELLING", "CANCELED")
    assert isinstance(error_from_event(event), FlinkJobFailedError)


def test_times_out_at_the_deadline(started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    trigger = FlinkJobStateTrigger(
        job_id=job_id, target_states=["FINISHED"], poll_interval=0.5, deadline=time.time() + 3
    )

    event = first_event(trigger)

    assert event["status"] == "timeout" and event["state"] == "RUNNING"
    assert isinstance(error_from_event(event), FlinkTimeoutError)


def test_unknown_job_is_an_error_event() -> None:
    event = first_event(FlinkJobStateTrigger(job_id=uuid.uuid4().hex, poll_interval=0.5))
    assert event["status"] == "error" and event["error_type"] == "FlinkNotFoundError"
    assert isinstance(error_from_event(event), FlinkNotFoundError)


def test_on_kill_cancels_the_job_only_when_asked(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    it.wait_until(lambda: rest.get_job_state(job_id) == "RUNNING")

    asyncio.run(FlinkJobStateTrigger(job_id=job_id).on_kill())
    assert rest.get_job_state(job_id) == "RUNNING"

    asyncio.run(FlinkJobStateTrigger(job_id=job_id, cancel_on_kill=True).on_kill())
    it.wait_until(lambda: rest.get_job_state(job_id) == "CANCELED")
