"""FlinkSqlGatewayHook against the real local SQL Gateway (and the REST API to check the jobs it starts).

Every job a test starts is cancelled in a finalizer; sessions are closed. Each test uses at most 2 slots.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkDuplicateJobError,
    FlinkMissingConnectorError,
    FlinkNotFoundError,
    FlinkSqlError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id
from airflow_flink_provider.protocol.statements import split_statements
from tests.integration._flink_it import TERMINAL, wait_for_state, wait_until
from tests.support.chaos_server import OutageProxy

pytestmark = pytest.mark.integration

VALUES = "SELECT * FROM (VALUES (1,'a'),(2,'b')) AS t(id, name)"


def test_api_version_and_info(gateway: FlinkSqlGatewayHook, rest: FlinkRestHook) -> None:
    assert gateway.get_api_version() == "v4"
    info = gateway.get_info()
    assert info["productName"] == "Apache Flink"
    assert info["version"] == rest.get_overview()["flink-version"]
    assert gateway.test_connection()[0]


def test_bounded_query_returns_exact_rows(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str, jobs: list[str]
) -> None:
    result = gateway.run_statement(session, VALUES)
    assert result.job_id is not None
    jobs.append(result.job_id)
    assert result.columns == ["id", "name"]
    assert result.rows == [[1, "a"], [2, "b"]]
    assert result.as_dicts() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert result.is_query_result and not result.truncated
    assert result.result_kind == "SUCCESS_WITH_CONTENT"
    assert re.fullmatch(r"[0-9a-f]{32}", result.job_id)
    assert wait_for_state(rest, result.job_id, TERMINAL) == "FINISHED"


def test_streaming_aggregate_applies_retractions(gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]) -> None:
    result = gateway.run_statement(
        session, "SELECT name, COUNT(*) AS c FROM (VALUES (1,'a'),(2,'b'),(3,'a')) AS t(id, name) GROUP BY name"
    )
    jobs.append(str(result.job_id))
    assert sorted(result.rows) == [["a", 2], ["b", 1]]
    assert result.changelog.get("UPDATE_BEFORE") == result.changelog.get("UPDATE_AFTER") == 1


def test_execute_then_wait_then_fetch(gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]) -> None:
    operation = gateway.execute_statement(session, VALUES, execution_config={"pipeline.name": "it-values"})
    assert gateway.wait_for_operation(session, operation, timeout=60) == "FINISHED"
    assert gateway.get_operation_status(session, operation) == "FINISHED"
    result = gateway.fetch_results(session, operation, row_limit=1)
    jobs.append(str(result.job_id))
    assert result.rows == [[1, "a"]] and result.truncated
    assert gateway.close_operation(session, operation) == "CLOSED"
    with pytest.raises(FlinkNotFoundError, match="Can not find the submitted operation"):
        gateway.get_operation_status(session, operation)


def test_parse_error_has_line_and_column_that_map_to_the_script(gateway: FlinkSqlGatewayHook, session: str) -> None:
    script = "SET 'pipeline.name' = 'x';\n\nSELECT id,\n  name\nFROMM (VALUES (1, 'a')) AS t(id, name);"
    statements = split_statements(script)
    gateway.configure_session(session, statements[0].text)
    with pytest.raises(FlinkSqlError) as info:
        gateway.run_statement(session, statements[1].text)
    err = info.value
    assert err.message.startswith('ParseException: Encountered "(" at line 3, column 7.')
    assert (err.line, err.column) == (3, 7)
    assert statements[1].script_position(err.line, err.column) == (5, 7)
    assert script.splitlines()[4][6] == "("
    assert err.status == 500 and err.hint is not None and "line 3, column 7" in err.hint


def test_validation_error_names_the_column(gateway: FlinkSqlGatewayHook, session: str) -> None:
    operation = gateway.execute_statement(session, "SELECT id,\n nope FROM (VALUES (1)) AS t(id)")
    with pytest.raises(FlinkSqlError) as info:
        gateway.wait_for_operation(session, operation, timeout=60)
    assert info.value.message == "SqlValidatorException: Column 'nope' not found in any table"
    assert (info.value.line, info.value.column) == (2, 2)
    assert gateway.get_operation_status(session, operation) == "ERROR"


def test_missing_connector(gateway: FlinkSqlGatewayHook, session: str) -> None:
    gateway.configure_session(session, "CREATE TEMPORARY TABLE bad_conn (id INT) WITH ('connector' = 'nosuch')")
    with pytest.raises(FlinkMissingConnectorError) as info:
        gateway.run_statement(session, "SELECT * FROM bad_conn")
    assert "Could not find any factory for identifier 'nosuch'" in info.value.message
    assert "kafka" in info.value.message.splitlines()  # Flink lists the factories it has
    assert info.value.hint is not None and "'nosuch'" in info.value.hint


def test_configure_session_set_ddl_and_refusal(gateway: FlinkSqlGatewayHook, session: str) -> None:
    gateway.configure_session(session, "SET 'table.exec.state.ttl' = '1 h'")
    gateway.configure_session(session, "CREATE TEMPORARY VIEW v AS SELECT 1 AS x")
    assert gateway.get_session_config(session)["table.exec.state.ttl"] == "1 h"
    assert gateway.run_statement(session, "SHOW VIEWS").rows == [["v"]]
    with pytest.raises(FlinkSqlError) as info:
        gateway.configure_session(session, "SELECT 1")
    assert "Unsupported statement for configuring session" in info.value.message
    assert info.value.hint is not None and "execute_statement" in info.value.hint


def test_session_lifecycle(gateway: FlinkSqlGatewayHook) -> None:
    handle = gateway.open_session({"pipeline.name": "it-session"})
    try:
        assert gateway.session_exists(handle)
        gateway.heartbeat(handle)
        assert gateway.get_session_config(handle)["pipeline.name"] == "it-session"
    finally:
        gateway.close_session(handle)
    assert not gateway.session_exists(handle)
    gateway.close_session(handle)  # closing again is fine
    with pytest.raises(FlinkNotFoundError, match=f"Session '{handle}' does not exist"):
        gateway.execute_statement(handle, "SELECT 1")
    with pytest.raises(FlinkNotFoundError):
        gateway.heartbeat(handle)


def test_unbounded_query_is_cut_at_the_row_limit_and_its_job_cancelled(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str, jobs: list[str]
) -> None:
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE ticks (n BIGINT) WITH ('connector'='datagen', 'rows-per-second'='20')"
    )
    started = time.monotonic()
    result = gateway.run_statement(session, "SELECT n FROM ticks", row_limit=5, timeout=60)
    assert result.job_id is not None
    jobs.append(result.job_id)
    assert result.truncated and len(result.rows) == 5
    assert time.monotonic() - started < 30
    assert wait_for_state(rest, result.job_id, TERMINAL, timeout=30) == "CANCELED"  # closing the operation did it


def test_fetch_timeout_on_a_slow_unbounded_query(gateway: FlinkSqlGatewayHook, session: str, jobs: list[str]) -> None:
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE slow (n BIGINT) WITH ('connector'='datagen', 'rows-per-second'='1')"
    )
    operation = gateway.execute_statement(session, "SELECT n FROM slow")
    try:
        with pytest.raises(FlinkTimeoutError, match="no end of result after 3s"):
            gateway.fetch_results(session, operation, row_limit=1000, timeout=3)
    finally:
        gateway.close_operation(session, operation)


def test_insert_with_fixed_job_id_and_duplicate_refused(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str, jobs: list[str]
) -> None:
    job_id = deterministic_job_id("it", "insert", uuid.uuid4().hex)
    jobs.append(job_id)
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE src (n BIGINT) WITH ('connector'='datagen', 'rows-per-second'='1')"
    )
    gateway.configure_session(session, "CREATE TEMPORARY TABLE snk (n BIGINT) WITH ('connector'='blackhole')")
    gateway.configure_session(session, f"SET '$internal.pipeline.job-id' = '{job_id}'")
    result = gateway.run_statement(session, "INSERT INTO snk SELECT n FROM src")
    assert result.job_id == job_id
    assert result.columns == ["job id"] and result.rows == [[job_id]]
    assert wait_for_state(rest, job_id, {"RUNNING"} | TERMINAL) == "RUNNING"  # closing the operation did not stop it
    started = time.monotonic()
    with pytest.raises(FlinkDuplicateJobError) as info:
        gateway.run_statement(session, "INSERT INTO snk SELECT n FROM src")
    assert info.value.message == "DuplicateJobSubmissionException: Job has already been submitted."
    assert time.monotonic() - started < 10  # not retried
    rest.cancel_job(job_id)
    assert wait_for_state(rest, job_id, TERMINAL) == "CANCELED"
    with pytest.raises(FlinkDuplicateJobError):  # the id stays taken after the job ended
        gateway.run_statement(session, "INSERT INTO snk SELECT n FROM src")


@pytest.mark.parametrize(
    "statement_set",
    [
        "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a VALUES (1);\nINSERT INTO b VALUES (2);\nEND",
        "BEGIN STATEMENT SET;\nINSERT INTO a VALUES (1);\nINSERT INTO b VALUES (2);\nEND",
    ],
)
def test_statement_sets_run_as_one_job(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str, jobs: list[str], statement_set: str
) -> None:
    gateway.configure_session(session, "CREATE TEMPORARY TABLE a (x INT) WITH ('connector'='blackhole')")
    gateway.configure_session(session, "CREATE TEMPORARY TABLE b (x INT) WITH ('connector'='blackhole')")
    [statement] = split_statements(statement_set + ";")
    result = gateway.run_statement(session, statement.text)
    assert result.job_id is not None
    jobs.append(result.job_id)
    assert wait_for_state(rest, result.job_id, TERMINAL) == "FINISHED"
    assert len(rest.get_job(result.job_id)["vertices"]) >= 2  # both sinks in the one job


def test_cancel_of_a_finished_operation_is_tolerated(gateway: FlinkSqlGatewayHook, session: str) -> None:
    operation = gateway.execute_statement(session, "SET 'pipeline.name' = 'x'")
    assert gateway.wait_for_operation(session, operation, timeout=30) == "FINISHED"
    assert gateway.cancel_operation(session, operation) == "FINISHED"


# --- the client-side statement timeout and sessions (finding 6, 5, 13) ---------------------------------------


def jobs_named(rest: FlinkRestHook, name: str) -> Callable[[], list[dict[str, object]]]:
    return lambda: rest.list_jobs(name=name)


def test_a_statement_timeout_is_not_sent_to_the_gateway(gateway: FlinkSqlGatewayHook, session: str) -> None:
    # the 2.1 gateway refuses any executionTimeout above 0; the client keeps the timeout instead
    operation = gateway.execute_statement(session, "SET 'pipeline.name' = 'it-timeout'", timeout=30)
    assert gateway.get_operation_status(session, operation) == "FINISHED"


def test_execute_statement_timeout_cancels_and_closes_a_statement_that_runs_on(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str
) -> None:
    name = f"it-statement-timeout-{uuid.uuid4().hex[:8]}"
    gateway.configure_session(session, f"SET 'pipeline.name' = '{name}'")
    gateway.configure_session(session, "SET 'table.dml-sync' = 'true'")  # the INSERT runs until its job ends
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE src (n BIGINT) WITH ('connector'='datagen', 'rows-per-second'='5')"
    )
    gateway.configure_session(session, "CREATE TEMPORARY TABLE snk (n BIGINT) WITH ('connector'='blackhole')")
    try:
        started = time.monotonic()
        with pytest.raises(FlinkTimeoutError) as info:
            gateway.execute_statement(session, "INSERT INTO snk SELECT n FROM src", timeout=10)
        assert time.monotonic() - started < 30
        match = re.fullmatch(
            r"SQL Gateway operation (\S+) did not finish executing within the statement timeout of 10s; "
            r"it was cancelled and closed",
            info.value.message,
        )
        assert match, info.value.message
        with pytest.raises(FlinkNotFoundError, match="Can not find the submitted operation"):
            gateway.get_operation_status(session, match.group(1))  # closed
        [job] = wait_until(jobs_named(rest, name), timeout=30)
        assert wait_for_state(rest, str(job["jid"]), TERMINAL, timeout=60) == "CANCELED"  # and its job stopped
    finally:
        for job in rest.list_jobs(name=name):
            if job["state"] not in TERMINAL:
                rest.cancel_job(str(job["jid"]))


def test_run_statement_timeout_cancels_an_unbounded_query(
    gateway: FlinkSqlGatewayHook, rest: FlinkRestHook, session: str
) -> None:
    name = f"it-query-timeout-{uuid.uuid4().hex[:8]}"
    gateway.configure_session(session, f"SET 'pipeline.name' = '{name}'")
    gateway.configure_session(
        session, "CREATE TEMPORARY TABLE ticks (n BIGINT) WITH ('connector'='datagen', 'rows-per-second'='1')"
    )
    try:
        with pytest.raises(FlinkTimeoutError) as info:
            gateway.run_statement(session, "SELECT n FROM ticks", row_limit=10_000, timeout=6)
        match = re.fullmatch(
            r"SQL Gateway operation (\S+) had no end of result within the statement timeout of 6s; "
            r"it was cancelled and closed",
            info.value.message,
        )
        assert match, info.value.message
        with pytest.raises(FlinkNotFoundError):
            gateway.get_operation_status(session, match.group(1))
        [job] = wait_until(jobs_named(rest, name), timeout=30)
        assert wait_for_state(rest, str(job["jid"]), TERMINAL, timeout=60) == "CANCELED"
    finally:
        for job in rest.list_jobs(name=name):
            if job["state"] not in TERMINAL:
                rest.cancel_job(str(job["jid"]))


def test_a_lost_open_session_answer_leaves_one_session_and_no_second(
    gateway: FlinkSqlGatewayHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = gateway.transport_config.base_url
    with OutageProxy(upstream) as proxy:
        proxy.lose("POST", r"^/v\d/sessions$")
        conn = {"conn_type": "flink_sql_gateway", "host": "127.0.0.1", "port": proxy.port}
        monkeypatch.setenv("AIRFLOW_CONN_IT_LOSSY_GATEWAY", json.dumps(conn))
        lossy = FlinkSqlGatewayHook("it_lossy_gateway")
        with pytest.raises(FlinkConnectionError) as info:
            lossy.open_session({"parallelism.default": "1"}, session_name="it-lost-answer")
        assert "sql-gateway.session.idle-timeout" in str(info.value.hint) and info.value.status == 502
        # exactly one POST /sessions reached the gateway...
        assert [(method, path) for method, path, _ in proxy.lost] == [("POST", "/v4/sessions")]
        handle = json.loads(proxy.lost[0][2])["sessionHandle"]
        try:
            assert gateway.session_exists(handle)  # ...and it did open that session: a retry would have leaked it
        finally:
            gateway.close_session(handle)
        lossy.transport.close()
