"""The upgrade DAG's branch decisions and its final message, with a fake Flink (every branch, including the
abort path that the integration tests cannot provoke on a healthy cluster)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_flink_provider.hooks import flink_rest
from airflow_flink_provider.protocol.errors import FlinkConnectionError
from tests.unit.test_phase4_playbook import load

pytestmark = pytest.mark.unit


class TI:
    """XComs in, XComs out."""

    def __init__(self, xcoms: dict[tuple[str, str], Any]) -> None:
        self.xcoms = xcoms
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture(scope="module")
def tasks() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return load("flink_upgrade_with_rollback", monkeypatch).dag.task_dict


def fake_flink(monkeypatch: pytest.MonkeyPatch, job: dict[str, Any] | Exception | None) -> None:
    class FakeHook:
        def find_job(self, job_id: str) -> dict[str, Any] | None:
            if isinstance(job, Exception):
                raise job
            return job

    monkeypatch.setattr(flink_rest, "FlinkRestHook", FakeHook)


def check_stop(tasks: dict[str, Any], ti: TI) -> Any:
    return tasks["check_stop"].python_callable("a" * 32, ti=ti)


def test_stop_worked(tasks: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fake_flink(monkeypatch, AssertionError("Flink is not asked when the stop worked"))
    assert check_stop(tasks, TI({("stop_with_savepoint", "return_value"): "file:/sp"})) == "savepoint_taken"


@pytest.mark.parametrize(
    "job", [{"state": "RUNNING"}, {"state": "FINISHED"}, FlinkConnectionError("refused", request_sent=False)]
)
def test_transient_stop_failures_retry(tasks: dict[str, Any], monkeypatch: pytest.MonkeyPatch, job: Any) -> None:
    fake_flink(monkeypatch, job)
    assert check_stop(tasks, TI({})) == "retry_stop_with_savepoint"


@pytest.mark.parametrize(("job", "state"), [({"state": "FAILED"}, "FAILED"), (None, "UNKNOWN")])
def test_a_gone_job_aborts_and_pages(
    tasks: dict[str, Any], monkeypatch: pytest.MonkeyPatch, job: Any, state: str
) -> None:
    fake_flink(monkeypatch, job)
    ti = TI({})
    assert check_stop(tasks, ti) == "abort_and_page"
    assert state in ti.pushed["problem"]
    with pytest.raises(AirflowFailException, match=f"Upgrade aborted before submitting anything: .*{state}.*Page"):
        tasks["abort_and_page"].python_callable(ti=TI({("check_stop", "problem"): ti.pushed["problem"]}))


def test_check_health(tasks: dict[str, Any]) -> None:
    decide = tasks["check_health"].python_callable
    with pytest.raises(AirflowFailException, match="No savepoint was taken"):
        decide(ti=TI({}))
    ready = {("savepoint_ready", "return_value"): "file:///sp"}
    assert decide(ti=TI({**ready, ("health_gate", "verdict"): {"healthy": True}})) == ["savepoint_new_version"]
    assert decide(ti=TI({**ready, ("health_gate", "verdict"): {"healthy": False}})) == ["cancel_new_version"]
    assert decide(ti=TI(ready)) == ["cancel_new_version"]  # the submit failed: no verdict


def test_fail_upgrade_names_the_root_cause_and_the_rollback(tasks: dict[str, Any]) -> None:
    fail = tasks["fail_upgrade"].python_callable
    verdict = {"reason": "the job is FAILED", "root_cause": "StateMigrationException: incompatible."}
    healthy = {"healthy": True, "job_id": "b" * 32, "reason": "RUNNING with all tasks for 5s"}
    with pytest.raises(AirflowFailException) as raised:
        fail(
            "broken",
            "v1",
            "c" * 32,
            ti=TI({("health_gate", "verdict"): verdict, ("verify_rollback", "verdict"): healthy}),
        )
    assert str(raised.value) == (
        f"Upgrade to broken failed (job {'c' * 32}): the job is FAILED. Root cause: StateMigrationException: "
        f"incompatible. Then rolled back to v1 (job {'b' * 32}), which is healthy: RUNNING with all tasks for 5s."
    )
    with pytest.raises(
        AirflowFailException, match=r"submit_new_version failed .* rollback to v1 did NOT complete .*page"
    ):
        fail("v2", "v1", "c" * 32, ti=TI({}))
