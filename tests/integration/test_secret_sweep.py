"""Secret sweep: secrets in a connection's password, token and extras, in SQL ``WITH`` options and in
``program_args``; every failure path driven through the hooks, operators, sensor and trigger against the real
stack; none of the secrets may appear in a log record (stdlib and structlog, at DEBUG), an exception's
``str``/``repr``/pickle, an XCom, a trigger event or a rendered template field (serialized through Airflow's
masker the way the task runner stores them, right after rendering and before ``execute``).

Each test uses secrets made for it (so a mask registered by an earlier test cannot hide a leak), and the
test itself never registers a secret with the masker: only the code under test may.
"""

from __future__ import annotations

import json
import logging
import pickle
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields
from structlog.testing import LogCapture

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.protocol.errors import FlinkError, FlinkJobFailedError
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.conftest import HOST, PORTS
from tests.integration import _flink_it as it
from tests.integration._flink_it import context_for, python_jar

pytestmark = pytest.mark.integration



@dataclass
class Secrets:
    """One test's secrets, each a unique string, and where they went."""

    password: str = field(default_factory=lambda: f"connpw{uuid.uuid4().hex[:12]}")
    token: str = field(default_factory=lambda: f"tok{uuid.uuid4().hex[:14]}")
    extra: str = field(default_factory=lambda: f"extra{uuid.uuid4().hex[:12]}")
    sql: str = field(default_factory=lambda: f"sqlpw{uuid.uuid4().hex[:12]}")
    jaas: str = field(default_factory=lambda: f"jaaspw{uuid.uuid4().hex[:12]}")
    arg: str = field(default_factory=lambda: f"argpw{uuid.uuid4().hex[:12]}")

    def values(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items()}


@dataclass
class Sweep:
    """Everything a test saw: log records and events, and the objects it got (errors, XComs, events...)."""

    secrets: Secrets
    caplog: pytest.LogCaptureFixture
    structlog_events: list[dict[str, Any]]
    seen: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, what: str, value: Any) -> None:
        """Something that reached the user: an exception, an XCom value, a trigger event, a rendered field."""
        self.seen.append((what, value))

    def rendered_fields(self, operator: Any, context: dict[str, Any]) -> None:
        """Render the operator's templates and serialize them as the task runner does before ``execute``."""
        operator.render_template_fields(context)
        self.add("rendered template fields", _serialize_rendered_fields(operator))

    def _texts(self) -> Iterator[tuple[str, str]]:
        formatter = logging.Formatter()
        for record in self.caplog.records:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + formatter.formatException(record.exc_info)
            yield f"log record {record.name}:{record.lineno}", text
        for event in self.structlog_events:
            yield f"structlog event {event.get('logger', '')}", repr(event) + _exception_text(event.get("exc_info"))
        for what, value in self.seen:
            if isinstance(value, BaseException):
                yield f"{what}: str", str(value)
                yield f"{what}: repr", repr(value)
                yield f"{what}: pickle", pickle.dumps(value).decode("latin-1")
                yield f"{what}: chained", _exception_text(value)
            else:
                yield what, json.dumps(value, default=repr)

    def assert_no_secret(self) -> None:
        leaks = [
            f"{name} in {where}: ...{text[max(0, text.find(secret) - 160) : text.find(secret) + 60]!r}..."
            for where, text in self._texts()
            for name, secret in self.secrets.values().items()
            if secret in text
        ]
        assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def _exception_text(error: Any) -> str:
    """An exception with its causes and contexts, as a traceback shows them."""
    import traceback

    if isinstance(error, BaseException):
        return "".join(traceback.format_exception(error))
    if isinstance(error, tuple) and len(error) == 3 and error[1] is not None:
        return "".join(traceback.format_exception(*error))
    return ""


