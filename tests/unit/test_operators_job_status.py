"""FlinkJobStatusOperator, with an in-memory REST hook: a job's state and root cause, ``None`` when unknown."""

from __future__ import annotations

import pytest

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.job_status import FlinkJobStatusOperator
from airflow_flink_provider.protocol.errors import FlinkConnectionError
from tests.unit._flink_fakes import FakeRest, FakeTI, make_context

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


def make(rest: FakeRest, job_id: str = JOB) -> FlinkJobStatusOperator:
    op = FlinkJobStatusOperator(task_id="status", job_id=job_id)
    op._rest_hook = lambda: rest  # type: ignore[method-assign]
    return op


@pytest.mark.parametrize("state", ["RUNNING", "FAILED", "CANCELED", "FINISHED", "RESTARTING"])
def test_returns_the_state_and_the_root_cause_without_failing(state: str) -> None:
    rest = FakeRest()
    rest.add_job(JOB, state)
    rest.root_causes[JOB] = "StateMigrationException: incompatible."
    ti = FakeTI()

    status = make(rest).execute(make_context(ti))

    assert status == {"job_id": JOB, "state": state, "root_cause": "StateMigrationException: incompatible."}
    assert ti.xcoms["flink_job_id"] == JOB  # the Flink UI link
    assert rest.names() == ["find_job_state", "get_root_cause"]


def test_a_job_without_failures_has_no_root_cause() -> None:
    rest = FakeRest()
    rest.add_job(JOB, "RUNNING")
    assert make(rest).execute(make_context()) == {"job_id": JOB, "state": "RUNNING", "root_cause": None}


def test_a_job_flink_does_not_know_is_state_none_not_an_error() -> None:
    rest = FakeRest()
    assert make(rest).execute(make_context()) == {"job_id": JOB, "state": None, "root_cause": None}
    assert rest.names() == ["find_job_state"]


def test_an_unreachable_api_fails_the_task_with_the_typed_error() -> None:
    class Unreachable(FakeRest):
        def find_job_state(self, job_id: str) -> str | None:
            raise FlinkConnectionError("Connection refused", request_sent=False)

    with pytest.raises(FlinkConnectionError, match="Connection refused"):
        make(Unreachable()).execute(make_context())


def test_a_bad_job_id_is_rejected_before_any_request() -> None:
    rest = FakeRest()
    with pytest.raises(ValueError, match="32 hex digits"):
        make(rest, job_id="{{ not rendered }}").execute(make_context())
    assert rest.calls == []


def test_job_id_is_templated_and_the_task_links_to_the_flink_ui() -> None:
    assert FlinkJobStatusOperator.template_fields == ("job_id",)
    assert any(isinstance(link, FlinkJobLink) for link in FlinkJobStatusOperator.operator_extra_links)
