"""FlinkJobStateTrigger: serialization round trip, the state machine over the real exchanges (mocked HTTP)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_flink_provider.hooks.transport import AsyncTransport, TransportConfig
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkJobResourceError,
    FlinkResourceError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.http import RetryPolicy
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event
from tests.unit.test_protocol_job_state import JOB
from tests.unit.test_protocol_job_state import details as job

pytestmark = pytest.mark.unit

SLOTS_TRACE = (
    "java.lang.Exception: x\nCaused by: org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: "
    "Could not acquire the minimum required resources."
)


def run_trigger(
    trigger: FlinkJobStateTrigger,
    handler: Callable[[httpx.Request], httpx.Response],
    config: TransportConfig | None = None,
) -> list[Any]:
    config = config or TransportConfig(base_url="http://flink:8081", retry=RetryPolicy(attempts=1))
    transport = AsyncTransport(config, transport=httpx.MockTransport(handler))

    async def fake_transport() -> AsyncTransport:
        return transport

    trigger._transport = fake_transport  # type: ignore[method-assign]

    async def collect() -> list[Any]:
        events = [event.payload async for event in trigger.run()]
        assert not transport.is_open  # the trigger closed its HTTP client before it fired
        return events

    return asyncio.run(asyncio.wait_for(collect(), timeout=10))


def overview_entry(details: dict[str, Any]) -> dict[str, Any]:
    """The ``/jobs/overview`` entry of a job: its state and task counts summed over the vertices."""
    tasks: dict[str, int] = {"total": sum(vertex["parallelism"] for vertex in details["vertices"])}
    for vertex in details["vertices"]:
        for task_state, count in vertex["tasks"].items():
            tasks[task_state.lower()] = tasks.get(task_state.lower(), 0) + count
    return {"jid": details["jid"], "name": details["name"], "state": details["state"], "tasks": tasks}


def states_handler(states: list[dict[str, Any]], exceptions: dict[str, Any] | None = None) -> Callable[..., Any]:
    """Each GET /jobs/overview walks through ``states`` (the last repeats) and lists the job as it is then;
    GET /jobs/{id} answers the current details; /exceptions answers ``exceptions``."""
    seen: list[str] = []
    current = [states[0]]

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path == "/jobs/overview":
            current[0] = states.pop(0) if len(states) > 1 else states[0]
            return httpx.Response(200, json={"jobs": [overview_entry(current[0])]})
        if request.url.path == f"/jobs/{JOB}":
            return httpx.Response(200, json=current[0])
        if request.url.path == f"/jobs/{JOB}/exceptions":
            return httpx.Response(200, json=exceptions or {"exceptionHistory": {"entries": []}})
        if request.method == "PATCH":
            return httpx.Response(202, json={})
        return httpx.Response(404, json={"errors": ["Not found: " + request.url.path]})

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def test_serialization_round_trip_uses_plain_values() -> None:
    trigger = FlinkJobStateTrigger(
        job_id=JOB,
        flink_conn_id="flink_prod",
        target_states=["running", "FINISHED"],
        failure_states=["FAILED"],
        poll_interval=2,
        deadline=1_900_000_000.5,
        cancel_on_kill=True,
        outage_budget=90,
    )
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_flink_provider.triggers.job_state.FlinkJobStateTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs == {
        "job_id": JOB,
        "flink_conn_id": "flink_prod",
        "target_states": ["FINISHED", "RUNNING"],
        "failure_states": ["FAILED"],
        "poll_interval": 2.0,
        "deadline": 1_900_000_000.5,
        "cancel_on_kill": True,
        "outage_budget": 90.0,
    }
    rebuilt = FlinkJobStateTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_airflow_serde_round_trip() -> None:
    from airflow.sdk.serde import deserialize, serialize

    _, kwargs = FlinkJobStateTrigger(job_id=JOB, deadline=None).serialize()
    assert deserialize(serialize(kwargs)) == kwargs


def test_unknown_states_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Flink job state"):
        FlinkJobStateTrigger(job_id=JOB, target_states=["DONE"])


def test_run_reports_success_after_state_changes() -> None:
    handler = states_handler(
        [job("CREATED"), job("RUNNING", (1, {"DEPLOYING": 1})), job("RUNNING", (1, {"RUNNING": 1}))]
    )
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)

    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]
    # one live overview request per poll; the cached details only when a job may be stuck
    assert handler.seen == ["GET /jobs/overview"] * 3  # type: ignore[attr-defined]


def test_starting_tasks_cost_one_request_per_poll() -> None:
    handler = states_handler(
        [
            job("CREATED", (2, {"CREATED": 2})),
            job("RUNNING", (2, {"SCHEDULED": 2})),
            job("RUNNING", (2, {"DEPLOYING": 2})),
            job("RUNNING", (2, {"RUNNING": 1, "INITIALIZING": 1})),
            job("RUNNING", (2, {"RUNNING": 2})),
        ]
    )
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)

    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]
    assert handler.seen == ["GET /jobs/overview"] * 5  # type: ignore[attr-defined]


def test_tasks_that_do_not_move_are_checked_for_slots() -> None:
    waiting = job("RUNNING", (2, {"SCHEDULED": 2}))
    created, running = job("CREATED", (2, {"CREATED": 2})), job("RUNNING", (2, {"RUNNING": 2}))
    handler = states_handler([created, waiting, waiting, running])
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)

    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]
    assert handler.seen == [  # type: ignore[attr-defined]
        "GET /jobs/overview",
        "GET /jobs/overview",
        "GET /jobs/overview",  # no change since the last poll: check_job reads the details and exceptions
        f"GET /jobs/{JOB}",
        f"GET /jobs/{JOB}/exceptions",
        "GET /jobs/overview",
    ]


def test_job_missing_from_the_overview_is_read_from_its_details() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": []})
        return httpx.Response(200, json=job("RUNNING", (1, {"RUNNING": 1})))

    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)
    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]
    assert seen == ["/jobs/overview", f"/jobs/{JOB}"]


def test_run_reports_failure_with_root_cause() -> None:
    exceptions = {
        "exceptionHistory": {
            "entries": [
                {
                    "timestamp": 2,
                    "stacktrace": "java.lang.RuntimeException: a\nCaused by: java.io.IOException: disk full",
                }
            ]
        }
    }
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), states_handler([job("FAILED")], exceptions))

    assert events == [{"status": "failed", "job_id": JOB, "state": "FAILED", "root_cause": "IOException: disk full"}]
    error = error_from_event(events[0])
    assert isinstance(error, FlinkJobFailedError)
    assert "disk full" in str(error) and error.job_id == JOB


def test_run_reports_a_job_stuck_without_slots() -> None:
    exceptions = {"exceptionHistory": {"entries": [{"timestamp": 1, "stacktrace": SLOTS_TRACE}]}}
    stuck = job("RUNNING", (16, {"SCHEDULED": 16}))
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), states_handler([stuck], exceptions))

    assert events[0]["status"] == "error"
    assert events[0]["error_type"] == "FlinkResourceError"
    error = error_from_event(events[0])
    assert isinstance(error, FlinkResourceError)
    assert "Not enough task slots" in str(error)


def test_job_failed_for_slots_is_typed() -> None:
    exceptions = {"exceptionHistory": {"entries": [{"timestamp": 1, "stacktrace": SLOTS_TRACE}]}}
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), states_handler([job("FAILED")], exceptions))
    assert isinstance(error_from_event(events[0]), FlinkJobResourceError)


def test_run_times_out_at_the_deadline() -> None:
    trigger = FlinkJobStateTrigger(job_id=JOB, poll_interval=0.01, deadline=time.time() + 0.2)
    events = run_trigger(trigger, states_handler([job("INITIALIZING")]))

    assert events[0]["status"] == "timeout" and events[0]["state"] == "INITIALIZING"
    assert isinstance(error_from_event(events[0]), FlinkTimeoutError)


def test_unknown_job_is_an_error_event() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": []})
        return httpx.Response(404, json={"errors": ["org.apache.flink.runtime.rest.NotFoundException: Job not found"]})

    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)

    assert events[0]["status"] == "error" and events[0]["error_type"] == "FlinkNotFoundError"
    assert json.loads(json.dumps(events[0])) == events[0]


def test_unreachable_api_keeps_polling_until_it_answers() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"jobs": [overview_entry(job("RUNNING", (1, {"RUNNING": 1})))]})

    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0), handler)
    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]


@pytest.mark.parametrize("cancel", [True, False])
def test_on_kill_cancels_only_when_asked(cancel: bool) -> None:
    handler = states_handler([job("RUNNING")])
    trigger = FlinkJobStateTrigger(job_id=JOB, cancel_on_kill=cancel)
    config = TransportConfig(base_url="http://flink:8081", retry=RetryPolicy(attempts=1))
    transport = AsyncTransport(config, transport=httpx.MockTransport(handler))

    async def fake_transport() -> AsyncTransport:
        return transport

    trigger._transport = fake_transport  # type: ignore[method-assign]
    asyncio.run(trigger.on_kill())

    assert (f"PATCH /jobs/{JOB}" in handler.seen) is cancel  # type: ignore[attr-defined]


def test_error_from_event_falls_back_to_flink_error() -> None:
    assert error_from_event({"status": "success"}) is None
    error = error_from_event({"status": "error", "message": "odd", "error_type": "os.system", "hint": "h"})
    assert type(error) is FlinkError and error.hint == "h"


LEADER_ELECTION = {"errors": ["Service temporarily unavailable due to an ongoing leader election. Please refresh."]}


def failing_then(failures: int, answer: Callable[[httpx.Request], httpx.Response]) -> Callable[..., Any]:
    """The first ``failures`` requests get 503 (a leader election), later ones ``answer``."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) <= failures:
            return httpx.Response(503, json=LEADER_ELECTION)
        return answer(request)

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def running(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"jobs": [overview_entry(job("RUNNING", (1, {"RUNNING": 1})))]})


