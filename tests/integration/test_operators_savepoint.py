"""Savepoint, stop-with-savepoint, restore and cancel against the real cluster (jobs started through SQL)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.savepoint import (
    FlinkCancelJobOperator,
    FlinkStopJobOperator,
    FlinkTriggerSavepointOperator,
)
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkNotFoundError
from tests.integration import _flink_it as it
from tests.integration._flink_it import context_for

pytestmark = pytest.mark.integration



def start_sql_job(table: str, **kwargs: object) -> str:
    """Start a 1-slot datagen -> blackhole job and wait until it runs.

    The source generates random values: a datagen ``sequence`` holds its whole range in memory.
    """
    script = (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5');\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    )
    op = FlinkSqlGatewayOperator(
        task_id="start",
        sql=script,
        session_properties={"parallelism.default": "1"},
        wait_for="RUNNING",
        wait_timeout=120,
        poll_interval=0.5,
        **kwargs,  # type: ignore[arg-type]
    )
    (job_id,) = op.execute(context_for("start"))["job_ids"]
    return str(job_id)


def local_path(location: str) -> Path:
    """The local directory of a ``file:`` savepoint location."""
    return Path(urlparse(location).path)


def test_savepoint_stop_and_restore(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    table = f"it_sp_{uuid.uuid4().hex[:8]}"
    job_id = start_sql_job(table)
    started_jobs.append(job_id)

    context = context_for("savepoint")
    savepoint = FlinkTriggerSavepointOperator(task_id="savepoint", job_id=job_id, timeout=120).execute(context)
    assert (local_path(savepoint) / "_metadata").is_file()
    assert rest.get_job_state(job_id) == "RUNNING"
    assert context["ti"].xcoms["flink_job_id"] == job_id

    stopped = FlinkStopJobOperator(task_id="stop", job_id=job_id, timeout=120).execute(context_for("stop"))
    assert stopped != savepoint and (local_path(stopped) / "_metadata").is_file()
    it.wait_until(lambda: rest.get_job_state(job_id) == "FINISHED", timeout=60)
    again = FlinkStopJobOperator(task_id="stop", job_id=job_id, timeout=120).execute(context_for("stop"))
    assert again == stopped  # a retry returns the savepoint the stop took

    restored_id = start_sql_job(table, savepoint_path=stopped)
    started_jobs.append(restored_id)
    restored = (rest.get_checkpoints(restored_id).get("latest") or {}).get("restored") or {}
    assert restored.get("external_path") == stopped


def test_cancel_with_and_without_savepoint(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    first = start_sql_job(f"it_cancel_{uuid.uuid4().hex[:8]}")
    second = start_sql_job(f"it_cancel_{uuid.uuid4().hex[:8]}")
    started_jobs.extend([first, second])

    assert FlinkCancelJobOperator(task_id="cancel", job_id=first, timeout=60).execute(context_for("cancel")) is None
    assert rest.get_job_state(first) == "CANCELED"
    assert FlinkCancelJobOperator(task_id="cancel", job_id=first).execute(context_for("cancel")) is None

    location = FlinkCancelJobOperator(
        task_id="cancel", job_id=second, savepoint_before_cancel=True, timeout=120
    ).execute(context_for("cancel"))
    assert location and (local_path(location) / "_metadata").is_file()
    assert rest.get_job_state(second) == "CANCELED"


def test_cancel_of_a_job_the_cluster_does_not_know_is_nothing_to_cancel(rest: FlinkRestHook) -> None:
    never_started = uuid.uuid4().hex
    assert rest.find_job_state(never_started) is None
    assert FlinkCancelJobOperator(task_id="cancel", job_id=never_started).execute(context_for("cancel")) is None
    with pytest.raises(FlinkNotFoundError, match="no job to take a savepoint of"):
        FlinkCancelJobOperator(task_id="cancel", job_id=never_started, savepoint_before_cancel=True).execute(
            context_for("cancel")
        )
