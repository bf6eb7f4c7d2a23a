"""FlinkJobStateTrigger's run() and on_kill() in an asyncio loop against the real cluster."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.protocol.errors import FlinkJobFailedError, FlinkNotFoundError, FlinkTimeoutError
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event
from tests.integration import _flink_it as it

pytestmark = pytest.mark.integration



def start_job() -> str:
    return it.start_sql_job("it_trigger")


def test_reports_running(started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    assert it.first_event(FlinkJobStateTrigger(job_id=job_id, poll_interval=0.5)) == {
        "status": "success",
        "job_id": job_id,
        "state": "RUNNING",
    }


def test_reports_a_failure_state(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    rest.cancel_job(job_id)

    event = it.first_event(FlinkJobStateTrigger(job_id=job_id, target_states=["FINISHED"], poll_interval=0.5))

    assert event["status"] == "failed" and event["state"] in ("CANCELLING", "CANCELED")
    assert isinstance(error_from_event(event), FlinkJobFailedError)


def test_times_out_at_the_deadline(started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    trigger = FlinkJobStateTrigger(
        job_id=job_id, target_states=["FINISHED"], poll_interval=0.5, deadline=time.time() + 3
    )

    event = it.first_event(trigger)

    assert event["status"] == "timeout" and event["state"] == "RUNNING"
    assert isinstance(error_from_event(event), FlinkTimeoutError)


def test_unknown_job_is_an_error_event() -> None:
    event = it.first_event(FlinkJobStateTrigger(job_id=uuid.uuid4().hex, poll_interval=0.5))
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