@pytest.fixture
def sweep(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sweep]:
    """Fresh secrets, connections that carry them, and every log record at DEBUG."""
    secrets = Secrets()
    rest_url = {"conn_type": "flink", "host": HOST, "port": PORTS["flink_rest"]}
    gateway_url = {"conn_type": "flink_sql_gateway", "host": HOST, "port": PORTS["sql_gateway"]}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SWEEP_REST",
        json.dumps({**rest_url, "login": "sweeper", "password": secrets.password,
                    "extra": {"timeout": 30, "ssl_key_password": secrets.extra}}),
    )  # fmt: skip
    monkeypatch.setenv(
        "AIRFLOW_CONN_SWEEP_GATEWAY",
        json.dumps({**gateway_url, "extra": {"auth_type": "bearer", "token": secrets.token, "timeout": 30,
                                             "client_secret": secrets.extra}}),
    )  # fmt: skip
    closed_port = _closed_port()
    for name, conn_type in (("SWEEP_DOWN_REST", "flink"), ("SWEEP_DOWN_GATEWAY", "flink_sql_gateway")):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name}",
            json.dumps({"conn_type": conn_type, "host": HOST, "port": closed_port, "login": "sweeper",
                        "password": secrets.password,
                        "extra": {"retries": 1, "outage_budget": 1, "token_note": secrets.extra}}),
        )  # fmt: skip
    caplog.set_level(logging.DEBUG)
    capture = LogCapture()
    saved = structlog.get_config()
    structlog.configure(processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield Sweep(secrets, caplog, capture.entries)
    finally:
        structlog.configure(**saved)


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _expect_failure(sweep: Sweep, what: str, call: Callable[[], Any]) -> BaseException:
    """Run ``call``, which must raise; keep the exception for the sweep."""
    try:
        result = call()
    except Exception as error:
        sweep.add(what, error)
        return error
    sweep.add(f"{what} (result)", result)
    raise AssertionError(f"{what} did not fail: {result!r}")


def _jaas(secret: str) -> str:
    return f'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="{secret}";'


def _kafka_table(name: str, secrets: Secrets) -> str:
    """A Kafka table whose options hold a JAAS config and a password (Kafka passes properties.* through)."""
    return (
        f"CREATE TABLE {name} (n BIGINT) WITH (\n"
        f"  'connector' = 'kafka',\n"
        f"  'topic' = 'sweep-{uuid.uuid4().hex[:8]}',\n"
        f"  'properties.bootstrap.servers' = '{HOST}:{PORTS['kafka']}',\n"
        f"  'properties.sasl.jaas.config' = '{_jaas(secrets.jaas)}',\n"
        f"  'properties.ssl.truststore.password' = '{secrets.sql}',\n"
        f"  'format' = 'json'\n"
        f")"
    )


def _gateway_operator(task_id: str, sql: str, **kwargs: Any) -> FlinkSqlGatewayOperator:
    kwargs.setdefault("flink_sql_gateway_conn_id", "sweep_gateway")
    kwargs.setdefault("flink_conn_id", "sweep_rest")
    return FlinkSqlGatewayOperator(task_id=task_id, sql=sql, session_properties={"parallelism.default": "1"}, **kwargs)


def _run(sweep: Sweep, operator: Any, what: str) -> BaseException:
    """Render (kept as the runner keeps it), execute (must fail), and keep the XComs it pushed."""
    context = context_for(operator.task_id)
    sweep.rendered_fields(operator, context)
    error = _expect_failure(sweep, what, lambda: operator.execute(context))
    sweep.add(f"{what}: XComs", context["ti"].xcoms)
    return error


# --- the SQL Gateway operator -------------------------------------------------------------------------


def test_bad_sql_on_the_line_that_holds_the_secret(sweep: Sweep) -> None:
    table = f"sweep_{uuid.uuid4().hex[:8]}"
    sql = (
        f"CREATE TABLE {table} (n BIGINT) WITH (\n"
        f"  'connector' = 'datagen',\n"
        f"  'password' = '{sweep.secrets.sql}' 'rows-per-second' = '1'\n"
        f");\n"
    )
    error = _run(sweep, _gateway_operator("bad_sql", sql), "bad SQL")
    assert "line 3" in str(error), error  # the error still says where
    sweep.assert_no_secret()


def test_unknown_table_after_a_table_with_credentials(sweep: Sweep) -> None:
    source = f"sweep_src_{uuid.uuid4().hex[:8]}"
    sql = f"{_kafka_table(source, sweep.secrets)};\nINSERT INTO sweep_missing_table SELECT n FROM {source};\n"
    error = _run(sweep, _gateway_operator("unknown_table", sql), "unknown table")
    assert "sweep_missing_table" in str(error), error
    sweep.assert_no_secret()


def test_show_create_table_result_in_xcom(sweep: Sweep) -> None:
    """A query whose answer echoes the table's options (the DDL with its JAAS config) reaches XCom."""
    source = f"sweep_show_{uuid.uuid4().hex[:8]}"
    operator = _gateway_operator("show", f"{_kafka_table(source, sweep.secrets)};\nSHOW CREATE TABLE {source};\n")
    context = context_for(operator.task_id)
    sweep.rendered_fields(operator, context)
    outcome = operator.execute(context)
    sweep.add("SHOW CREATE TABLE: return value (XCom)", outcome)
    sweep.add("SHOW CREATE TABLE: XComs", context["ti"].xcoms)
    assert outcome["results"], outcome
    sweep.assert_no_secret()


def test_unreachable_gateway(sweep: Sweep) -> None:
    sql = f"{_kafka_table('t', sweep.secrets)};\n"
    operator = _gateway_operator(
        "unreachable", sql, flink_sql_gateway_conn_id="sweep_down_gateway", flink_conn_id="sweep_down_rest"
    )
    _run(sweep, operator, "unreachable gateway")
    sweep.assert_no_secret()


# --- a job that fails, the sensor and the trigger -------------------------------------------------------------


def _failing_job(sweep: Sweep, started_jobs: list[str]) -> str:
    """Start a job that fails at run time with the secret in its root cause (a CAST of 'password=<secret>')."""
    table = f"sweep_fail_{uuid.uuid4().hex[:8]}"
    sql = (
        "SET 'restart-strategy.type' = 'none';\n"
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '5');\n"
        f"CREATE TABLE {table} (n INT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} SELECT CAST(CONCAT('password={sweep.secrets.sql}', CAST(n AS STRING)) AS INT)"
        f" FROM {table}_src;\n"
    )
    operator = _gateway_operator("failing_job", sql)
    context = context_for(operator.task_id)
    sweep.rendered_fields(operator, context)
    outcome = operator.execute(context)
    sweep.add("failing job: return value", outcome)
    (job_id,) = outcome["job_ids"]
    started_jobs.append(job_id)
    return str(job_id)


