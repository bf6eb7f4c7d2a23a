"""FlinkJobStateSensor against the real cluster in poke, reschedule and deferrable mode."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.common import wait_for_job
from airflow_flink_provider.protocol.errors import FlinkConnectionError, FlinkJobFailedError
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, JobStateCheck
from tests.integration import _flink_it as it
from tests.integration._flink_it import context_for
from tests.support.chaos_server import OutageDrill, OutageProxy

pytestmark = pytest.mark.integration



def start_job(rows: int | None = None) -> str:
    """Submit a 1-slot datagen -> blackhole job (bounded when ``rows`` is given) without waiting."""
    bounded = f", 'number-of-rows' = '{rows}'" if rows else ""
    return it.start_sql_job("it_sensor", source_options=f"'rows-per-second' = '10'{bounded}")


def sensor(job_id: str, **kwargs: Any) -> FlinkJobStateSensor:
    kwargs.setdefault("poke_interval", 0.5)
    kwargs.setdefault("timeout", 90)
    return FlinkJobStateSensor(task_id="wait", job_id=job_id, **kwargs)


def test_poke_mode_waits_until_all_tasks_run(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    context = context_for("wait")

    assert sensor(job_id, mode="poke").execute(context) == "RUNNING"

    tasks = rest.get_job_overview(job_id)["tasks"]  # live; GET /jobs/{id} lags by web.refresh-interval
    assert tasks["total"] > 0 and tasks["running"] == tasks["total"]
    assert context["ti"].xcoms["flink_job_id"] == job_id


def test_reschedule_mode_releases_the_worker_until_the_job_finishes(
    rest: FlinkRestHook, started_jobs: list[str]
) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    waiting = sensor(job_id, mode="reschedule", target_states=["CANCELED"], failure_states=["FAILED"])

    with pytest.raises(AirflowRescheduleException):
        waiting.execute(context_for("wait"))

    rest.cancel_job(job_id)
    # GET /jobs/{id}, which the sensor reads, is cached by the REST server for up to web.refresh-interval
    it.wait_until(lambda: rest.get_job(job_id)["state"] == "CANCELED")
    assert waiting.execute(context_for("wait")) == "CANCELED"


def test_failure_state_raises_with_the_state(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    job_id = start_job()
    started_jobs.append(job_id)
    rest.cancel_job(job_id)
    it.wait_until(lambda: rest.get_job(job_id)["state"] == "CANCELED")

    with pytest.raises(FlinkJobFailedError, match=f"Flink job {job_id} is CANCELED"):
        sensor(job_id, mode="poke").execute(context_for("wait"))


def test_deferrable_defers_and_the_trigger_sees_the_job_finish(started_jobs: list[str]) -> None:
    job_id = start_job(rows=40)  # about four seconds of data
    started_jobs.append(job_id)
    waiting = sensor(job_id, deferrable=True, target_states=["FINISHED"])
    context = context_for("wait")

    with pytest.raises(TaskDeferred) as info:
        waiting.execute(context)

    assert isinstance(info.value.trigger, FlinkJobStateTrigger)
    event = it.first_event(info.value.trigger)
    assert event == {"status": "success", "job_id": job_id, "state": "FINISHED"}
    assert waiting.execute_complete(context, event) == "FINISHED"


# --- riding out an outage of the real JobManager's REST API (finding 12) -----------------------------------


@pytest.fixture
def outage(
    rest: FlinkRestHook, started_jobs: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, OutageProxy, str]]:
    """A RUNNING job, a proxy in front of the JobManager, and a ``flink`` connection through the proxy whose
    transport retries only briefly (2 tries, 0.1 s apart): ``(job_id, proxy, conn_id)``."""
    job_id = start_job()
    started_jobs.append(job_id)
    it.wait_until(lambda: rest.get_job_overview(job_id)["state"] == "RUNNING")
    with OutageProxy(rest.transport_config.base_url) as proxy:
        extra = {"retries": 2, "retry_wait": 0.1, "timeout": 5}
        conn = {"conn_type": "flink", "host": "127.0.0.1", "port": proxy.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_IT_OUTAGE_FLINK", json.dumps(conn))
        yield job_id, proxy, "it_outage_flink"


def test_poke_sensor_rides_out_a_leader_election_and_refused_connections(
    rest: FlinkRestHook, outage: tuple[str, OutageProxy, str]
) -> None:
    job_id, proxy, conn_id = outage
    waiting = sensor(job_id, target_states=["CANCELED"], failure_states=["FAILED"], flink_conn_id=conn_id)
    with OutageDrill(proxy, lambda: rest.cancel_job(job_id)) as drill:
        state = waiting.execute(context_for("wait"))
    assert state == "CANCELED"
    assert proxy.answered["unavailable"] >= 10
    assert drill.outage_seconds > 3  # longer than the connection's own retries (2 tries, 0.1 s apart)


def test_poke_sensor_fails_once_the_outage_outlasts_its_budget(outage: tuple[str, OutageProxy, str]) -> None:
    job_id, proxy, conn_id = outage
    waiting = sensor(job_id, target_states=["CANCELED"], flink_conn_id=conn_id, outage_budget=3)
    proxy.unavailable()
    started = time.monotonic()
    with pytest.raises(FlinkConnectionError) as info:
        waiting.execute(context_for("wait"))
    assert 3 <= time.monotonic() - started < 60
    text = str(info.value)
    assert f"Flink REST API at {proxy.url} has been unavailable for" in text
    assert "longer than the outage budget of 3s" in text and "leader election" in text
    assert text.splitlines()[0].endswith("(HTTP 503)")
    assert float(re.search(r"unavailable for ([0-9.]+)s", text).group(1)) >= 3  # type: ignore[union-attr]


def test_wait_for_job_rides_out_an_outage(rest: FlinkRestHook, outage: tuple[str, OutageProxy, str]) -> None:
    job_id, proxy, conn_id = outage
    hook = FlinkRestHook(conn_id)
    check = JobStateCheck.of(["CANCELED"], ["FAILED"])
    with OutageDrill(proxy, lambda: rest.cancel_job(job_id)):
        state = wait_for_job(hook, job_id, check, timeout=120, poll_interval=0.2, log=hook.log)
    hook.transport.close()
    assert state == "CANCELED" and proxy.answered["unavailable"] >= 10


def test_deferred_trigger_rides_out_an_outage(rest: FlinkRestHook, outage: tuple[str, OutageProxy, str]) -> None:
    job_id, proxy, conn_id = outage
    trigger = FlinkJobStateTrigger(
        job_id=job_id,
        flink_conn_id=conn_id,
        target_states=["CANCELED"],
        failure_states=["FAILED"],
        poll_interval=0.2,
        deadline=time.time() + 120,
    )

    with OutageDrill(proxy, lambda: rest.cancel_job(job_id)):
        event = it.first_event(trigger)
    assert event == {"status": "success", "job_id": job_id, "state": "CANCELED"}
    assert proxy.answered["unavailable"] >= 10
