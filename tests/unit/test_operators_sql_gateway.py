"""FlinkSqlGatewayOperator orchestration, with in-memory hooks."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from airflow_flink_provider.operators import common
from airflow_flink_provider.operators.common import STORE_KEY
from airflow_flink_provider.operators.sql_gateway import SESSION_KEY, FlinkSqlGatewayOperator, statement_kind
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkJobFailedError,
    FlinkMissingConnectorError,
    FlinkResourceError,
    FlinkSqlError,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id, sql_purposes
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.unit._flink_fakes import FakeGateway, FakeRest, FakeStateStore, FakeTI, deferral, make_context

pytestmark = pytest.mark.unit

SCRIPT = """-- a source and a sink
CREATE TABLE src (id INT) WITH ('connector' = 'datagen');
CREATE TABLE snk (id INT) WITH ('connector' = 'blackhole');

INSERT INTO snk SELECT id FROM src;
SELECT 1 AS one;
"""


INSERT = "INSERT INTO snk SELECT id FROM src"


def sql_id(statement: str = INSERT, generation: int = 0, occurrence: int = 1) -> str:
    """The job id of ``statement`` (its ``occurrence``-th copy in the script) in the fake task instance."""
    purpose = sql_purposes([statement] * occurrence)[-1]
    return deterministic_job_id("dag", "task", "run1", "-1", purpose, f"generation-{generation}")


def make_operator(rest: FakeRest, gateway: FakeGateway, **kwargs: Any) -> FlinkSqlGatewayOperator:
    kwargs.setdefault("sql", SCRIPT)
    op = FlinkSqlGatewayOperator(task_id="sql", poll_interval=0, **kwargs)
    op._rest_hook = lambda: rest  # type: ignore[method-assign]
    op._gateway_hook = lambda: gateway  # type: ignore[method-assign]
    return op


@pytest.fixture
def rest() -> FakeRest:
    return FakeRest()


@pytest.fixture
def gateway(rest: FakeRest) -> FakeGateway:
    gw = FakeGateway(rest)
    gw.rows["SELECT 1"] = (["one"], [[1]])
    return gw


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("INSERT INTO t SELECT * FROM s", "job"),
        ("insert overwrite t select 1", "job"),
        ("EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT 1; END", "job"),
        ("BEGIN STATEMENT SET; INSERT INTO a SELECT 1; END", "job"),
        ("EXECUTE INSERT INTO a SELECT 1", "job"),
        ("CREATE TABLE t WITH ('connector' = 'x') AS SELECT * FROM s", "job"),
        ("CREATE OR REPLACE TABLE t AS SELECT 1", "job"),
        ("CREATE TABLE t (a INT, b AS a + 1) WITH ('connector' = 'datagen')", "other"),
        ("SELECT * FROM t", "query"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "query"),
        ("(SELECT 1) UNION (SELECT 2)", "query"),
        ("SHOW TABLES", "query"),
        ("SET 'parallelism.default' = '2'", "other"),
        ("USE CATALOG c", "other"),
    ],
)
def test_statement_kind(text: str, kind: str) -> None:
    assert statement_kind(text) == kind


def test_runs_script_in_one_session_and_returns_jobs_and_rows(rest: FakeRest, gateway: FakeGateway) -> None:
    ti = FakeTI()
    op = make_operator(rest, gateway, session_properties={"parallelism.default": 1, "table.dml-sync": False})

    outcome = op.execute(make_context(ti))

    expected_id = sql_id()
    assert outcome == {
        "job_ids": [expected_id],
        "results": [{"statement": 4, "line": 6, "columns": ["one"], "rows": [[1]], "truncated": False}],
    }
    assert json.loads(json.dumps(outcome)) == outcome
    assert ti.xcoms["flink_job_id"] == expected_id
    assert gateway.calls[0] == (
        "open_session",
        {"parallelism.default": "1", "table.dml-sync": "false"},
        "airflow dag.task run1",
    )
    configure = [call[2] for call in gateway.calls if call[0] == "configure_session"]
    assert configure == [
        f"SET '$internal.pipeline.job-id' = '{expected_id}'",
        "RESET '$internal.pipeline.job-id'",
    ]
    executed = [call[2] for call in gateway.calls if call[0] == "execute_statement"]
    assert [text.split()[0] for text in executed] == ["CREATE", "CREATE", "INSERT", "SELECT"]
    assert gateway.names()[-1] == "close_session"
    assert gateway.open_sessions == {}
    assert gateway.names().count("close_operation") == 4


def test_retry_attaches_to_the_job_of_the_earlier_try(rest: FakeRest, gateway: FakeGateway) -> None:
    first = make_operator(rest, gateway).execute(make_context(FakeTI()))
    inserts_before = sum(1 for call in gateway.calls if call[0] == "execute_statement" and "INSERT" in call[2])

    second = make_operator(rest, gateway).execute(make_context(FakeTI()))

    inserts_after = sum(1 for call in gateway.calls if call[0] == "execute_statement" and "INSERT" in call[2])
    assert second["job_ids"] == first["job_ids"]
    assert inserts_before == inserts_after == 1
    assert len(rest.jobs) == 1


def test_retry_after_failed_job_submits_next_generation(rest: FakeRest, gateway: FakeGateway) -> None:
    first = make_operator(rest, gateway).execute(make_context(FakeTI()))
    rest.jobs[first["job_ids"][0]]["state"] = "FAILED"

    second = make_operator(rest, gateway).execute(make_context(FakeTI()))

    assert second["job_ids"][0] == sql_id(generation=1)
    assert second["job_ids"] != first["job_ids"]


def test_id_flink_remembers_moves_to_the_next_generation(
    rest: FakeRest, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "JOB_LOOKUP_TIMEOUT", 0.0)
    rest.used_ids.add(sql_id())

    outcome = make_operator(rest, gateway).execute(make_context())

    assert outcome["job_ids"] == [sql_id(generation=1)]
    configure = [call[2] for call in gateway.calls if call[0] == "configure_session"]
    assert configure == [
        f"SET '$internal.pipeline.job-id' = '{sql_id()}'",
        f"SET '$internal.pipeline.job-id' = '{sql_id(generation=1)}'",
        "RESET '$internal.pipeline.job-id'",
    ]


def test_job_id_is_stored_before_submit(rest: FakeRest, gateway: FakeGateway) -> None:
    store = FakeStateStore()
    seen: list[dict[str, Any]] = []
    original = gateway.execute_statement

    def execute(session: str, statement: str, **kwargs: Any) -> str:
        seen.append(dict(store.values))
        return original(session, statement, **kwargs)

    gateway.execute_statement = execute  # type: ignore[method-assign]
    outcome = make_operator(rest, gateway).execute(make_context(FakeTI(), store))

    assert seen[2][STORE_KEY] == {sql_purposes([INSERT])[0]: outcome["job_ids"][0]}


def test_sql_error_names_the_script_line(rest: FakeRest, gateway: FakeGateway) -> None:
    gateway.errors["INSERT"] = FlinkSqlError(
        'SqlParseException: Encountered "FORM" at line 1, column 22', line=1, column=22
    )

    with pytest.raises(FlinkSqlError) as info:
        make_operator(rest, gateway).execute(make_context())

    error = info.value
    assert (error.line, error.column) == (5, 22)
    assert "Statement 3/4 failed at script line 5, column 22" in str(error)
    assert "   5 | INSERT INTO snk SELECT id FROM src;" in str(error)
    assert gateway.open_sessions == {}
    assert gateway.calls[-1][0] == "close_session"


def test_multi_line_statement_error_maps_to_its_own_line(rest: FakeRest, gateway: FakeGateway) -> None:
    script = "SET 'a' = 'b';\n\nSELECT\n  x\nFROM nowhere;\n"
    gateway.errors["nowhere"] = FlinkSqlError("Object 'nowhere' not found", line=3, column=6)

    with pytest.raises(FlinkSqlError) as info:
        make_operator(rest, gateway, sql=script).execute(make_context())

    assert (info.value.line, info.value.column) == (5, 6)
    assert "script line 5, column 6" in str(info.value)


def test_other_flink_errors_name_the_statement(rest: FakeRest, gateway: FakeGateway) -> None:
    gateway.errors["blackhole"] = FlinkMissingConnectorError(
        "Could not find any factory for identifier 'blackhole'", hint="add the jar"
    )

    with pytest.raises(FlinkMissingConnectorError) as info:
        make_operator(rest, gateway).execute(make_context())

    assert "Statement 2/4 failed at script line 3" in str(info.value)
    assert "Hint: add the jar" in str(info.value)
    assert gateway.open_sessions == {}


def test_savepoint_options_become_session_properties(rest: FakeRest, gateway: FakeGateway) -> None:
    op = make_operator(
        rest, gateway, savepoint_path="file:///sp/savepoint-1", allow_non_restored_state=True, claim_mode="no_claim"
    )
    op.execute(make_context())

    properties = gateway.calls[0][1]
    assert properties["execution.state-recovery.path"] == "file:///sp/savepoint-1"
    assert properties["execution.state-recovery.ignore-unclaimed-state"] == "true"
    assert properties["execution.state-recovery.claim-mode"] == "NO_CLAIM"


def test_too_much_parallelism_is_refused_before_the_insert(rest: FakeRest, gateway: FakeGateway) -> None:
    script = "SET 'parallelism.default' = '64';\nINSERT INTO snk SELECT 1;"

    with pytest.raises(FlinkResourceError, match=r"needs 64 slots .* 8 in total"):
        make_operator(rest, gateway, sql=script).execute(make_context())

    assert not any(call[0] == "execute_statement" and "INSERT" in call[2] for call in gateway.calls)
    assert gateway.open_sessions == {}


def test_retry_attaches_even_when_the_cluster_is_full(rest: FakeRest, gateway: FakeGateway) -> None:
    script = "SET 'parallelism.default' = '2';\nINSERT INTO snk SELECT 1;"
    first = make_operator(rest, gateway, sql=script).execute(make_context())
    rest.slots_total = 1  # the job of the first try holds what there is

    assert make_operator(rest, gateway, sql=script).execute(make_context()) == first


def test_row_limit_truncates_results(rest: FakeRest, gateway: FakeGateway) -> None:
    gateway.rows["FROM big"] = (["n"], [[n] for n in range(10)])
    outcome = make_operator(rest, gateway, sql="SELECT n FROM big", result_row_limit=3).execute(make_context())

    assert outcome["results"] == [
        {"statement": 1, "line": 1, "columns": ["n"], "rows": [[0], [1], [2]], "truncated": True}
    ]


def test_on_kill_closes_the_session(rest: FakeRest, gateway: FakeGateway) -> None:
    op = make_operator(rest, gateway)
    gateway.rows["SELECT 1"] = (["one"], [[1]])

    def kill_during_select(call: tuple[Any, ...]) -> None:
        if call[0] == "find_job_state":
            op.on_kill()

    rest.on_call = kill_during_select
    handle = None
    original = gateway.open_session

    def open_session(*args: Any, **kwargs: Any) -> str:
        nonlocal handle
        handle = original(*args, **kwargs)
        return handle

    gateway.open_session = open_session  # type: ignore[method-assign]
    with pytest.raises(KeyError):  # the fake session is gone for the statements after the kill
        op.execute(make_context())
    assert ("close_session", handle) in gateway.calls
    assert gateway.names().count("close_session") == 1


def test_on_kill_with_cancel_cancels_submitted_jobs(rest: FakeRest, gateway: FakeGateway) -> None:
    op = make_operator(rest, gateway, sql="INSERT INTO snk SELECT 1", cancel_on_kill=True)
    outcome = op.execute(make_context())
    op._session = "session-x"
    gateway.open_sessions["session-x"] = {}

    op.on_kill()

    assert rest.jobs[outcome["job_ids"][0]]["state"] == "CANCELED"
    assert ("close_session", "session-x") in gateway.calls


def plan_states(rest: FakeRest, gateway: FakeGateway, states: list[str], root_cause: str | None = None) -> None:
    """The jobs the gateway's statements submit go through ``states``, one a poll (then fail with ``root_cause``).

    :param rest: the fake cluster.
    :param gateway: the fake gateway, whose ``execute_statement`` is wrapped.
    :param states: the states the job's polls see.
    :param root_cause: the job's root cause.
    """
    original = gateway.execute_statement

    def execute(session: str, statement: str, **kwargs: Any) -> str:
        op_handle = original(session, statement, **kwargs)
        job_id = gateway.open_sessions[session]["$internal.pipeline.job-id"]
        rest.state_plan[job_id] = list(states)
        if root_cause is not None:
            rest.root_causes[job_id] = root_cause
        return op_handle

    gateway.execute_statement = execute  # type: ignore[method-assign]


def test_wait_for_running_polls_until_all_tasks_run(rest: FakeRest, gateway: FakeGateway) -> None:
    op = make_operator(rest, gateway, sql="INSERT INTO snk SELECT 1", wait_for="running")
    plan_states(rest, gateway, ["CREATED", "INITIALIZING", "RUNNING"])
    outcome = op.execute(make_context())

    assert rest.names().count("GET /jobs/overview") == 3
    assert outcome["job_ids"]


def test_wait_for_finished_fails_with_root_cause(rest: FakeRest, gateway: FakeGateway) -> None:
    op = make_operator(rest, gateway, sql="INSERT INTO snk SELECT 1", wait_for="FINISHED")
    cause = "NoResourceAvailableException: Could not acquire the minimum required resources."
    plan_states(rest, gateway, ["RUNNING", "FAILED"], root_cause=cause)
    with pytest.raises(FlinkJobFailedError) as info:
        op.execute(make_context())

    assert "is FAILED" in str(info.value)
    assert "Could not acquire the minimum required resources" in str(info.value)
    assert "Not enough task slots" in str(info.value.hint)


def test_deferrable_wait_defers_per_job_and_resumes(rest: FakeRest, gateway: FakeGateway) -> None:
    script = "INSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;"
    op = make_operator(rest, gateway, sql=script, wait_for="RUNNING", deferrable=True, wait_timeout=120)

    first, kwargs = deferral(op, FlinkJobStateTrigger)
    assert kwargs["target_states"] == ["FINISHED", "RUNNING"]
    outcome = first.kwargs["outcome"]
    job_a, job_b = outcome["job_ids"]
    assert kwargs["job_id"] == job_a
    assert first.kwargs["pending"] == [job_b]
    assert gateway.open_sessions == {}

    with pytest.raises(TaskDeferred) as second:
        op.execute_complete(make_context(), {"status": "success", "job_id": job_a, "state": "RUNNING"}, **first.kwargs)
    assert second.value.trigger.job_id == job_b
    assert second.value.kwargs["deadline"] == first.kwargs["deadline"]

    done = op.execute_complete(
        make_context(), {"status": "success", "job_id": job_b, "state": "RUNNING"}, **second.value.kwargs
    )
    assert done == outcome

    with pytest.raises(FlinkJobFailedError, match="boom"):
        op.execute_complete(
            make_context(),
            {"status": "failed", "job_id": job_b, "state": "FAILED", "message": "job failed", "root_cause": "boom"},
            **second.value.kwargs,
        )


def test_deferred_wait_resumes_from_the_event_alone_as_dags_test_does(rest: FakeRest, gateway: FakeGateway) -> None:
    # `airflow dags test` resumes a deferred task with {"event": ...} only: the defer kwargs are dropped.
    script = "INSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;"
    op = make_operator(rest, gateway, sql=script, wait_for="FINISHED", deferrable=True, wait_timeout=120)
    ti = FakeTI()
    with pytest.raises(TaskDeferred) as first:
        op.execute(make_context(ti))
    job_a, job_b = first.value.kwargs["outcome"]["job_ids"]

    with pytest.raises(TaskDeferred) as second:
        op.execute_complete(make_context(ti), {"status": "success", "job_id": job_a, "state": "FINISHED"})
    assert second.value.trigger.job_id == job_b
    assert second.value.kwargs["deadline"] == first.value.kwargs["deadline"]

    done = op.execute_complete(make_context(ti), {"status": "success", "job_id": job_b, "state": "FINISHED"})
    assert done == first.value.kwargs["outcome"]


def test_invalid_arguments_are_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="wait_for"):
        FlinkSqlGatewayOperator(task_id="x", sql="SELECT 1", wait_for="DONE")
    with pytest.raises(ValueError, match="claim_mode"):
        FlinkSqlGatewayOperator(task_id="x", sql="SELECT 1", claim_mode="LEGACY")


def test_empty_script_is_an_error(rest: FakeRest, gateway: FakeGateway) -> None:
    with pytest.raises(ValueError, match="no statements"):
        make_operator(rest, gateway, sql="-- nothing\n;\n").execute(make_context())
    assert gateway.calls == []


def test_sql_file_is_rendered_with_params_macros_and_variables(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, rest: FakeRest, gateway: FakeGateway
) -> None:
    from airflow.sdk.execution_time.context import MacrosAccessor, VariableAccessor

    (tmp_path / "job.sql").write_text(
        "INSERT INTO {{ params.sink }}\nSELECT '{{ ds }}', '{{ var.value.region }}', '{{ macros.ds_add(ds, 1) }}';\n"
    )
    monkeypatch.setenv("AIRFLOW_VAR_REGION", "eu-west")
    with DAG("render", schedule=None, start_date=dt.datetime(2025, 1, 1), template_searchpath=[str(tmp_path)]):
        op = make_operator(rest, gateway, sql="job.sql", params={"sink": "orders_out"})
    op.resolve_template_files()
    context = {
        "ds": "2025-01-02",
        "params": op.params,
        "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(deserialize_json=True)},
        "macros": MacrosAccessor(),
        "ti": FakeTI(),
    }
    op.render_template_fields(context)  # type: ignore[arg-type]

    assert op.sql == "INSERT INTO orders_out\nSELECT '2025-01-02', 'eu-west', '2025-01-03';"
    op.execute(make_context())
    assert any(
        call[0] == "execute_statement" and call[2].startswith("INSERT INTO orders_out") for call in gateway.calls
    )


def test_layout_and_comments_do_not_change_a_job_id_but_an_edit_does(rest: FakeRest, gateway: FakeGateway) -> None:
    relaid = "INSERT  INTO snk\n  -- the same job\n  SELECT id /* all */ FROM src"
    edited = "INSERT INTO snk SELECT id + 1 FROM src"

    assert make_operator(rest, gateway, sql=INSERT).execute(make_context())["job_ids"] == [sql_id()]
    assert make_operator(rest, gateway, sql=relaid).execute(make_context())["job_ids"] == [sql_id()]
    assert make_operator(rest, gateway, sql=edited).execute(make_context())["job_ids"] == [sql_id(edited)]
    assert "'a  b'" not in sql_purposes(["SELECT 'a  b'"])[0]  # a fingerprint, not the text
    assert sql_purposes(["SELECT 'a  b'"]) != sql_purposes(["SELECT 'a b'"])  # literals are kept as they are


def test_an_inserted_statement_leaves_the_other_ids_alone(rest: FakeRest, gateway: FakeGateway) -> None:
    store = FakeStateStore()
    first = make_operator(rest, gateway).execute(make_context(store=store))
    extra = "INSERT INTO audit SELECT id FROM src"
    script = SCRIPT.replace("INSERT INTO snk", f"{extra};\nINSERT INTO snk")

    second = make_operator(rest, gateway, sql=script).execute(make_context(store=store))

    assert second["job_ids"] == [sql_id(extra), first["job_ids"][0]]
    assert sum(1 for call in gateway.calls if call[0] == "execute_statement" and "INTO snk" in call[2]) == 1


def test_identical_statements_are_told_apart_by_occurrence(rest: FakeRest, gateway: FakeGateway) -> None:
    outcome = make_operator(rest, gateway, sql=f"{INSERT};\n{INSERT};").execute(make_context())
    assert outcome["job_ids"] == [sql_id(), sql_id(occurrence=2)]


def test_an_edited_insert_refuses_while_the_earlier_tries_job_runs(rest: FakeRest, gateway: FakeGateway) -> None:
    store = FakeStateStore()
    first = make_operator(rest, gateway).execute(make_context(store=store))["job_ids"][0]
    edited = SCRIPT.replace("SELECT id FROM src", "SELECT id * 2 FROM src")

    with pytest.raises(FlinkError, match=f"Flink job {first} of an earlier try of this task is still RUNNING") as info:
        make_operator(rest, gateway, sql=edited).execute(make_context(store=store))

    assert "then retry the task" in str(info.value)
    assert len(rest.jobs) == 1 and gateway.names().count("open_session") == 1
    rest.jobs[first]["state"] = "CANCELED"
    assert make_operator(rest, gateway, sql=edited).execute(make_context(store=store))["job_ids"] != [first]


@pytest.mark.parametrize("if_ended", ["resubmit", "reuse", "fail"])
def test_if_ended_decides_about_a_finished_job(rest: FakeRest, gateway: FakeGateway, if_ended: str) -> None:
    first = make_operator(rest, gateway).execute(make_context())["job_ids"][0]
    rest.jobs[first]["state"] = "FINISHED"
    op = make_operator(rest, gateway, if_ended=if_ended)

    if if_ended == "fail":
        with pytest.raises(FlinkError, match=r"already ended \(FINISHED\); if_ended='fail'"):
            op.execute(make_context())
    else:
        expected = sql_id(generation=1) if if_ended == "resubmit" else first
        assert op.execute(make_context())["job_ids"] == [expected]
    assert len(rest.jobs) == (2 if if_ended == "resubmit" else 1)


@pytest.mark.parametrize("lost", ["on execute", "on fetch"])
def test_a_lost_answer_attaches_to_the_job_it_started(rest: FakeRest, gateway: FakeGateway, lost: str) -> None:
    executing, fetching = gateway.execute_statement, gateway.fetch_results

    def execute(session: str, statement: str, **kwargs: Any) -> str:
        handle = executing(session, statement, **kwargs)
        if lost == "on execute" and statement.startswith("INSERT"):
            raise FlinkConnectionError("RemoteDisconnected", request_sent=True)
        return handle

    def fetch(session: str, operation: str, **kwargs: Any) -> Any:
        result = fetching(session, operation, **kwargs)
        if lost == "on fetch" and result.job_id:
            raise FlinkError("Bad Gateway", status=502)
        return result

    gateway.execute_statement, gateway.fetch_results = execute, fetch  # type: ignore[method-assign]

    outcome = make_operator(rest, gateway).execute(make_context())

    assert outcome["job_ids"] == [sql_id()] and list(rest.jobs) == [sql_id()]
    configure = [call[2] for call in gateway.calls if call[0] == "configure_session"]
    assert configure[-1] == "RESET '$internal.pipeline.job-id'"


def test_a_failing_close_operation_does_not_hide_the_sql_error(rest: FakeRest, gateway: FakeGateway) -> None:
    def fetch(session: str, operation: str, **kwargs: Any) -> Any:
        raise FlinkSqlError("SqlValidatorException: Column 'x' not found", line=1, column=8)

    def close_operation(session: str, operation: str) -> None:
        raise FlinkError("Internal Server Error", status=500)

    gateway.fetch_results = fetch  # type: ignore[method-assign]
    gateway.close_operation = close_operation  # type: ignore[method-assign]

    with pytest.raises(FlinkSqlError, match="Column 'x' not found"):
        make_operator(rest, gateway, sql="SELECT x FROM src").execute(make_context())
    assert gateway.open_sessions == {}


def test_a_failing_reset_keeps_the_job_and_the_task(rest: FakeRest, gateway: FakeGateway) -> None:
    configure = gateway.configure_session
    resets: list[str] = []

    def flaky_reset(session: str, statement: str) -> None:
        if statement.startswith("RESET") and not resets:
            resets.append(statement)
            raise FlinkError("Service Unavailable", status=503)
        configure(session, statement)

    gateway.configure_session = flaky_reset  # type: ignore[method-assign]
    op = make_operator(rest, gateway, cancel_on_kill=True)

    outcome = op.execute(make_context())

    assert outcome["job_ids"] == [sql_id()]
    statements = [call[2] for call in gateway.calls if call[0] in ("configure_session", "execute_statement")]
    assert statements[-2:] == ["RESET '$internal.pipeline.job-id'", "SELECT 1 AS one"]  # retried before the query
    op.on_kill()
    assert rest.jobs[sql_id()]["state"] == "CANCELED"


def test_the_session_of_a_killed_try_is_closed_by_the_next_try(rest: FakeRest, gateway: FakeGateway) -> None:
    store = FakeStateStore()
    killed = gateway.open_session({}, "killed try")
    store.set(SESSION_KEY, killed)
    recorded: list[Any] = []
    execute = gateway.execute_statement

    def execute_and_look(session: str, statement: str, **kwargs: Any) -> str:
        recorded.append(store.get(SESSION_KEY))
        return execute(session, statement, **kwargs)

    gateway.execute_statement = execute_and_look  # type: ignore[method-assign]

    make_operator(rest, gateway).execute(make_context(store=store))

    assert gateway.calls.index(("close_session", killed)) < gateway.names().index("execute_statement")
    assert recorded and recorded[0] not in (None, killed)  # this try's own session, recorded right after open
    assert gateway.open_sessions == {} and SESSION_KEY not in store.values


def test_secrets_stay_out_of_the_log_and_the_error(
    rest: FakeRest, gateway: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    script = (
        "CREATE TABLE s (id INT) WITH ('connector' = 'kafka',\n"
        "  'properties.sasl.jaas.config' = 'PlainLoginModule required password=\"hunter2\";',\n"
        "  'properties.ssl.key.password' =\n  'sup3rs3cret');\n"
    )
    gateway.errors["CREATE TABLE s"] = FlinkSqlError("SqlParseException: Encountered at line 4, column 3", line=4)

    with pytest.raises(FlinkSqlError) as info:
        make_operator(rest, gateway, sql=script).execute(make_context())

    logged = capsys.readouterr().out
    assert "Statement 1/1" in logged and "line 4" in str(info.value)
    for secret in ("hunter2", "sup3rs3cret"):
        assert secret not in logged and secret not in str(info.value) and secret not in repr(info.value)


def test_savepoint_path_is_checked_before_the_session_opens(rest: FakeRest, gateway: FakeGateway) -> None:
    with pytest.raises(ValueError, match="savepoint_path has the scheme 'https'"):
        make_operator(rest, gateway, savepoint_path="https://evil.example/sp").execute(make_context())
    assert gateway.calls == [] and rest.calls == []


def test_if_ended_is_validated_at_construction() -> None:
    with pytest.raises(ValueError, match="if_ended must be one of"):
        FlinkSqlGatewayOperator(task_id="x", sql="SELECT 1", if_ended="again")


def test_rendering_registers_the_secrets_of_the_sql_with_the_masker(
    rest: FakeRest, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    masked: list[str] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    op = make_operator(
        rest, gateway, sql="CREATE TABLE t (a INT) WITH ('properties.ssl.key.password' = '{{ params.pw }}');"
    )

    op.render_template_fields({"params": {"pw": "hunter2"}})  # type: ignore[arg-type]

    assert "hunter2" in op.sql and "hunter2" in masked


def test_query_rows_reach_xcom_with_their_secrets_masked(rest: FakeRest, gateway: FakeGateway) -> None:
    script = "CREATE TABLE t (a INT) WITH ('password' = 'hunter2');\nSHOW CREATE TABLE t;"
    gateway.rows["SHOW CREATE"] = (["result"], [["CREATE TABLE t (a INT) WITH (\n  'password' = 'hunter2'\n)"], [7]])

    outcome = make_operator(rest, gateway, sql=script).execute(make_context())

    (rows,) = [result["rows"] for result in outcome["results"]]
    assert "hunter2" not in json.dumps(outcome) and rows[1] == [7] and "'password' = '****'" in rows[0][0]
