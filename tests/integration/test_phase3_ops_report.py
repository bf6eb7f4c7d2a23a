"""flink_ops_report's task on a real running job: it finds the job by name, collects every checklist item
through the provider's get_job_signals, judges them, and fails with a clear message for an unknown job."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from flink_lessons.phase3.checklist import ITEMS
from flink_lessons.phase3.operators import OpsReportOperator

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook

pytestmark = pytest.mark.integration


def test_ops_report_judges_a_running_job(gateway: FlinkSqlGatewayHook, session: str, rest: FlinkRestHook,
                                         jobs: list[str]) -> None:  # fmt: skip
    name = f"it-ops-report-{uuid.uuid4().hex[:8]}"
    for statement in (
        "SET 'execution.checkpointing.interval' = '1 s'",
        f"SET 'pipeline.name' = '{name}'",
        "CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '50')",
        "CREATE TEMPORARY TABLE snk (id BIGINT) WITH ('connector' = 'blackhole')",
    ):
        gateway.run_statement(session, statement)
    job_id = gateway.run_statement(session, "INSERT INTO snk SELECT id FROM src").job_id
    assert job_id
    jobs.append(job_id)
    deadline = time.monotonic() + 120
    while rest.get_checkpoints(job_id)["counts"]["completed"] < 1:  # a condition, with a generous deadline
        assert time.monotonic() < deadline, "no checkpoint completed in 120 s"
        time.sleep(0.5)

    context = {"dag_run": SimpleNamespace(conf={}), "ti": SimpleNamespace(try_number=1)}
    report = OpsReportOperator(task_id="report", job=name, fail_on_bad=True).execute(context)  # type: ignore[arg-type]
    assert report["job_id"] == job_id and report["name"] == name
    items = {row["item"]: row for row in report["items"]}
    assert list(items) == [item.key for item in ITEMS]
    assert items["state"]["value"] == "RUNNING" and items["state"]["verdict"] == "ok"
    assert items["restarts"]["value"] == 0
    assert items["checkpoint_age"]["value"] is not None and items["checkpoint_age"]["verdict"] in ("ok", "warn")
    assert items["failed_checkpoints"]["verdict"] == "ok"
    assert report["bad"] == []

    with pytest.raises(AirflowFailException, match="no RUNNING Flink job is named 'no-such-job"):
        OpsReportOperator(task_id="report", job=f"no-such-job-{name}").execute(context)  # type: ignore[arg-type]
