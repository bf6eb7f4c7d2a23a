"""SQL Gateway exchanges driven without a network: negotiation, result paging, changelog, waits.

Pages are shaped like the ones the local Flink 2.1.3 gateway returned; the same flows run against the real
gateway in tests/integration/test_hooks_sql_gateway.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_flink_provider.protocol import sql_gateway
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkSqlError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.http import Request, Response
from airflow_flink_provider.protocol.statements import executable_text, split_statements
from tests.unit.test_protocol_rest import Fake, ok, routes

pytestmark = pytest.mark.unit

S = "d3f7afb3-6dd4-4447-91f6-76d19d4b217c"
OP = "54746634-12e2-409e-82e1-71af01e02c1c"
JOB = "ef7c50158b70ff689c9eaea0d913372c"
BASE = f"/v4/sessions/{S}/operations/{OP}"
COLUMNS = [
    {"name": "id", "logicalType": {"type": "INTEGER", "nullable": False}, "comment": None},
    {"name": "name", "logicalType": {"type": "CHAR", "nullable": False, "length": 1}, "comment": None},
]
SQL_ERROR = Response(
    500,
    {
        "errors": [
            "Internal server error.",
            "<Exception on server side:\norg.apache.flink.table.gateway.api.utils.SqlGatewayException: "
            "Failed to fetchResults.\nCaused by: org.apache.flink.table.api.ValidationException: SQL validation "
            "failed. From line 1, column 8 to line 1, column 11: Column 'nope' not found in any table\n"
            "Caused by: org.apache.calcite.sql.validate.SqlValidatorException: Column 'nope' not found in any "
            "table\n\t... 36 more\n\nEnd of exception on server side>",
        ]
    },
    "",
)


def page(token: int, result_type: str, data: list[dict[str, Any]] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"resultType": result_type, **extra}
    if result_type != "NOT_READY":
        body.setdefault("isQueryResult", True)
        body.setdefault("jobID", JOB)
        body.setdefault("resultKind", "SUCCESS_WITH_CONTENT")
        body["results"] = {"columns": COLUMNS, "rowFormat": "JSON", "data": data or []}
    if result_type != "EOS":
        body["nextResultUri"] = f"{BASE}/result/{token}?rowFormat=JSON"
    return ok(body)


def pages(*answers: Response) -> Fake:
    """A fake gateway answering result requests in order."""
    queue = list(answers)
    return Fake(lambda request: queue.pop(0))


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(["V1", "V2", "V3", "V4"], "v4"), (["V1", "V2"], "v2"), (["V3", "V2", "V1"], "v3"), (["V4", "V5"], "v4")],
)
def test_negotiation_picks_the_highest_shared_version(offered: list[str], chosen: str) -> None:
    fake = Fake(routes({("GET", "/api_versions"): ok({"versions": offered})}))
    assert fake.run(sql_gateway.negotiate_version()) == chosen


def test_negotiation_fails_without_a_shared_version() -> None:
    fake = Fake(routes({("GET", "/api_versions"): ok({"versions": ["V1"]})}))
    with pytest.raises(FlinkError, match=r"offers API versions \['v1'\]"):
        fake.run(sql_gateway.negotiate_version())


def test_fetch_follows_pages_and_sleeps_only_on_empty_ones() -> None:
    fake = pages(
        page(0, "NOT_READY"),
        page(1, "PAYLOAD"),
        page(2, "PAYLOAD"),
        page(3, "PAYLOAD", [{"kind": "INSERT", "fields": [1, "a"]}]),
        page(4, "PAYLOAD", [{"kind": "INSERT", "fields": [2, "b"]}]),
        page(5, "EOS"),
    )
    result = fake.run(sql_gateway.fetch_results(S, OP, version="v4"))
    assert result.columns == ["id", "name"]
    assert result.rows == [[1, "a"], [2, "b"]]
    assert result.as_dicts() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert result.job_id == JOB and result.result_kind == "SUCCESS_WITH_CONTENT" and result.is_query_result
    assert not result.truncated
    assert fake.requests[0].path == f"{BASE}/result/0" and fake.requests[0].params == {"rowFormat": "JSON"}
    assert [r.path for r in fake.requests[1:]] == [f"{BASE}/result/{n}?rowFormat=JSON" for n in range(0, 5)]
    assert fake.sleeps == [0.05, 0.1, 0.2]  # doubling while empty, none after pages with rows


def test_changelog_rows_are_applied() -> None:
    fake = pages(
        page(1, "PAYLOAD", [{"kind": "INSERT", "fields": ["a", 1]}, {"kind": "INSERT", "fields": ["b", 1]}]),
        page(
            2, "PAYLOAD", [{"kind": "UPDATE_BEFORE", "fields": ["a", 1]}, {"kind": "UPDATE_AFTER", "fields": ["a", 2]}]
        ),
        page(3, "PAYLOAD", [{"kind": "DELETE", "fields": ["b", 1]}, {"kind": "DELETE", "fields": ["zz", 9]}]),
        page(4, "EOS"),
    )
    result = fake.run(sql_gateway.fetch_results(S, OP, version="v4"))
    assert result.rows == [["a", 2]]
    assert result.changelog == {"INSERT": 2, "UPDATE_BEFORE": 1, "UPDATE_AFTER": 1, "DELETE": 2}


def test_row_limit_truncates() -> None:
    rows = [{"kind": "INSERT", "fields": [n, "x"]} for n in range(3)]
    fake = pages(page(1, "PAYLOAD", rows), page(2, "PAYLOAD", rows), page(3, "EOS"))
    result = fake.run(sql_gateway.fetch_results(S, OP, version="v4", row_limit=4))
    assert result.truncated and len(result.rows) == 4
    assert len(fake.requests) == 2


def test_non_query_result_ends_at_eos() -> None:
    fake = pages(
        page(
            1, "PAYLOAD", [{"kind": "INSERT", "fields": ["OK"]}], isQueryResult=False, jobID=None, resultKind="SUCCESS"
        ),
        page(2, "EOS", isQueryResult=False, jobID=None, resultKind="SUCCESS"),
    )
    result = fake.run(sql_gateway.fetch_results(S, OP, version="v4"))
    assert result.rows == [["OK"]] and result.job_id is None and not result.is_query_result


def test_fetch_times_out_on_an_endless_stream() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1
        return now[0]

    fake = Fake(lambda request: page(1, "PAYLOAD"))
    with pytest.raises(FlinkTimeoutError, match="no end of result after 5s"):
        fake.run(sql_gateway.fetch_results(S, OP, version="v4", timeout=5, clock=clock))


def test_fetch_raises_the_statements_error() -> None:
    fake = pages(SQL_ERROR)
    with pytest.raises(FlinkSqlError) as info:
        fake.run(sql_gateway.fetch_results(S, OP, version="v4"))
    assert (info.value.line, info.value.column) == (1, 8)


def status(value: str) -> Response:
    return ok({"status": value})


def test_wait_for_operation_polls_until_final() -> None:
    statuses = [status("PENDING"), status("RUNNING"), status("RUNNING"), status("FINISHED")]
    fake = Fake(routes({("GET", f"{BASE}/status"): statuses}))
    assert fake.run(sql_gateway.wait_for_operation(S, OP, version="v4", poll_interval=0.1)) == "FINISHED"
    assert fake.sleeps == [0.05, 0.1, 0.1]


def test_wait_for_operation_raises_the_error_fetched_on_error() -> None:
    fake = Fake(routes({("GET", f"{BASE}/status"): status("ERROR"), ("GET", f"{BASE}/result/0"): SQL_ERROR}))
    with pytest.raises(FlinkSqlError, match="Column 'nope' not found"):
        fake.run(sql_gateway.wait_for_operation(S, OP, version="v4"))


def test_wait_for_operation_gateway_timeout_and_client_timeout() -> None:
    fake = Fake(routes({("GET", f"{BASE}/status"): status("TIMEOUT")}))
    with pytest.raises(FlinkTimeoutError, match="executionTimeout"):
        fake.run(sql_gateway.wait_for_operation(S, OP, version="v4"))
    now = [0.0]

    def clock() -> float:
        now[0] += 1
        return now[0]

    fake = Fake(routes({("GET", f"{BASE}/status"): status("RUNNING")}))
    with pytest.raises(FlinkTimeoutError, match="still RUNNING after 2s"):
        fake.run(sql_gateway.wait_for_operation(S, OP, version="v4", timeout=2, clock=clock))


def test_execute_statement_payload_and_statement_set_rewrite() -> None:
    fake = Fake(
        routes(
            {
                ("POST", f"/v4/sessions/{S}/statements"): ok({"operationHandle": OP}),
                ("GET", f"{BASE}/status"): [status("RUNNING"), status("FINISHED")],
            }
        )
    )
    handle = fake.run(
        sql_gateway.execute_statement(
            S,
            "BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;\nEND",
            version="v4",
            execution_config={"parallelism.default": "2"},
            timeout=1.5,
        )
    )
    assert handle == OP
    # no executionTimeout: the 2.1 gateway refuses any value above 0; the client waits for the status instead
    assert fake.requests[0].json == {
        "statement": "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nEND",
        "executionConfig": {"parallelism.default": "2"},
    }
    assert not fake.requests[0].safe_to_repeat
    assert [r.path for r in fake.requests[1:]] == [f"{BASE}/status"] * 2


def ticking(step: float = 1.0) -> Any:
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_execute_statement_timeout_cancels_and_closes_the_operation() -> None:
    fake = Fake(
        routes(
            {
                ("POST", f"/v4/sessions/{S}/statements"): ok({"operationHandle": OP}),
                ("GET", f"{BASE}/status"): status("RUNNING"),
                ("POST", f"{BASE}/cancel"): ok({"status": "CANCELED"}),
                ("DELETE", f"{BASE}/close"): ok({"status": "CLOSED"}),
            }
        )
    )
    with pytest.raises(FlinkTimeoutError) as info:
        fake.run(
            sql_gateway.execute_statement(S, "INSERT INTO k SELECT n FROM t", version="v4", timeout=3, clock=ticking())
        )
    assert info.value.message == (
        f"SQL Gateway operation {OP} did not finish executing within the statement timeout of 3s; "
        "it was cancelled and closed"
    )
    assert not info.value.retryable
    assert [(r.method, r.path) for r in fake.requests[-2:]] == [("POST", f"{BASE}/cancel"), ("DELETE", f"{BASE}/close")]
    assert "executionTimeout" not in fake.requests[0].json


def test_execute_statement_timeout_keeps_the_statement_error_and_closes() -> None:
    fake = Fake(
        routes(
            {
                ("POST", f"/v4/sessions/{S}/statements"): ok({"operationHandle": OP}),
                ("GET", f"{BASE}/status"): status("ERROR"),
                ("GET", f"{BASE}/result/0"): SQL_ERROR,
                ("DELETE", f"{BASE}/close"): Response(500, {"errors": ["close failed"]}, ""),
            }
        )
    )
    with pytest.raises(FlinkSqlError, match="Column 'nope' not found"):  # not hidden by the failed close
        fake.run(sql_gateway.execute_statement(S, "SELECT nope", version="v4", timeout=30))
    assert fake.requests[-1].path == f"{BASE}/close"


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_statement_timeouts_must_be_positive_and_finite(timeout: float) -> None:
    fake = Fake(routes({}))
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        fake.run(sql_gateway.execute_statement(S, "SELECT 1", version="v4", timeout=timeout))
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        fake.run(sql_gateway.run_statement(S, "SELECT 1", version="v4", timeout=timeout))
    assert fake.requests == []


def test_run_statement_timeout_covers_submission_to_end_of_result() -> None:
    fake = Fake(
        routes(
            {
                ("POST", f"/v4/sessions/{S}/statements"): ok({"operationHandle": OP}),
                ("GET", f"{BASE}/result/0"): page(1, "NOT_READY"),
                ("GET", f"{BASE}/result/1?rowFormat=JSON"): page(1, "NOT_READY"),
                ("POST", f"{BASE}/cancel"): Response(
                    500, {"errors": [f"Failed to convert the Operation Status from FINISHED to CANCELED for {OP}."]}, ""
                ),
                ("GET", f"{BASE}/status"): status("FINISHED"),
                ("DELETE", f"{BASE}/close"): ok({"status": "CLOSED"}),
            }
        )
    )
    with pytest.raises(FlinkTimeoutError) as info:
        fake.run(sql_gateway.run_statement(S, "SELECT n FROM ticks", version="v4", timeout=5, clock=ticking()))
    assert info.value.message == (
        f"SQL Gateway operation {OP} had no end of result within the statement timeout of 5s; "
        "it was cancelled and closed"
    )
    assert "row limit" in str(info.value.hint)
    assert [(r.method, r.path) for r in fake.requests if r.method != "GET"] == [
        ("POST", f"/v4/sessions/{S}/statements"),
        ("POST", f"{BASE}/cancel"),
        ("DELETE", f"{BASE}/close"),
    ]


def test_open_session_is_not_repeated_after_a_lost_answer() -> None:
    fake = Fake(routes({("POST", "/v4/sessions"): Response(503, {"errors": ["Service Unavailable"]}, "")}))
    with pytest.raises(FlinkConnectionError) as info:
        fake.run(sql_gateway.open_session({}, "s", version="v4"))
    assert len(fake.requests) == 1 and not fake.requests[0].safe_to_repeat
    assert info.value.status == 503 and info.value.request_sent
    assert "may have reached the gateway (Service Unavailable)" in info.value.message
    assert "sql-gateway.session.idle-timeout" in str(info.value.hint)
    assert "opens exactly one new session" in str(info.value.hint)


@pytest.mark.parametrize(
    ("error", "maybe_opened"),
    [
        (FlinkConnectionError("reset", request_sent=True), True),
        (FlinkTimeoutError("read timeout", transient=True), True),
        (FlinkError("Bad Gateway", status=502), True),
        (FlinkConnectionError("refused", request_sent=False), False),
        (FlinkError("Too Many Requests", status=429), False),
        (FlinkError("Bad Request", status=400), False),
        (FlinkSqlError("bad property", status=500), False),
    ],
)
def test_which_failures_may_have_opened_a_session(error: FlinkError, maybe_opened: bool) -> None:
    def lost() -> Any:
        exchange = sql_gateway.open_session(None, None, version="v4")
        request = next(exchange)
        assert request.path == "/v4/sessions"
        return exchange.throw(error)

    with pytest.raises(FlinkError) as info:
        lost()
    if maybe_opened:
        assert type(info.value) is FlinkConnectionError and info.value.__cause__ is error
        assert info.value.hint is not None and "idle-timeout" in info.value.hint
    else:
        assert info.value is error


@pytest.mark.parametrize(
    ("statement", "repeatable"),
    [
        ("SET 'table.exec.state.ttl' = '1 h'", True),
        ("RESET '$internal.pipeline.job-id'", True),
        ("-- the catalog\nUSE CATALOG lake", True),
        ("CREATE TEMPORARY TABLE IF NOT EXISTS t (a INT) WITH ('connector' = 'datagen')", True),
        ("drop temporary view if exists v", True),
        ("CREATE TEMPORARY TABLE t (a INT) WITH ('connector' = 'datagen')", False),
        ("CREATE TABLE t (a INT) COMMENT 'IF NOT EXISTS'", False),
        ("ADD JAR '/x.jar'", False),
        ("LOAD MODULE hive", False),
    ],
)
def test_configure_session_is_repeated_only_when_harmless(statement: str, repeatable: bool) -> None:
    fake = Fake(routes({("POST", f"/v4/sessions/{S}/configure-session"): ok({})}))
    fake.run(sql_gateway.configure_session(S, statement, version="v4"))
    assert fake.requests[0].json == {"statement": statement}
    assert fake.requests[0].safe_to_repeat is repeatable


def test_heartbeat_cancel_and_close_are_safe_to_repeat() -> None:
    fake = Fake(lambda request: ok({"status": "CANCELED"}))
    fake.run(sql_gateway.heartbeat(S, version="v4"))
    fake.run(sql_gateway.cancel_operation(S, OP, version="v4"))
    fake.run(sql_gateway.close_operation(S, OP, version="v4"))
    fake.run(sql_gateway.close_session(S, version="v4"))
    assert [r.safe_to_repeat for r in fake.requests] == [True, True, True, True]


def test_close_of_an_operation_that_is_gone_counts_as_closed() -> None:
    gone = Response(500, {"errors": [f"SqlGatewayException: Can not find the submitted operation with the {OP}."]}, "")
    fake = Fake(routes({("DELETE", f"{BASE}/close"): gone}))
    assert fake.run(sql_gateway.close_operation(S, OP, version="v4")) == "CLOSED"


def test_executable_text_keeps_line_numbers_and_leaves_other_statements() -> None:
    block = split_statements("-- c\nbegin  statement\nset ;\nINSERT INTO a SELECT 1;\nEND;")[0]
    rewritten = executable_text(block.text)
    # the newline between "statement" and "set" is kept, so INSERT stays on the statement's third line
    assert rewritten == "EXECUTE STATEMENT SET BEGIN\n\nINSERT INTO a SELECT 1;\nEND"
    assert rewritten.splitlines()[2] == block.text.splitlines()[2] == "INSERT INTO a SELECT 1;"
    assert executable_text("SELECT 1") == "SELECT 1"
    assert executable_text("EXECUTE STATEMENT SET BEGIN END") == "EXECUTE STATEMENT SET BEGIN END"


def test_session_lifecycle_requests() -> None:
    missing = Response(500, {"errors": [f"SqlGatewayException: Session '{S}' does not exist."]}, "")
    fake = Fake(
        routes(
            {
                ("POST", "/v4/sessions"): ok({"sessionHandle": S}),
                ("GET", f"/v4/sessions/{S}"): [ok({"properties": {"a": "b"}}), missing],
                ("DELETE", f"/v4/sessions/{S}"): [ok({"status": "CLOSED"}), missing],
            }
        )
    )
    assert fake.run(sql_gateway.open_session({"x": 1}, "name", version="v4")) == S  # type: ignore[dict-item]
    assert fake.requests[0].json == {"properties": {"x": "1"}, "sessionName": "name"}
    assert fake.run(sql_gateway.session_exists(S, version="v4")) is True
    assert fake.run(sql_gateway.session_exists(S, version="v4")) is False
    assert fake.run(sql_gateway.close_session(S, version="v4")) is None
    assert fake.run(sql_gateway.close_session(S, version="v4")) is None  # already gone: fine


def test_cancel_of_an_ended_operation_returns_its_status() -> None:
    ended = Response(
        500,
        {
            "errors": [
                f"SqlGatewayException: Failed to convert the Operation Status from FINISHED to CANCELED for {OP}."
            ]
        },
        "",
    )
    fake = Fake(routes({("POST", f"{BASE}/cancel"): ended, ("GET", f"{BASE}/status"): status("FINISHED")}))
    assert fake.run(sql_gateway.cancel_operation(S, OP, version="v4")) == "FINISHED"
    assert fake.requests[0].safe_to_repeat  # a second cancel finds the operation ended: tolerated


def test_cancel_of_an_unknown_operation_raises() -> None:
    unknown = Response(
        500, {"errors": [f"SqlGatewayException: Can not find the submitted operation with the {OP}."]}, ""
    )
    fake = Fake(routes({("POST", f"{BASE}/cancel"): unknown}))
    with pytest.raises(FlinkNotFoundError):
        fake.run(sql_gateway.cancel_operation(S, OP, version="v4"))


def test_run_statement_closes_the_operation_after_success_and_after_failure() -> None:
    def gateway(answer: Response) -> Fake:
        def handler(request: Request) -> Response:
            if request.method == "POST":
                return ok({"operationHandle": OP})
            if request.method == "DELETE":
                return ok({"status": "CLOSED"})
            return answer

        return Fake(handler)

    fake = gateway(page(1, "EOS"))
    fake.run(sql_gateway.run_statement(S, "SELECT 1", version="v4"))
    assert [r.method for r in fake.requests] == ["POST", "GET", "DELETE"]
    assert fake.requests[-1].path == f"{BASE}/close"

    fake = gateway(SQL_ERROR)
    with pytest.raises(FlinkSqlError):
        fake.run(sql_gateway.run_statement(S, "SELECT nope", version="v4"))
    assert [r.method for r in fake.requests] == ["POST", "GET", "DELETE"]
