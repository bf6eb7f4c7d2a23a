"""Savepoint, stop and cancel operators, with an in-memory REST hook."""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_flink_provider.operators.savepoint import (
    FlinkCancelJobOperator,
    FlinkStopJobOperator,
    FlinkTriggerSavepointOperator,
)
from airflow_flink_provider.protocol.errors import FlinkError, FlinkNotFoundError
from tests.unit._flink_fakes import FakeRest, FakeTI, make_context

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


def make(cls: type, rest: FakeRest, **kwargs: Any) -> Any:
    kwargs.setdefault("job_id", JOB)
    if cls is not FlinkStopJobOperator:  # stop-with-savepoint polls inside the hook
        kwargs.setdefault("poll_interval", 0)
    op = cls(task_id="op", **kwargs)
    op._rest_hook = lambda: rest
    return op


@pytest.fixture
def rest() -> FakeRest:
    fake = FakeRest()
    fake.add_job(JOB, "RUNNING")
    return fake


def test_trigger_savepoint_returns_location_and_records_job(rest: FakeRest) -> None:
    ti = FakeTI()
    location = make(FlinkTriggerSavepointOperator, rest, target_directory="file:///sp", format_type="native").execute(
        make_context(ti)
    )

    trigger = next(call for call in rest.calls if call[0] == "trigger_savepoint")
    assert trigger[1:4] == (JOB, "file:///sp", "NATIVE") and re.fullmatch("[0-9a-f]{32}", trigger[4])
    assert location == f"file:/savepoints/savepoint-{JOB[:6]}-{trigger[4][:4]}"
    assert ti.xcoms["flink_job_id"] == JOB
    assert rest.jobs[JOB]["state"] == "RUNNING"


def test_format_type_is_validated() -> None:
    with pytest.raises(ValueError, match="format_type"):
        FlinkTriggerSavepointOperator(task_id="x", job_id=JOB, format_type="binary")


@pytest.mark.parametrize("cls", [FlinkTriggerSavepointOperator, FlinkStopJobOperator, FlinkCancelJobOperator])
def test_bad_job_id_is_rejected_before_http(cls: type) -> None:
    rest = FakeRest()
    with pytest.raises(ValueError, match="32 hex digits"):
        make(cls, rest, job_id="not-a-job").execute(make_context())
    assert rest.calls == []


def test_stop_with_savepoint_and_drain(rest: FakeRest) -> None:
    location = make(FlinkStopJobOperator, rest, drain=True).execute(make_context())

    assert location == f"file:/savepoints/savepoint-{JOB[:6]}-2"
    stop = next(call for call in rest.calls if call[0] == "stop_with_savepoint")
    assert stop[1:4] == (JOB, None, True) and re.fullmatch("[0-9a-f]{32}", stop[4])
    assert rest.jobs[JOB]["state"] == "FINISHED"


def test_stop_retry_returns_the_stop_savepoint(rest: FakeRest) -> None:
    first = make(FlinkStopJobOperator, rest).execute(make_context())
    second = make(FlinkStopJobOperator, rest).execute(make_context())

    assert first == second
    assert rest.names().count("stop_with_savepoint") == 1


@pytest.mark.parametrize("state", ["FAILED", "CANCELED", "FINISHED"])
def test_stop_of_an_ended_job_without_stop_savepoint_fails(rest: FakeRest, state: str) -> None:
    rest.jobs[JOB]["state"] = state
    with pytest.raises(FlinkError, match=f"already {state}: there is nothing to stop"):
        make(FlinkStopJobOperator, rest).execute(make_context())


def test_cancel_waits_until_canceled_and_returns_none(rest: FakeRest) -> None:
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None
    assert rest.jobs[JOB]["state"] == "CANCELED"
    assert "trigger_savepoint" not in rest.names()


def test_cancel_with_savepoint_takes_it_first(rest: FakeRest) -> None:
    location = make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())

    assert location.startswith(f"file:/savepoints/savepoint-{JOB[:6]}-")
    names = rest.names()
    assert names.index("wait_for_savepoint") < names.index("cancel_job")


