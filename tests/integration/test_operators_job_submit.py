"""FlinkJobSubmitOperator against the real cluster: jar and PyFlink jobs, retries, names, slots, deferral."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.protocol.errors import FlinkError, FlinkResourceError
from airflow_flink_provider.protocol.job_ids import deterministic_job_id, submission_purpose
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.integration import _flink_it as it
from tests.integration._flink_it import DATA, context_for, python_jar

pytestmark = pytest.mark.integration



def first_id(ti: it.ItTI, op: FlinkJobSubmitOperator) -> str:
    """The job id of generation 0 of ``op`` in the task instance ``ti``."""
    purpose = submission_purpose(op.fingerprint_fields(op.validate()))
    return deterministic_job_id(ti.dag_id, ti.task_id, ti.run_id, "-1", purpose, "generation-0")


def jar_operator(jar: Path, name: str, **kwargs: object) -> FlinkJobSubmitOperator:
    return it.throttled_submit(jar, name, poll_interval=0.5, wait_timeout=120, **kwargs)


def test_jar_job_runs_under_its_deterministic_id(
    rest: FlinkRestHook, started_jobs: list[str], throttled_jar: Path
) -> None:
    name = f"it-jar-{uuid.uuid4().hex[:8]}"
    context = context_for("submit")
    ti = context["ti"]

    job_id = jar_operator(throttled_jar, name, wait_for_running=True).execute(context)
    started_jobs.append(job_id)

    assert job_id == first_id(ti, jar_operator(throttled_jar, name))
    assert ti.xcoms["flink_job_id"] == job_id
    job = rest.get_job(job_id)
    assert job["state"] == "RUNNING" and job["name"] == name
    tasks = rest.get_job_overview(job_id)["tasks"]  # live; GET /jobs/{id} lags by web.refresh-interval
    assert tasks["total"] > 0 and tasks["running"] == tasks["total"]
    assert not [jar for jar in rest.list_jars() if jar.get("name") == throttled_jar.name]


def test_retry_with_the_same_context_attaches_to_the_same_job(
    rest: FlinkRestHook, started_jobs: list[str], throttled_jar: Path
) -> None:
    name = f"it-retry-{uuid.uuid4().hex[:8]}"
    context = context_for("submit")

    first = jar_operator(throttled_jar, name).execute(context)
    started_jobs.append(first)
    second = jar_operator(throttled_jar, name).execute(context)

    assert second == first
    assert [job["jid"] for job in rest.list_jobs(name=name)] == [first]


def test_job_name_already_running_fails_or_attaches(
    rest: FlinkRestHook, started_jobs: list[str], throttled_jar: Path
) -> None:
    name = f"it-name-{uuid.uuid4().hex[:8]}"
    first = jar_operator(throttled_jar, name, wait_for_running=True).execute(context_for("submit"))
    started_jobs.append(first)

    with pytest.raises(FlinkError, match=f"named '{name}' is already running: {first}"):
        jar_operator(throttled_jar, name).execute(context_for("submit"))
    attached = jar_operator(throttled_jar, name, if_running="attach").execute(context_for("submit"))

    assert attached == first
    assert len(rest.list_jobs(name=name)) == 1


def test_pyflink_job_gets_its_arguments(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    name = f"it-pyflink-{uuid.uuid4().hex[:8]}"
    context = context_for("pyflink")
    op = FlinkJobSubmitOperator(
        task_id="pyflink",
        py_file=str(DATA / "pyflink_datagen_job.py"),
        python_jar=python_jar(),
        program_args=[name, "--ignored", "-x"],
        wait_for_running=True,
        wait_timeout=180,
        poll_interval=1,
    )

    job_id = op.execute(context)
    started_jobs.append(job_id)

    job = rest.get_job(job_id)
    assert job["name"] == name  # the first user argument reached the program, after PythonDriver's `--`
    assert job["state"] == "RUNNING"
    assert job_id == first_id(context["ti"], op)


def test_bad_pyflink_argument_never_reaches_the_jobmanager(rest: FlinkRestHook) -> None:
    before = rest.get_overview()
    op = FlinkJobSubmitOperator(task_id="bad", py_module="jobs.1bad", python_jar=python_jar())

    with pytest.raises(ValueError, match="py_module must be a dotted"):
        op.execute(context_for("bad"))

    after = rest.get_overview()
    assert after["taskmanagers"] == before["taskmanagers"] >= 1
    assert after["flink-version"] == before["flink-version"]


def test_more_slots_than_the_cluster_has_is_a_clear_error(rest: FlinkRestHook, throttled_jar: Path) -> None:
    name = f"it-slots-{uuid.uuid4().hex[:8]}"
    total = rest.get_overview()["slots-total"]

    with pytest.raises(FlinkResourceError) as info:
        jar_operator(throttled_jar, name, parallelism=total + 1).execute(context_for("slots"))

    assert f"needs {total + 1} slots" in str(info.value)
    assert "Hint: Not enough task slots" in str(info.value)
    assert rest.list_jobs(name=name) == []


def test_deferrable_wait_runs_the_trigger_against_the_cluster(
    rest: FlinkRestHook, started_jobs: list[str], throttled_jar: Path
) -> None:
    name = f"it-defer-{uuid.uuid4().hex[:8]}"
    op = jar_operator(throttled_jar, name, wait_for_running=True, deferrable=True)
    context = context_for("submit")

    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    job_id = context["ti"].xcoms["flink_job_id"]
    started_jobs.append(job_id)

    assert isinstance(info.value.trigger, FlinkJobStateTrigger)
    event = it.first_event(info.value.trigger)
    assert event == {"status": "success", "job_id": job_id, "state": "RUNNING"}
    assert op.execute_complete(context, event) == job_id