def test_failing_job_seen_by_the_poke_sensor_and_the_trigger(sweep: Sweep, started_jobs: list[str]) -> None:
    job_id = _failing_job(sweep, started_jobs)
    sensor = FlinkJobStateSensor(
        task_id="wait", job_id=job_id, flink_conn_id="sweep_rest", target_states=["FINISHED"],
        mode="poke", poke_interval=0.5, timeout=120,
    )  # fmt: skip
    error = _run(sweep, sensor, "poke sensor on a failed job")
    assert isinstance(error, FlinkJobFailedError), error  # FAILING or FAILED, whichever the poke saw

    trigger = FlinkJobStateTrigger(
        job_id=job_id, flink_conn_id="sweep_rest", target_states=["FINISHED"], poll_interval=0.5
    )
    sweep.add("trigger serialize()", trigger.serialize())
    event = it.first_event(trigger)
    sweep.add("trigger event", event)
    assert event.get("status") == "failed", event
    if "NumberFormatException" in str(event.get("root_cause")):  # not when the cluster had no free slot
        assert "password=****" in event["root_cause"], event
    sweep.assert_no_secret()


def test_unreachable_rest_seen_by_the_sensor_deferred_and_poked(sweep: Sweep) -> None:
    job_id = uuid.uuid4().hex
    deferred = FlinkJobStateSensor(
        task_id="wait_down", job_id=job_id, flink_conn_id="sweep_down_rest", deferrable=True, poke_interval=0.5
    )
    context = context_for(deferred.task_id)
    sweep.rendered_fields(deferred, context)
    with pytest.raises(TaskDeferred) as info:
        deferred.execute(context)
    sweep.add("deferred trigger kwargs", info.value.trigger.serialize()[1])
    event = it.first_event(info.value.trigger)
    sweep.add("trigger event", event)
    _expect_failure(sweep, "execute_complete", lambda: deferred.execute_complete(context, event))

    poked = FlinkJobStateSensor(
        task_id="poke_down", job_id=job_id, flink_conn_id="sweep_down_rest", mode="poke", poke_interval=0.5,
        timeout=60,
    )  # fmt: skip
    _run(sweep, poked, "poke sensor on an unreachable cluster")
    sweep.assert_no_secret()


