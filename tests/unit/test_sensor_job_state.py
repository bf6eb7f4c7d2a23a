"""FlinkJobStateSensor: poke decisions, deferral and resumption."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_flink_provider.hooks.transport import TransportConfig
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkNotFoundError,
    FlinkResourceError,
)
from airflow_flink_provider.sensors.base import OUTAGE_KEY
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.unit._flink_fakes import FakeRest, FakeTI, deferral, make_context

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


def make(rest: FakeRest, **kwargs: Any) -> FlinkJobStateSensor:
    kwargs.setdefault("job_id", JOB)
    sensor = FlinkJobStateSensor(task_id="wait", poke_interval=0, timeout=5, **kwargs)
    sensor.hook = rest  # type: ignore[assignment]
    return sensor


def test_poke_waits_then_succeeds_and_records_job() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "INITIALIZING")
    ti = FakeTI()
    sensor = make(rest)

    assert not sensor.poke(make_context(ti)).is_done
    rest.jobs[JOB]["state"] = "RUNNING"
    rest.jobs[JOB]["vertices"] = [{"name": "src", "status": "RUNNING"}]
    result = sensor.poke(make_context(ti))

    assert result.is_done and result.xcom_value == "RUNNING"
    assert ti.xcoms["flink_job_id"] == JOB


def test_running_job_with_scheduled_tasks_is_not_running_yet() -> None:
    rest = FakeRest()
    rest.add_job(
        JOB, "RUNNING", vertices=[{"name": "src", "status": "SCHEDULED", "parallelism": 2, "tasks": {"SCHEDULED": 2}}]
    )
    assert not make(rest).poke(make_context()).is_done


def test_pokes_check_for_slots_only_when_tasks_do_not_move() -> None:
    rest = FakeRest()
    rest.add_job(
        JOB, "RUNNING", vertices=[{"name": "src", "status": "SCHEDULED", "parallelism": 2, "tasks": {"SCHEDULED": 2}}]
    )
    sensor = make(rest)
    sensor.poke(make_context())  # nothing known yet: checked
    rest.jobs[JOB]["vertices"] = [{"name": "src", "status": "DEPLOYING", "parallelism": 2, "tasks": {"DEPLOYING": 2}}]
    sensor.poke(make_context())  # moved: not checked
    sensor.poke(make_context())  # did not move: checked
    assert rest.names() == [
        "GET /jobs/overview",
        "GET /jobs/{id}",  # check_job: the details, then the exception history
        "GET /jobs/{id}/exceptions",
        "GET /jobs/overview",
        "GET /jobs/overview",
        "GET /jobs/{id}",
        "GET /jobs/{id}/exceptions",
    ]


def test_stuck_without_slots_raises_resource_error() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING", vertices=[{"name": "src", "status": "SCHEDULED"}])
    rest.root_causes[JOB] = "NoResourceAvailableException: Could not acquire the minimum required resources."
    with pytest.raises(FlinkResourceError):
        make(rest).poke(make_context())


@pytest.mark.parametrize("state", ["FAILED", "CANCELED", "FINISHED"])
def test_failure_or_unreachable_target_raises_with_root_cause(state: str) -> None:
    rest = FakeRest()
    rest.add_job(JOB, state)
    rest.root_causes[JOB] = "IllegalStateException: bad record"

    with pytest.raises(FlinkJobFailedError) as info:
        make(rest).poke(make_context())

    assert f"is {state}" in str(info.value) and "bad record" in str(info.value)


def test_custom_targets_and_failures() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "CANCELED")
    assert make(rest, target_states=["canceled", "finished"]).poke(make_context()).is_done
    rest.add_job(JOB, "RESTARTING")
    with pytest.raises(FlinkJobFailedError):
        make(rest, failure_states=["RESTARTING"]).poke(make_context())


def test_unknown_job_raises_not_found() -> None:
    with pytest.raises(FlinkNotFoundError):
        make(FakeRest()).poke(make_context())


def test_templated_job_id_is_validated() -> None:
    with pytest.raises(ValueError, match="32 hex digits"):
        make(FakeRest(), job_id="{{ not rendered }}").poke(make_context())


def test_poke_mode_execute_returns_the_state() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "CREATED")
    rest.state_plan[JOB] = ["CREATED", "RUNNING"]
    assert make(rest).execute(make_context()) == "RUNNING"


def test_deferrable_returns_at_once_when_already_there() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "FINISHED")
    assert make(rest, deferrable=True, target_states=["FINISHED"]).execute(make_context()) == "FINISHED"


def test_deferrable_defers_with_a_serializable_trigger() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "INITIALIZING")
    sensor = make(rest, deferrable=True, target_states=["FINISHED"], failure_states=["FAILED"], cancel_on_kill=True)

    deferred, kwargs = deferral(sensor, FlinkJobStateTrigger)
    assert kwargs["target_states"] == ["FINISHED"] and kwargs["failure_states"] == ["FAILED"]
    assert kwargs["cancel_on_kill"] is True and kwargs["deadline"] is not None
    assert deferred.method_name == "execute_complete"


def test_execute_complete_maps_events() -> None:
    sensor = make(FakeRest(), deferrable=True)
    context = make_context()
    assert sensor.execute_complete(context, {"status": "success", "job_id": JOB, "state": "RUNNING"}) == "RUNNING"
    with pytest.raises(FlinkJobFailedError, match="boom"):
        sensor.execute_complete(context, {"status": "failed", "job_id": JOB, "state": "FAILED", "root_cause": "boom"})
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute_complete(context, {"status": "timeout", "job_id": JOB, "message": "late"})
    with pytest.raises(FlinkResourceError):
        sensor.execute_complete(
            context, {"status": "error", "job_id": JOB, "message": "no slots", "error_type": "FlinkResourceError"}
        )


# --- riding out an API outage --------------------------------------------------------------------------

LEADER_ELECTION = FlinkError("Service temporarily unavailable due to an ongoing leader election.", status=503)


def flaky(rest: FakeRest, failures: int, error: FlinkError = LEADER_ELECTION, budget: float = 60) -> list[int]:
    """Make the first ``failures`` job reads of ``rest`` fail with ``error``; returns the failure count."""
    failed: list[int] = []
    rest.transport_config = TransportConfig(base_url="http://jm:8081", outage_budget=budget)  # type: ignore[attr-defined]

    def on_call(call: tuple[Any, ...]) -> None:
        if call[0] == "GET /jobs/overview" and len(failed) < failures:
            failed.append(1)
            raise error

    rest.on_call = on_call
    return failed


class Store:
    """A task state store with get/set/delete."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert value is not None
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def test_poke_mode_rides_out_an_outage_within_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    failed = flaky(rest, 3)
    sensor = make(rest)
    results = [sensor.poke(make_context()).is_done for _ in range(4)]
    assert results == [False, False, False, True] and len(failed) == 3
    logged = capsys.readouterr().out  # the task logger writes there
    assert logged.count("Flink REST API at http://jm:8081 unavailable for") == 3
    assert "HTTP 503: Service temporarily unavailable" in logged and "up to 60s (outage budget)" in logged
    assert "answers again after an outage of" in logged