def test_a_leader_election_within_the_budget_is_ridden_out() -> None:
    handler = failing_then(8, running)
    events = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0.01, outage_budget=30), handler)
    assert events == [{"status": "success", "job_id": JOB, "state": "RUNNING"}]
    assert len(handler.seen) == 9  # type: ignore[attr-defined]


@pytest.mark.parametrize("explicit", [True, False])
def test_an_outage_longer_than_the_budget_names_the_status_and_its_length(explicit: bool) -> None:
    handler = failing_then(10**6, running)
    config = TransportConfig(
        base_url="http://flink:8081", retry=RetryPolicy(attempts=1), outage_budget=60 if explicit else 0.3
    )
    trigger = FlinkJobStateTrigger(job_id=JOB, poll_interval=0.02, outage_budget=0.3 if explicit else None)
    [event] = run_trigger(trigger, handler, config)

    assert event["status"] == "error" and event["error_type"] == "FlinkConnectionError"
    assert event["http_status"] == 503
    assert "longer than the outage budget of 0.3s" in event["message"]
    assert float(re.search(r"unavailable for ([0-9.]+)s", event["message"]).group(1)) >= 0.3  # type: ignore[union-attr]
    error = error_from_event(event)
    assert isinstance(error, FlinkConnectionError) and error.status == 503
    assert "leader election" in str(error) and "(HTTP 503)" in str(error)
    assert json.loads(json.dumps(event)) == event