# --- the job submit operator -------------------------------------------------------------------------------


def _program_args(secrets: Secrets) -> list[str]:
    return ["--password", secrets.arg, "--sasl-jaas-config", _jaas(secrets.jaas), f"--api-token={secrets.token}"]


def test_pyflink_program_that_fails_with_secret_arguments(sweep: Sweep, tmp_path: Path) -> None:
    program = tmp_path / "sweep_failing_job.py"
    program.write_text("import sys\nraise SystemExit('bad arguments: ' + ' '.join(sys.argv[1:]))\n")
    operator = FlinkJobSubmitOperator(
        task_id="pyflink_fails", py_file=str(program), python_jar=python_jar(),
        program_args=_program_args(sweep.secrets), flink_conn_id="sweep_rest", wait_for_running=True,
        wait_timeout=120, poll_interval=1,
    )  # fmt: skip
    error = _run(sweep, operator, "failing PyFlink program")
    assert isinstance(error, FlinkError), error  # it reached Flink and failed there
    sweep.assert_no_secret()


def test_program_args_given_as_one_string(sweep: Sweep) -> None:
    """A common mistake: the arguments as one string; the error that refuses them must not echo them."""
    operator = FlinkJobSubmitOperator(
        task_id="args_string", py_module="jobs.enrich", python_jar=python_jar(),
        program_args=f"--password {sweep.secrets.arg}", flink_conn_id="sweep_rest",  # type: ignore[arg-type]
    )  # fmt: skip
    error = _run(sweep, operator, "program_args as a string")
    assert isinstance(error, ValueError) and "program_args" in str(error), error
    sweep.assert_no_secret()


def test_unreachable_rest_for_a_jar_submit(sweep: Sweep, throttled_jar: Path) -> None:
    operator = FlinkJobSubmitOperator(
        task_id="jar_down", jar=str(throttled_jar), entry_class="ThrottledSequenceJob",
        program_args=_program_args(sweep.secrets), flink_conn_id="sweep_down_rest",
    )  # fmt: skip
    _run(sweep, operator, "jar submit to an unreachable cluster")
    sweep.assert_no_secret()


# --- the hooks and their connections -----------------------------------------------------------------------


def test_bad_connection_extras_next_to_the_token(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SWEEP_BAD_EXTRAS",
        json.dumps({"conn_type": "flink_sql_gateway", "host": HOST, "port": PORTS["sql_gateway"],
                    "password": sweep.secrets.password,
                    "extra": {"token": sweep.secrets.token, "timeout": "nan", "client_secret": sweep.secrets.extra}}),
    )  # fmt: skip
    _expect_failure(sweep, "gateway hook with bad extras", lambda: FlinkSqlGatewayHook("sweep_bad_extras").get_info())
    _expect_failure(sweep, "REST hook unreachable", lambda: FlinkRestHook("sweep_down_rest").get_overview())
    sweep.assert_no_secret()