def test_poke_mode_fails_once_the_outage_outlasts_the_budget() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    flaky(rest, 10**6, budget=0.3)
    sensor = make(rest)
    started = time.monotonic()
    with pytest.raises(FlinkConnectionError) as info:
        while True:
            assert not sensor.poke(make_context()).is_done
            time.sleep(0.05)
    assert time.monotonic() - started >= 0.3
    assert "longer than the outage budget of 0.3s" in str(info.value)
    assert "(HTTP 503)" in str(info.value) and info.value.status == 503


def test_the_sensor_budget_overrides_the_connection() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    flaky(rest, 1, budget=600)
    with pytest.raises(FlinkConnectionError, match="outage budget of 0s"):
        make(rest, outage_budget=0).poke(make_context())
    with pytest.raises(ValueError, match="outage_budget"):
        make(rest, outage_budget=-5)


def test_poke_mode_execute_rides_out_refused_connections() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    failed = flaky(rest, 2, FlinkConnectionError("Could not reach Flink at http://jm:8081/jobs/overview"))
    assert make(rest).execute(make_context()) == "RUNNING" and len(failed) == 2


def test_reschedule_mode_keeps_the_outage_start_in_the_task_state_store() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    flaky(rest, 2, budget=60)
    store = Store()
    before = time.time()

    assert not make(rest, mode="reschedule").poke(make_context(store=store)).is_done  # type: ignore[arg-type]
    started = store.values[OUTAGE_KEY]
    assert before <= started <= time.time()
    assert not make(rest, mode="reschedule").poke(make_context(store=store)).is_done  # type: ignore[arg-type]
    assert store.values[OUTAGE_KEY] == started  # the same outage: its start is kept
    assert make(rest, mode="reschedule").poke(make_context(store=store)).is_done  # type: ignore[arg-type]
    assert OUTAGE_KEY not in store.values  # over


def test_reschedule_mode_fails_when_the_stored_outage_outlasts_the_budget() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    flaky(rest, 1, budget=60)
    store = Store()
    store.set(OUTAGE_KEY, time.time() - 75)  # earlier pokes, in other processes, saw the outage begin
    with pytest.raises(FlinkConnectionError, match=r"unavailable for 7\d\.\ds, longer than the outage budget of 60s"):
        make(rest, mode="reschedule").poke(make_context(store=store))  # type: ignore[arg-type]


def test_deferrable_first_poke_in_an_outage_defers_with_the_budget() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    flaky(rest, 1)
    with pytest.raises(TaskDeferred) as info:
        make(rest, deferrable=True, outage_budget=45).execute(make_context())
    assert info.value.trigger.serialize()[1]["outage_budget"] == 45.0


def test_execute_complete_keeps_the_http_status_of_an_error_event() -> None:
    event = {
        "status": "error",
        "job_id": JOB,
        "message": "Flink REST API at http://jm:8081 has been unavailable for 61.0s, longer than the outage budget",
        "error_type": "FlinkConnectionError",
        "http_status": 503,
    }
    with pytest.raises(FlinkConnectionError) as info:
        make(FakeRest(), deferrable=True).execute_complete(make_context(), event)
    assert info.value.status == 503 and str(info.value).endswith("(HTTP 503)")
