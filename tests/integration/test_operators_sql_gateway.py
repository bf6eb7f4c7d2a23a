"""FlinkSqlGatewayOperator against the real SQL Gateway, Flink and Kafka."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkError, FlinkResourceError, FlinkSqlError
from airflow_flink_provider.protocol.http import Request
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.integration import _flink_it as it
from tests.integration._flink_it import KAFKA, consume, context_for, produce, wait_until

pytestmark = pytest.mark.integration


KAFKA_SCRIPT = """-- orders in, big orders out
CREATE TABLE orders (
  id BIGINT,
  amount DOUBLE
) WITH (
  'connector' = 'kafka',
  'topic' = '{{ params.source }}',
  'properties.bootstrap.servers' = '{{ params.kafka }}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json'
);
CREATE TABLE big_orders (id BIGINT, amount DOUBLE) WITH (
  'connector' = 'kafka',
  'topic' = '{{ params.sink }}',
  'properties.bootstrap.servers' = '{{ params.kafka }}',
  'format' = 'json'
);

INSERT INTO big_orders SELECT id, amount FROM orders WHERE amount >= {{ params.threshold }};
SELECT id, amount FROM orders WHERE amount < 10;
"""


def streaming_script(table: str) -> str:
    """An unbounded datagen -> blackhole job whose job name contains ``table``."""
    return (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '2');\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} SELECT n FROM {table}_src;\n"
    )


def sql_operator(sql: str, **kwargs: Any) -> FlinkSqlGatewayOperator:
    kwargs.setdefault("session_properties", {"parallelism.default": "1"})
    return FlinkSqlGatewayOperator(task_id="sql", sql=sql, poll_interval=0.5, wait_timeout=120, **kwargs)


def render(op: FlinkSqlGatewayOperator, context: dict[str, Any], params: dict[str, Any]) -> None:
    op.render_template_fields({**context, "params": params})  # type: ignore[arg-type]


def test_kafka_script_runs_bounded_job_and_returns_query_rows(
    rest: FlinkRestHook, started_jobs: list[str], topics: Callable[[str], str]
) -> None:
    source, sink = topics("it-orders"), topics("it-big-orders")
    produce(source, [{"id": i, "amount": float(i * 10)} for i in range(10)])
    context = context_for("sql")
    op = sql_operator(KAFKA_SCRIPT, wait_for="FINISHED", result_row_limit=50)
    render(op, context, {"source": source, "sink": sink, "kafka": KAFKA, "threshold": 50})

    outcome = op.execute(context)
    started_jobs.extend(outcome["job_ids"])

    (job_id,) = outcome["job_ids"]
    assert rest.get_job_state(job_id) == "FINISHED"
    assert context["ti"].xcoms["flink_job_id"] == job_id
    assert outcome["results"] == [
        {"statement": 4, "line": 21, "columns": ["id", "amount"], "rows": [[0, 0.0]], "truncated": False}
    ]
    written = consume(sink, 5)
    assert sorted(record["id"] for record in written) == [5, 6, 7, 8, 9]
    assert all(record["amount"] >= 50 for record in written)


def test_query_rows_are_bounded_by_the_row_limit(topics: Callable[[str], str]) -> None:
    source, sink = topics("it-orders"), topics("it-unused")
    produce(source, [{"id": i, "amount": 1.0} for i in range(8)])
    context = context_for("sql")
    script = KAFKA_SCRIPT.split("INSERT INTO")[0] + "SELECT id FROM orders;"
    op = sql_operator(script, result_row_limit=3)
    render(op, context, {"source": source, "sink": sink, "kafka": KAFKA, "threshold": 0})

    outcome = op.execute(context)

    assert outcome["job_ids"] == []
    (result,) = outcome["results"]
    assert result["columns"] == ["id"] and result["truncated"] is True
    assert len(result["rows"]) == 3


def test_bad_sql_names_the_script_line() -> None:
    script = (
        "-- a table, then a broken query\n"
        "CREATE TABLE t (a INT) WITH ('connector' = 'datagen', 'number-of-rows' = '3');\n"
        "\n"
        "SELECT a\n"
        "FROM t\n"
        "WHERE a >>> 3;\n"
    )
    with pytest.raises(FlinkSqlError) as info:
        sql_operator(script).execute(context_for("sql"))

    error = info.value
    assert error.line == 6
    assert "Statement 2/2 failed at script line 6" in str(error)
    assert "   6 | WHERE a >>> 3;" in str(error)


def test_unknown_table_names_its_line() -> None:
    with pytest.raises(FlinkSqlError) as info:
        sql_operator("SET 'table.dml-sync' = 'false';\n\nSELECT * FROM\n  no_such_table;").execute(context_for("sql"))
    assert info.value.line == 4
    assert "no_such_table" in str(info.value)


def test_more_slots_than_the_cluster_has_is_refused(rest: FlinkRestHook) -> None:
    table = f"it_slots_{uuid.uuid4().hex[:8]}"
    total = rest.get_overview()["slots-total"]
    op = sql_operator(streaming_script(table), session_properties={"parallelism.default": str(total * 4)})

    with pytest.raises(FlinkResourceError) as info:
        op.execute(context_for("sql"))

    assert f"needs {total * 4} slots" in str(info.value) and "Hint: Not enough task slots" in str(info.value)
    assert not [job for job in rest.list_jobs() if table in job["name"]]


def test_retry_with_the_same_context_reattaches(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    table = f"it_retry_{uuid.uuid4().hex[:8]}"
    context = context_for("sql")

    first = sql_operator(streaming_script(table), wait_for="RUNNING").execute(context)
    started_jobs.extend(first["job_ids"])
    second = sql_operator(streaming_script(table)).execute(context)

    assert second["job_ids"] == first["job_ids"]
    assert [job["jid"] for job in rest.list_jobs() if table in job["name"]] == first["job_ids"]


def test_deferrable_wait_runs_the_trigger_against_the_cluster(rest: FlinkRestHook, started_jobs: list[str]) -> None:
    table = f"it_defer_{uuid.uuid4().hex[:8]}"
    context = context_for("sql")
    op = sql_operator(streaming_script(table), wait_for="RUNNING", deferrable=True)

    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    outcome = info.value.kwargs["outcome"]
    started_jobs.extend(outcome["job_ids"])

    assert isinstance(info.value.trigger, FlinkJobStateTrigger)
    event = it.first_event(info.value.trigger)
    assert event == {"status": "success", "job_id": outcome["job_ids"][0], "state": "RUNNING"}
    assert op.execute_complete(context, event, **info.value.kwargs) == outcome


def test_on_kill_closes_the_gateway_session(rest: FlinkRestHook) -> None:
    table = f"it_kill_{uuid.uuid4().hex[:8]}"
    script = (
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1');\n"
        f"SELECT n FROM {table};"
    )
    op = sql_operator(script, result_row_limit=10_000, statement_timeout=300)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context_for("sql"))
        except BaseException as err:  # the statement fails once its session is gone
            errors.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: [job for job in rest.list_jobs(states=["RUNNING"]) if table in job["name"]], timeout=90)
    session = op._session
    assert session is not None

    op.on_kill()
    worker.join(timeout=60)

    assert not worker.is_alive()
    assert errors and isinstance(errors[0], FlinkError)
    gateway = FlinkSqlGatewayHook()
    response = gateway.transport.send(
        Request("GET", f"/{gateway.get_api_version()}/sessions/{session}", accept=frozenset({404, 500}))
    )
    assert response.status == 404 or "does not exist" in response.text
    assert not gateway.session_exists(session)
    time.sleep(1)
    wait_until(lambda: not [job for job in rest.list_jobs(states=["RUNNING"]) if table in job["name"]], timeout=60)
