"""FlinkJobStateSensor: poke decisions, deferral and resumption."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_flink_provider.protocol.errors import FlinkJobFailedError, FlinkNotFoundError, FlinkResourceError
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from tests.unit._flink_fakes import FakeRest, FakeTI, make_context

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


def make(rest: FakeRest, **kwargs: Any) -> FlinkJobStateSensor:
    kwargs.setdefault("job_id", JOB)
    sensor = FlinkJobStateSensor(task_id="wait", poke_interval=0, timeout=5, **kwargs)
    sensor._rest_hook = lambda: rest  # type: ignore[method-assign]
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
    assert [name for name in rest.names() if name != "find_job"] == [
        "get_job_overview",
        "check_job",
        "get_job_overview",
        "get_job_overview",
        "check_job",
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

    with pytest.raises(TaskDeferred) as info:
        sensor.execute(make_context())

    classpath, kwargs = info.value.trigger.serialize()
    assert classpath.endswith("FlinkJobStateTrigger")
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["target_states"] == ["FINISHED"] and kwargs["failure_states"] == ["FAILED"]
    assert kwargs["cancel_on_kill"] is True and kwargs["deadline"] is not None
    assert info.value.method_name == "execute_complete"


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
