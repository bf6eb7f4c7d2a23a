"""The phase 4 DAGs' decisions and messages, from the job statuses they are given (FlinkJobStatusOperator's
XComs): every branch of the upgrade (including the abort path that the integration tests cannot provoke on a
healthy cluster), the recovery's clean-up choice and flink_deploy_sql's wait choice (flink_lessons.upgrade,
.recovery, .operators.sql_deploy)."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from flink_lessons import recovery, upgrade
from flink_lessons.operators import sql_deploy

pytestmark = pytest.mark.unit

OLD = "a" * 32


def status(state: str | None, cause: str | None = None, job_id: str = OLD) -> dict[str, Any]:
    """A ``FlinkJobStatusOperator`` XCom."""
    return {"job_id": job_id, "state": state, "root_cause": cause}


def test_stop_worked() -> None:
    assert upgrade.check_stop.function("file:/sp", status("FINISHED")) == "savepoint_taken"


@pytest.mark.parametrize("old_job", [status("RUNNING"), status("RESTARTING"), status("FINISHED"), None])
def test_transient_stop_failures_retry(old_job: dict[str, Any] | None) -> None:
    """The old job lives (or finished with its savepoint), or its status could not be asked (Flink unreachable)."""
    assert upgrade.check_stop.function(None, old_job) == "retry_stop_with_savepoint"


@pytest.mark.parametrize(
    ("old_job", "shown"),
    [(status("FAILED", "OutOfMemoryError: Java heap space"), "FAILED. Its root cause: OutOfMemoryError"),
     (status("CANCELLING"), "CANCELLING"), (status("SUSPENDED"), "SUSPENDED"), (status(None), "unknown to Flink")],
)  # fmt: skip
def test_a_gone_job_aborts_and_pages(old_job: dict[str, Any], shown: str) -> None:
    assert upgrade.check_stop.function(None, old_job) == "abort_and_page"
    with pytest.raises(AirflowFailException, match=f"Upgrade aborted before submitting anything: .*{shown}.*Page"):
        upgrade.abort_and_page.function(old_job)


def test_the_savepoint_comes_from_either_stop() -> None:
    assert upgrade.savepoint_ready.function("file:/sp-1", None) == "file:/sp-1"
    assert upgrade.savepoint_ready.function(None, "file:/sp-2") == "file:/sp-2"
    with pytest.raises(AirflowFailException, match="No savepoint from stop_with_savepoint or retry"):
        upgrade.savepoint_ready.function(None, None)


def test_check_health() -> None:
    decide = upgrade.check_health.function
    with pytest.raises(AirflowFailException, match="No savepoint was taken"):
        decide(None, None)
    assert decide("file:/sp", {"healthy": True}) == "savepoint_new_version"
    assert decide("file:/sp", None) == "cancel_new_version"  # the gate failed, or the submit did: no verdict


def test_fail_upgrade_names_the_root_cause_and_the_rollback() -> None:
    healthy = {"healthy": True, "job_id": "b" * 32, "reason": "RUNNING with all tasks for 5s"}
    new_job = status("CANCELED", "StateMigrationException: incompatible.", job_id="c" * 32)
    with pytest.raises(AirflowFailException) as raised:
        upgrade.fail_upgrade.function("broken", "v1", "c" * 32, new_job, healthy)
    assert str(raised.value) == (
        f"Upgrade to broken failed (job {'c' * 32}): it did not pass the health gate. Root cause: "
        f"StateMigrationException: incompatible. Then rolled back to v1 (job {'b' * 32}), which is healthy: "
        "RUNNING with all tasks for 5s."
    )
    for unknown in (status(None, job_id="c" * 32), None):  # Flink does not know the job / could not be asked
        with pytest.raises(AirflowFailException, match=r"No root cause recorded .*rollback to v1 did NOT complete"):
            upgrade.fail_upgrade.function("v2", "v1", "c" * 32, unknown, None)


@pytest.mark.parametrize(
    ("running", "if_running", "follow"),
    [([], "fail", ["submit_restored"]), ([], "cancel", ["submit_restored"]),
     (["j1"], "stop_with_savepoint", ["stop_running_jobs", "submit_restored"]),
     (["j1", "j2"], "cancel", ["cancel_running_jobs", "submit_restored"])],
)  # fmt: skip
def test_the_recovery_makes_room_as_asked(running: list[str], if_running: str, follow: list[str]) -> None:
    assert recovery.clear_running_jobs.function(running, if_running) == follow


def test_the_recovery_refuses_to_run_next_to_a_live_job() -> None:
    with pytest.raises(AirflowFailException, match=r"Jobs \['j1'\] of the same name still run: set the if_running"):
        recovery.clear_running_jobs.function(["j1"], "fail")


def test_the_recovery_params_may_all_stay_empty() -> None:
    """The trigger form can be submitted as it opens: the optional params accept null."""
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(recovery.PARAMS)
    assert params.validate() == {"version": None, "restore_from": "last_good_savepoint", "savepoint_path": None,
                                 "checkpoint_of_job": None, "if_running": "fail"}  # fmt: skip
    for name in ("version", "savepoint_path", "checkpoint_of_job"):
        assert "null" in recovery.PARAMS[name].schema["type"]


def test_deploy_sql_waits_as_its_setting_says() -> None:
    assert sql_deploy.choose_wait.function("FINISHED") == "wait_finished"
    assert sql_deploy.choose_wait.function("RUNNING") == "watch_running"
