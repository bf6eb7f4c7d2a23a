"""The phase 4 DAGs on the real stack, each run with ``dag.test()`` in a fresh Airflow home.

- Upgrade v1 -> v2 through flink_upgrade_with_rollback: the aggregates carry on from the savepoint, so the
  windows of the whole run count every event exactly once.
- Upgrade to the broken version: the DAG rolls back to v1 from the same savepoint, v1 runs with its state
  intact (same exact check), and the run fails with the broken version's root cause.
- A stop-with-savepoint that fails (injected) takes the retry branch; neither that nor a retried submit
  starts a second job.
- flink_recover_from_savepoint restores a cancelled job from its latest retained checkpoint.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flink_lessons.job_names import jobs_named

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.protocol.job_state import TERMINAL
from tests.integration.test_pyflink_kit import (
    PRODUCTS,
    AirflowHome,
    Jobs,
    Topics,
    airflow_home,
    dataset,
    jobs,
    produce,
    pyflink_variable,
    read_rows,
    topics,
    wait_checkpoints,
    wait_state,
    without,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3000)]  # several DAG runs per test
__all__ = ["airflow_home", "jobs", "topics"]  # fixtures

WINDOW_MS = 10_000
PYFLINK = "flink_phase4_pyflink"
UPGRADE_PATH = ("savepoint_taken", "savepoint_ready", "submit_new_version", "health_gate", "check_health")
ROLLBACK = ("cancel_new_version", "rollback_to_previous_version", "verify_rollback")


class Deployment:
    """One test's job: its topics, Variable and the DAG runs on it."""

    def __init__(self, home: AirflowHome, topics: Topics, jobs: Jobs, prefix: str, **overrides: Any) -> None:
        self.home = home
        self.rest = jobs.rest
        self.name = jobs.track_name(f"{prefix}-{uuid.uuid4().hex[:8]}")
        self.source, self.sink = topics.create(f"{prefix}-in"), topics.create(f"{prefix}-out")
        self.variables = {PYFLINK: pyflink_variable(self.source, self.sink, self.name, **overrides)}

    def run(self, dag_id: str, **conf: Any) -> Any:
        return self.home.run(dag_id, self.variables, conf)

    def active(self) -> list[dict[str, Any]]:
        """The cluster's active jobs of this deployment."""
        return [job for job in jobs_named(self.rest.list_jobs(), job=self.name) if job["state"] not in TERMINAL]

    def deploy_v1(self) -> str:
        run = self.run("flink_deploy_pyflink", version="v1")
        assert run.state == "success", run
        job_id = str(run.xcom("submit_job"))
        assert [job["jid"] for job in self.active()] == [job_id]
        good = run.variables[f"flink_phase4_last_good__{self.name}"]
        assert (good["version"], good["job_id"]) == ("v1", job_id)
        return job_id


def produce_first_batch(deployment: Deployment) -> list[dict[str, Any]]:
    """Orders 0-34 (windows 0-2 close, window 3 stays open in the job's state); wait for the closed ones."""
    first = dataset.orders(0, 35)
    produce(deployment.source, first)
    closed = dataset.expected_windows(first, PRODUCTS, WINDOW_MS, watermark=first[-1]["ts"])
    assert len(read_rows(deployment.sink, len(closed), settle=0)) == len(closed)
    return first


def check_whole_run(deployment: Deployment, first: list[dict[str, Any]], *versions: str) -> list[dict[str, Any]]:
    """Produce orders 35-64 and a closing heartbeat; every window of the run must count every event once."""
    second = dataset.orders(35, 30)
    close = second[-1]["ts"] + WINDOW_MS
    produce(deployment.source, [*second, dataset.heartbeat(close)])
    expected = dataset.expected_windows(first + second, PRODUCTS, WINDOW_MS, watermark=close)
    rows = read_rows(deployment.sink, len(expected))
    assert without(rows, "job_version", "avg_order_cents") == expected
    assert dataset.totals(rows) == dataset.totals(expected)
    assert {row["job_version"] for row in rows} == set(versions)
    return rows


def test_upgrade_to_v2_keeps_the_state(airflow_home: AirflowHome, topics: Topics, jobs: Jobs) -> None:
    deployment = Deployment(airflow_home, topics, jobs, "p4-up")
    v1 = deployment.deploy_v1()
    first = produce_first_batch(deployment)

    run = deployment.run("flink_upgrade_with_rollback", version="v2")
    assert run.state == "success", run
    for task in (*UPGRADE_PATH, "savepoint_new_version", "record_last_good"):
        assert run.states[task] == "success", (task, run)
    for task in ("retry_stop_with_savepoint", "abort_and_page", *ROLLBACK, "new_version_status", "fail_upgrade"):
        assert run.states[task] == "skipped", (task, run)
    new_id = run.xcom("resolve_settings", "job_id")
    assert deployment.rest.get_job_state(v1) == "FINISHED"
    assert run.xcom("old_job_status")["state"] == "FINISHED"  # stopped with its savepoint: on, no retry
    assert [(job["jid"], job["name"]) for job in deployment.active()] == [(new_id, f"{deployment.name}@v2")]
    good = run.variables[f"flink_phase4_last_good__{deployment.name}"]
    assert (good["version"], good["job_id"]) == ("v2", new_id)
    assert good["restored_from"] == run.xcom("savepoint_ready")
    assert good["restored_from"] == run.xcom("stop_with_savepoint")  # locations as Flink reports them
    assert good["savepoint"] == run.xcom("savepoint_new_version")

    rows = check_whole_run(deployment, first, "v1", "v2")
    straddling = first[-1]["ts"] - first[-1]["ts"] % WINDOW_MS
    assert {row["job_version"] for row in rows if row["window_start"] == straddling} == {"v2"}


