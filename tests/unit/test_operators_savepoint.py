"""Savepoint, stop and cancel operators, with an in-memory REST hook."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_flink_provider.operators.savepoint import (
    FlinkCancelJobOperator,
    FlinkStopJobOperator,
    FlinkTriggerSavepointOperator,
)
from airflow_flink_provider.protocol.errors import FlinkError
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

    assert location == f"file:/savepoints/savepoint-{JOB[:6]}-1"
    assert ("trigger_savepoint", JOB, "file:///sp", "NATIVE") in rest.calls
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
    assert ("stop_with_savepoint", JOB, None, True) in rest.calls
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

    assert location == f"file:/savepoints/savepoint-{JOB[:6]}-1"
    names = rest.names()
    assert names.index("wait_for_savepoint") < names.index("cancel_job")


def test_cancel_is_idempotent(rest: FakeRest) -> None:
    make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())
    again = make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())

    assert again == f"file:/savepoints/savepoint-{JOB[:6]}-1"
    assert rest.names().count("cancel_job") == 1
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None


@pytest.mark.parametrize("state", ["FINISHED", "FAILED"])
def test_cancel_of_ended_job_is_a_no_op(rest: FakeRest, state: str) -> None:
    rest.jobs[JOB]["state"] = state
    assert make(FlinkCancelJobOperator, rest).execute(make_context()) is None
    assert "cancel_job" not in rest.names()


def test_savepoint_of_ended_job_without_one_fails(rest: FakeRest) -> None:
    rest.jobs[JOB]["state"] = "FAILED"
    with pytest.raises(FlinkError, match="already FAILED and has no savepoint to return"):
        make(FlinkCancelJobOperator, rest, savepoint_before_cancel=True).execute(make_context())
