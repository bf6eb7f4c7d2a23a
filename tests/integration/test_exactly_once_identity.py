"""Job identity on the real cluster: what a clear (a new try of the same task instance) does.

After a job FINISHED, was CANCELED or was stopped with a savepoint, ``if_ended`` decides: ``resubmit`` runs
it again under the next generation's id, ``reuse`` takes that job's outcome, ``fail`` refuses. An inserted
statement leaves the other statements' jobs alone; an edited INSERT is a new job, refused while the job of
the old text still runs. Jobs are counted by this test's own unique table or job names.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import FlinkStopJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkError, FlinkJobFailedError
from tests.integration import _flink_it as it
from tests.unit._flink_fakes import FakeStateStore

pytestmark = pytest.mark.integration



def context() -> dict[str, Any]:
    return {**it.context_for("identity"), "task_state_store": FakeStateStore()}


def source(table: str, bounded: bool) -> str:
    rows = "'number-of-rows' = '5'" if bounded else "'rows-per-second' = '1'"
    return (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', {rows});\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
    )


def sql(script: str, **kwargs: Any) -> FlinkSqlGatewayOperator:
    return FlinkSqlGatewayOperator(
        task_id="sql",
        sql=script,
        session_properties={"parallelism.default": "1"},
        poll_interval=0.5,
        wait_timeout=120,
        **kwargs,
    )


def jobs_named(rest: FlinkRestHook, marker: str) -> list[dict[str, Any]]:
    return [job for job in rest.list_jobs() if marker in str(job.get("name"))]


def first_try(prefix: str, bounded: bool, started_jobs: list[str]) -> tuple[str, str, dict[str, Any], str]:
    """Run a one-INSERT script once: ``(table, script, context, job id)``, the job waited for."""
    table = f"{prefix}_{uuid.uuid4().hex[:8]}"
    script = source(table, bounded) + f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    ctx = context()
    (job_id,) = sql(script, wait_for="FINISHED" if bounded else "RUNNING").execute(ctx)["job_ids"]
    started_jobs.append(job_id)
    return table, script, ctx, job_id


@pytest.mark.parametrize("if_ended", ["resubmit", "reuse", "fail"])
def test_a_clear_after_finished(rest: FlinkRestHook, started_jobs: list[str], if_ended: str) -> None:
    table, script, ctx, first = first_try("it_fin", True, started_jobs)
    assert rest.get_job_state(first) == "FINISHED"

    op = sql(script, wait_for="FINISHED", if_ended=if_ended)
    if if_ended == "fail":
        with pytest.raises(FlinkError, match=rf"{first} of an earlier try of this task already ended \(FINISHED\)"):
            op.execute(ctx)
        assert [job["jid"] for job in jobs_named(rest, table)] == [first]
        return
    (second,) = op.execute(ctx)["job_ids"]
    started_jobs.append(second)
    if if_ended == "reuse":
        assert second == first and [job["jid"] for job in jobs_named(rest, table)] == [first]
    else:
        assert second != first and rest.get_job_state(second) == "FINISHED"
        assert sorted(job["jid"] for job in jobs_named(rest, table)) == sorted([first, second])


@pytest.mark.parametrize("if_ended", ["resubmit", "reuse", "fail"])
def test_a_clear_after_canceled(rest: FlinkRestHook, started_jobs: list[str], if_ended: str) -> None:
    table, script, ctx, first = first_try("it_can", False, started_jobs)
    rest.cancel_job(first)
    it.wait_until(lambda: rest.get_job_state(first) == "CANCELED", timeout=60)

    op = sql(script, wait_for="RUNNING", if_ended=if_ended)
    if if_ended == "resubmit":
        (second,) = op.execute(ctx)["job_ids"]
        started_jobs.append(second)
        assert second != first and rest.get_job_overview(second)["state"] == "RUNNING"
        return
    error = FlinkJobFailedError if if_ended == "reuse" else FlinkError
    with pytest.raises(error, match=f"{first}.*CANCELED"):
        op.execute(ctx)
    assert [job["jid"] for job in jobs_named(rest, table)] == [first]


@pytest.mark.parametrize("if_ended", ["resubmit", "reuse", "fail"])
def test_a_clear_after_stop_with_savepoint(
    rest: FlinkRestHook, started_jobs: list[str], throttled_jar: Path, tmp_path: Path, if_ended: str
) -> None:
    name = f"it-stopped-{uuid.uuid4().hex[:8]}"

    def submit(**kwargs: Any) -> FlinkJobSubmitOperator:
        return it.throttled_submit(
            throttled_jar, name, wait_for_running=True, wait_timeout=120, poll_interval=0.5, **kwargs
        )

    ctx = context()
    first = submit().execute(ctx)
    started_jobs.append(first)
    location = FlinkStopJobOperator(
        task_id="stop", job_id=first, target_directory=f"file://{tmp_path}", timeout=120
    ).execute(context())
    assert rest.get_job_state(first) == "FINISHED" and location

    op = submit(if_ended=if_ended)
    if if_ended == "fail":
        with pytest.raises(FlinkError, match=r"already ended \(FINISHED\); if_ended='fail'"):
            op.execute(ctx)
        assert [job["jid"] for job in jobs_named(rest, name)] == [first]
        return
    second = op.execute(ctx)
    started_jobs.append(second)
    if if_ended == "reuse":
        assert second == first and len(jobs_named(rest, name)) == 1
    else:
        assert second != first and rest.get_job_overview(second)["state"] == "RUNNING"


def test_an_inserted_statement_leaves_the_other_job_alone(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    table, audit = f"it_ins_{uuid.uuid4().hex[:8]}", f"it_aud_{uuid.uuid4().hex[:8]}"
    ddl = source(table, bounded=False) + f"CREATE TABLE {audit} (n BIGINT) WITH ('connector' = 'blackhole');\n"
    insert = f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    ctx = context()
    (first,) = sql(ddl + insert, wait_for="RUNNING").execute(ctx)["job_ids"]
    started_jobs.append(first)

    outcome = sql(ddl + f"INSERT INTO {audit} SELECT n FROM {table}_src;\n" + insert, wait_for="RUNNING").execute(ctx)
    started_jobs.extend(outcome["job_ids"])

    assert outcome["job_ids"][1] == first
    assert [job["jid"] for job in jobs_named(rest, table) if job["state"] == "RUNNING"] == [first]
    assert [job["jid"] for job in jobs_named(rest, audit)] == [outcome["job_ids"][0]]


def test_an_edited_insert_is_a_new_job_refused_while_the_old_one_runs(
    rest: FlinkRestHook, started_jobs: list[str]
) -> None:
    table = f"it_edit_{uuid.uuid4().hex[:8]}"
    ddl = source(table, bounded=False)
    ctx = context()
    (first,) = sql(ddl + f"INSERT INTO {table} SELECT n FROM {table}_src;", wait_for="RUNNING").execute(ctx)["job_ids"]
    started_jobs.append(first)
    edited = sql(ddl + f"INSERT INTO {table} SELECT n + 1 FROM {table}_src;", wait_for="RUNNING")

    with pytest.raises(FlinkError, match=f"Flink job {first} of an earlier try of this task is still RUNNING"):
        edited.execute(ctx)
    assert [job["jid"] for job in jobs_named(rest, table)] == [first]

    rest.cancel_job(first)
    it.wait_until(lambda: rest.get_job_state(first) == "CANCELED", timeout=60)
    (second,) = edited.execute(ctx)["job_ids"]
    started_jobs.append(second)
    assert second != first and rest.get_job_overview(second)["state"] == "RUNNING"