def test_cancel_is_idempotent(rest: FakeRest) -> None:
    first = make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())
    again = make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())

    assert again == first
    assert rest.names().count("cancel_job") == 1
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None


@pytest.mark.parametrize("state", ["FINISHED", "FAILED"])
def test_cancel_of_ended_job_is_a_no_op(rest: FakeRest, state: str) -> None:
    rest.jobs[JOB]["state"] = state
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None
    assert "cancel_job" not in rest.names()


def test_cancel_of_a_job_flink_does_not_know_is_nothing_to_cancel(capsys: pytest.CaptureFixture[str]) -> None:
    rest = FakeRest()
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None
    assert rest.names() == ["find_job_state"]
    logged = capsys.readouterr().out  # the task logger writes there
    assert logged.count("nothing to cancel") == 1 and f"Flink does not know job {JOB}: nothing to cancel" in logged


def test_a_savepoint_asked_of_a_job_flink_does_not_know_fails() -> None:
    with pytest.raises(FlinkNotFoundError, match="no job to take a savepoint of"):
        make(FlinkCancelJobOperator, FakeRest(), savepoint_before_cancel=True).execute(make_context())


def test_savepoint_of_ended_job_without_one_fails(rest: FakeRest) -> None:
    rest.jobs[JOB]["state"] = "FAILED"
    with pytest.raises(FlinkError, match="already FAILED and has no savepoint to return"):
        make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())


def test_a_retried_trigger_reuses_the_savepoint_of_the_earlier_try(rest: FakeRest) -> None:
    first = make(FlinkTriggerSavepointOperator, rest).execute(make_context())
    second = make(FlinkTriggerSavepointOperator, rest).execute(make_context())

    assert second == first
    assert rest.names().count("trigger_savepoint") == 1
    other_run = make(FlinkTriggerSavepointOperator, rest).execute(make_context(FakeTI(run_id="run2")))
    assert other_run != first and rest.names().count("trigger_savepoint") == 2


def test_an_earlier_savepoint_in_progress_is_waited_for_not_triggered_again(rest: FakeRest) -> None:
    op = make(FlinkTriggerSavepointOperator, rest)
    lookups: list[str] = []
    find = rest.find_savepoint

    def in_progress(job_id: str, trigger: str) -> Any:
        lookups.append(trigger)
        if len(lookups) == 1:
            rest.savepoints[job_id, trigger] = {"status": {"id": "IN_PROGRESS"}}
        return find(job_id, trigger)

    rest.find_savepoint = in_progress  # type: ignore[method-assign]

    location = op.execute(make_context())

    assert "trigger_savepoint" not in rest.names()
    assert location.endswith(lookups[0][:4]) and rest.names().count("wait_for_savepoint") == 1


def test_a_failed_savepoint_of_an_earlier_try_moves_to_a_new_trigger_id(rest: FakeRest) -> None:
    make(FlinkTriggerSavepointOperator, rest).execute(make_context())
    (key,) = rest.savepoints
    rest.savepoints[key] = {
        "status": {"id": "COMPLETED"},
        "operation": {"failure-cause": {"class": "x", "stack-trace": "CheckpointException: Task not running"}},
    }

    make(FlinkTriggerSavepointOperator, rest).execute(make_context())

    triggers = [call[4] for call in rest.calls if call[0] == "trigger_savepoint"]
    assert len(triggers) == 2 and triggers[0] != triggers[1]


@pytest.mark.parametrize("cls", [FlinkTriggerSavepointOperator, FlinkStopJobOperator, FlinkCancelJobOperator])
@pytest.mark.parametrize("target", ["http://host/sp", "file:///sp/../etc", "/", "relative/dir", "   "])
def test_bad_target_directory_is_rejected_before_http(cls: type, target: str) -> None:
    rest = FakeRest()
    kwargs = {"savepoint_before_cancel": True} if cls is FlinkCancelJobOperator else {}
    with pytest.raises(ValueError, match="target_directory"):
        make(cls, rest, target_directory=target, **kwargs).execute(make_context())
    assert rest.calls == []