def test_refused_connections_beyond_the_budget_name_the_connection_error() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    [event] = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0.02, outage_budget=0.2), refused)
    assert event["status"] == "error" and event["http_status"] is None
    assert "Could not reach Flink at http://flink:8081/jobs/overview: ConnectError" in event["message"]


def test_a_real_error_during_an_outage_ends_the_wait_at_once() -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": []})
        return httpx.Response(404, json={"errors": ["Job not found"]})

    [event] = run_trigger(FlinkJobStateTrigger(job_id=JOB, poll_interval=0.01), failing_then(3, not_found))
    assert event["error_type"] == "FlinkNotFoundError" and event["http_status"] == 404


def test_the_deadline_during_an_outage_is_a_timeout_that_mentions_it() -> None:
    trigger = FlinkJobStateTrigger(job_id=JOB, poll_interval=0.05, deadline=time.time() + 0.3, outage_budget=60)
    [event] = run_trigger(trigger, failing_then(10**6, running))
    assert event["status"] == "timeout"
    assert "unavailable for the last" in event["message"] and "HTTP 503: Service temporarily" in event["message"]


def test_outage_budget_is_validated() -> None:
    for bad in (-1, float("inf"), "soon"):
        with pytest.raises(ValueError, match="outage_budget"):
            FlinkJobStateTrigger(job_id=JOB, outage_budget=bad)  # type: ignore[arg-type]


def test_on_kill_closes_its_client() -> None:
    handler = states_handler([job("RUNNING")])
    trigger = FlinkJobStateTrigger(job_id=JOB, cancel_on_kill=True)
    transport = AsyncTransport(
        TransportConfig(base_url="http://flink:8081", retry=RetryPolicy(attempts=1)),
        transport=httpx.MockTransport(handler),
    )

    async def fake_transport() -> AsyncTransport:
        return transport

    trigger._transport = fake_transport  # type: ignore[method-assign]
    asyncio.run(trigger.on_kill())
    assert f"PATCH /jobs/{JOB}" in handler.seen and not transport.is_open  # type: ignore[attr-defined]