def test_broken_upgrade_rolls_back_to_v1_with_its_state(airflow_home: AirflowHome, topics: Topics, jobs: Jobs) -> None:
    deployment = Deployment(airflow_home, topics, jobs, "p4-rb")
    v1 = deployment.deploy_v1()
    first = produce_first_batch(deployment)

    run = deployment.run("flink_upgrade_with_rollback", version="broken")
    assert run.state == "failed", run
    assert run.states["health_gate"] == "failed", run
    for task in ROLLBACK:
        assert run.states[task] == "success", (task, run)
    assert run.states["fail_upgrade"] == "failed", run
    assert run.states["savepoint_new_version"] == run.states["record_last_good"] == "skipped"
    assert "StateMigrationException" in run.log("health_gate")  # the gate fails with the root cause
    broken_id = run.xcom("resolve_settings", "job_id")
    status = run.xcom("new_version_status")  # FlinkJobStatusOperator: asked after the cancel
    assert status["job_id"] == broken_id and status["state"] in ("FAILED", "CANCELED"), status
    assert "StateMigrationException" in status["root_cause"], status
    log = run.log("fail_upgrade")
    assert "Upgrade to broken failed" in log
    assert "StateMigrationException" in log

    rollback_id = run.xcom("find_running_job", "rollback_job_id")
    assert deployment.rest.get_job_state(broken_id) in ("FAILED", "CANCELED")
    assert deployment.rest.get_job_state(v1) == "FINISHED"
    assert [(job["jid"], job["name"]) for job in deployment.active()] == [(rollback_id, f"{deployment.name}@v1")]
    restored = deployment.rest.get_checkpoints(rollback_id)["latest"]["restored"]["external_path"]
    assert restored == run.xcom("stop_with_savepoint")
    good = run.variables[f"flink_phase4_last_good__{deployment.name}"]
    assert (good["version"], good["job_id"]) == ("v1", v1)  # unchanged: the upgrade did not pass

    check_whole_run(deployment, first, "v1")


def test_retry_branch_and_retried_submit_never_duplicate_the_job(
    airflow_home: AirflowHome, topics: Topics, jobs: Jobs
) -> None:
    deployment = Deployment(airflow_home, topics, jobs, "p4-rt")
    v1 = deployment.deploy_v1()

    run = deployment.run("flink_upgrade_with_rollback", version="v2", fault_injection="savepoint_failure")
    assert run.state == "success", run
    assert run.states["stop_with_savepoint"] == "failed", run
    assert run.states["retry_stop_with_savepoint"] == "success", run
    assert run.states["savepoint_taken"] == run.states["abort_and_page"] == "skipped"
    assert "savepoint" in run.log("stop_with_savepoint").lower()
    old_job = run.xcom("old_job_status")  # asked because the stop failed: the job lives, so the stop is retried
    assert (old_job["job_id"], old_job["state"]) == (v1, "RUNNING"), old_job
    new_id = run.xcom("resolve_settings", "job_id")
    assert deployment.rest.get_job_state(v1) == "FINISHED"
    assert [job["jid"] for job in deployment.active()] == [new_id]

    # An Airflow retry of submit_new_version: the same job id, so it attaches instead of submitting again.
    again = FlinkJobSubmitOperator(
        task_id="submit_new_version",
        py_file=run.xcom("resolve_settings", "py_file"),
        program_args=run.xcom("resolve_settings", "program_args"),
        python_jar=run.xcom("resolve_settings", "python_jar"),
        job_name=run.xcom("resolve_settings", "job_name"),
        job_id=new_id,
        savepoint_path=run.xcom("savepoint_ready"),
    )
    assert again.execute({"ti": _TI()}) == new_id
    assert [job["jid"] for job in deployment.active()] == [new_id]
    names = [job["name"] for job in deployment.rest.list_jobs() if str(job["name"]).startswith(f"{deployment.name}@")]
    assert sorted(names) == [f"{deployment.name}@v1", f"{deployment.name}@v2"]


class _TI:
    """The task instance an operator needs outside Airflow's runner (it only pushes its link XCom)."""

    dag_id, task_id, run_id, map_index = "flink_upgrade_with_rollback", "submit_new_version", "retry", -1

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed = (key, value)


def test_recover_from_the_latest_checkpoint_after_a_cancel(
    airflow_home: AirflowHome, topics: Topics, jobs: Jobs
) -> None:
    deployment = Deployment(airflow_home, topics, jobs, "p4-rc")
    v1 = deployment.deploy_v1()
    first = produce_first_batch(deployment)
    seen = int(deployment.rest.get_checkpoints(v1)["counts"]["completed"])
    wait_checkpoints(deployment.rest, v1, seen + 2)  # one complete checkpoint after all of the first batch
    deployment.rest.cancel_job(v1)
    wait_state(deployment.rest, v1, {"CANCELED"})

    run = deployment.run("flink_recover_from_savepoint", restore_from="latest_checkpoint", checkpoint_of_job=v1)
    assert run.state == "success", run
    checkpoint = run.xcom("find_restore_point")["location"]
    assert f"/{v1}/chk-" in checkpoint
    assert run.xcom("find_restore_point")["savepoint"] is None  # a checkpoint is not recorded as a savepoint
    restored_id = run.xcom("submit_restored")
    assert [(job["jid"], job["name"]) for job in deployment.active()] == [(restored_id, f"{deployment.name}@v1")]
    restored = deployment.rest.get_checkpoints(restored_id)["latest"]["restored"]["external_path"]
    assert restored == checkpoint
    good = run.variables[f"flink_phase4_last_good__{deployment.name}"]
    assert (good["version"], good["job_id"], good["restored_from"]) == ("v1", restored_id, checkpoint)

    check_whole_run(deployment, first, "v1")
