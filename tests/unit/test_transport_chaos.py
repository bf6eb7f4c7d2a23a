"""Transport chaos on loopback: trickled answers, resets mid-body, HTML 5xx pages, 429 storms.

Each runs against both transports (``requests`` and ``httpx``) and through the hooks' waits (the operators'
``wait_for_job``, the poke sensor, the trigger). Total times stay within the wait's deadline (plus one poll
interval), and no HTTP connection, SQL Gateway session or operation is left behind: the server counts the
connections a client still holds, and ``client_sockets`` the ones this process has open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.hooks.transport import AsyncTransport, SyncTransport, TransportConfig
from airflow_flink_provider.operators.common import wait_for_job
from airflow_flink_provider.protocol.errors import FlinkConnectionError, FlinkError, FlinkTimeoutError
from airflow_flink_provider.protocol.http import Exchange, Request, Response, RetryPolicy
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, JobStateCheck, error_from_event
from tests.support.chaos_server import (
    LEADER_ELECTION,
    Answer,
    ChaosServer,
    client_sockets,
    html_error,
    too_many,
    wait_for,
)
from tests.unit._flink_fakes import make_context

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"
SESSION = "d3f7afb3-6dd4-4447-91f6-76d19d4b217c"
OPERATION = "54746634-12e2-409e-82e1-71af01e02c1c"
OVERVIEW = {"jobs": [{"jid": JOB, "name": "j", "state": "RUNNING", "tasks": {"total": 1, "running": 1}}]}
SLOW = Answer(200, OVERVIEW, trickle=0.05)  # ~200 bytes at 20 bytes/s: 10 s for the whole answer
LOG = logging.getLogger("test.chaos")
KINDS = ["sync", "async"]


def one(request: Request) -> Exchange[Response]:
    response = yield request
    assert response is not None
    return response


def send(kind: str, config: TransportConfig, request: Request) -> Response:
    """Send one request with a fresh transport of ``kind``, closed afterwards."""
    if kind == "sync":
        transport = SyncTransport(config)
        try:
            return transport.run(one(request))
        finally:
            transport.close()

    async def go() -> Response:
        async with AsyncTransport(config) as transport:
            return await transport.run(one(request))

    return asyncio.run(go())


def config(server: ChaosServer, **kwargs: Any) -> TransportConfig:
    kwargs.setdefault("retry", RetryPolicy(attempts=2, initial=0, maximum=0, jitter=0))
    return TransportConfig(base_url=server.url, **kwargs)


def nothing_left_open(server: ChaosServer) -> bool:
    """Whether every connection to the server is closed, on both ends."""
    return wait_for(lambda: server.open_connections() == 0 and client_sockets(server.port) == 0)


# --- both transports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_trickling_answer_is_cut_at_the_total_timeout(kind: str) -> None:
    with ChaosServer(lambda method, path: SLOW) as server:
        started = time.monotonic()
        with pytest.raises(FlinkTimeoutError) as info:
            send(kind, config(server, timeout=0.5), Request("GET", "/jobs/overview"))
        elapsed = time.monotonic() - started
        assert "did not answer GET" in info.value.message and "within 0.5s" in info.value.message
        assert server.count("GET", "/jobs/overview") == 2  # both tries, each cut at 0.5 s
        assert elapsed < 2 * 0.5 + 1.5, elapsed  # a per-read timeout alone would wait ~10 s per try
        assert nothing_left_open(server)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reset_mid_body_is_retried_for_a_get_and_not_for_a_post(kind: str) -> None:
    answers = iter([Answer(200, OVERVIEW, reset_after=10), Answer(200, OVERVIEW)])
    with ChaosServer(lambda method, path: next(answers, Answer(200, OVERVIEW, reset_after=10))) as server:
        assert send(kind, config(server), Request("GET", "/jobs/overview")).body == OVERVIEW
        assert server.count("GET", "/jobs/overview") == 2
        with pytest.raises(FlinkConnectionError) as info:
            send(kind, config(server), Request("POST", "/jars/x/run", json={}))
        assert info.value.request_sent and server.count("POST", "/jars/x/run") == 1  # it may have run: not again
        assert nothing_left_open(server)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "reason"), [(502, "Bad Gateway"), (503, "Service Unavailable"), (504, "Gateway Timeout")]
)
def test_an_html_error_page_gives_a_short_readable_error(kind: str, status: int, reason: str) -> None:
    with ChaosServer(lambda method, path: html_error(status, reason)) as server:
        with pytest.raises(FlinkError) as info:
            send(kind, config(server), Request("GET", "/jobs/overview"))
        assert str(info.value) == f"{status} {reason} nginx (HTTP {status})"
        assert server.count("GET", "/jobs/overview") == 2  # retried: a proxy's 5xx is worth another try
        assert nothing_left_open(server)


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_storm_without_retry_after_backs_off_and_gives_up(kind: str) -> None:
    policy = RetryPolicy(attempts=4, initial=0.05, maximum=0.2, jitter=0)
    with ChaosServer(lambda method, path: too_many()) as server:
        started = time.monotonic()
        with pytest.raises(FlinkError) as info:
            send(kind, config(server, retry=policy), Request("POST", "/jars/x/run", json={}))
        elapsed = time.monotonic() - started
        assert info.value.status == 429 and "Too many requests" in info.value.message
        assert server.count("POST", "/jars/x/run") == 4  # a 429 was not carried out: even a POST is repeated
        assert 0.05 + 0.1 + 0.2 <= elapsed < 3
        assert nothing_left_open(server)


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_storm_with_retry_after_is_honoured_but_capped(kind: str) -> None:
    policy = RetryPolicy(attempts=3, initial=0, maximum=0.4, jitter=0)
    with ChaosServer(lambda method, path: too_many("3600")) as server:
        started = time.monotonic()
        with pytest.raises(FlinkError) as info:
            send(kind, config(server, retry=policy), Request("GET", "/jobs/overview"))
        elapsed = time.monotonic() - started
        assert info.value.status == 429 and server.count("GET", "/jobs/overview") == 3
        assert 0.8 <= elapsed < 3  # two waits of 0.4 s, not of an hour
    answers = iter([too_many("1"), Answer(200, OVERVIEW)])
    with ChaosServer(lambda method, path: next(answers)) as server:
        started = time.monotonic()
        send(kind, config(server, retry=RetryPolicy(attempts=2, initial=0, maximum=10, jitter=0)), Request("GET", "/x"))
        assert time.monotonic() - started >= 1.0  # as asked, although the backoff would not wait at all


@pytest.mark.parametrize("kind", KINDS)
def test_polls_reuse_one_keep_alive_connection(kind: str) -> None:
    with ChaosServer(lambda method, path: Answer(200, OVERVIEW)) as server:
        transport_config = config(server)
        if kind == "sync":
            transport = SyncTransport(transport_config)
            for _ in range(20):
                transport.run(one(Request("GET", "/jobs/overview")))
            assert client_sockets(server.port) == 1
            transport.close()
        else:

            async def polls() -> None:
                async with AsyncTransport(transport_config) as transport:
                    for _ in range(20):
                        await transport.run(one(Request("GET", "/jobs/overview")))
                    assert client_sockets(server.port) == 1

            asyncio.run(polls())
        assert server.count("GET", "/jobs/overview") == 20 and server.accepted == 1
        assert nothing_left_open(server)


# --- through the hooks' waits ----------------------------------------------------------------------------


@pytest.fixture
def flink_conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point the ``chaos_flink`` connection at a server: ``flink_conn(server, **extra)``."""

    def point(server: ChaosServer, **extra: Any) -> str:
        extra = {"timeout": 5, "retries": 2, "retry_wait": 0, **extra}
        conn = {"conn_type": "flink", "host": "127.0.0.1", "port": server.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_CHAOS_FLINK", json.dumps(conn))
        return "chaos_flink"

    yield point


def first_event(trigger: FlinkJobStateTrigger, timeout: float = 30) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(run(), timeout))


def test_wait_for_job_keeps_its_deadline_against_a_trickling_api(flink_conn: Any) -> None:
    with ChaosServer(lambda method, path: SLOW) as server:
        hook = FlinkRestHook(flink_conn(server, timeout=0.5))
        started = time.monotonic()
        with pytest.raises(FlinkTimeoutError) as info:
            wait_for_job(hook, JOB, JobStateCheck.of(["RUNNING"]), timeout=2, poll_interval=0.5, log=LOG)
        elapsed = time.monotonic() - started
        assert 2 <= elapsed < 2 + 0.5 + 1.0, elapsed
        assert "did not reach ['RUNNING'] within 2s" in info.value.message
        assert "unavailable for the last" in info.value.message and "did not answer GET" in info.value.message
        hook.transport.close()
        assert nothing_left_open(server)


def test_wait_for_job_rides_out_html_503s_then_sees_the_job(flink_conn: Any) -> None:
    answers = iter([html_error(503, "Service Unavailable")] * 6)
    with ChaosServer(lambda method, path: next(answers, Answer(200, OVERVIEW))) as server:
        hook = FlinkRestHook(flink_conn(server, outage_budget=30))
        state = wait_for_job(hook, JOB, JobStateCheck.of(["RUNNING"]), timeout=30, poll_interval=0.05, log=LOG)
        assert state == "RUNNING" and server.count("GET", "/jobs/overview") >= 7  # more if a try timed out
        hook.transport.close()
        assert nothing_left_open(server)


def test_poke_sensor_fails_after_the_budget_of_an_html_503_storm(flink_conn: Any) -> None:
    with ChaosServer(lambda method, path: html_error(503, "Service Unavailable")) as server:
        sensor = FlinkJobStateSensor(
            task_id="wait", job_id=JOB, flink_conn_id=flink_conn(server, outage_budget=1), poke_interval=0.1, timeout=60
        )
        started = time.monotonic()
        with pytest.raises(FlinkConnectionError) as info:
            sensor.execute(make_context())
        elapsed = time.monotonic() - started
        assert 1 <= elapsed < 1 + 2, elapsed
        text = str(info.value)
        assert "longer than the outage budget of 1s; last error: 503 Service Unavailable nginx" in text
        assert text.splitlines()[0].endswith("(HTTP 503)")
        assert float(re.search(r"unavailable for ([0-9.]+)s", text).group(1)) >= 1  # type: ignore[union-attr]


def test_trigger_keeps_its_deadline_against_a_trickling_api_and_closes_its_client(flink_conn: Any) -> None:
    with ChaosServer(lambda method, path: SLOW) as server:
        trigger = FlinkJobStateTrigger(
            job_id=JOB, flink_conn_id=flink_conn(server, timeout=0.5), poll_interval=0.5, deadline=time.time() + 2
        )
        started = time.monotonic()
        event = first_event(trigger)
        elapsed = time.monotonic() - started
        assert event["status"] == "timeout" and "did not answer GET" in event["message"]
        assert elapsed < 2 + 0.5 + 1.0, elapsed
        assert nothing_left_open(server)


def test_trigger_in_a_429_storm_fails_after_its_budget_naming_the_status(flink_conn: Any) -> None:
    with ChaosServer(lambda method, path: too_many("3600")) as server:
        trigger = FlinkJobStateTrigger(
            job_id=JOB, flink_conn_id=flink_conn(server, outage_budget=1.5), poll_interval=0.2
        )
        started = time.monotonic()
        event = first_event(trigger)
        elapsed = time.monotonic() - started
        assert event["status"] == "error" and event["http_status"] == 429
        assert "longer than the outage budget of 1.5s" in event["message"]
        assert 1.5 <= elapsed < 1.5 + 1.0, elapsed  # no Retry-After wait (10 s once capped) runs past the budget
        error = error_from_event(event)
        assert isinstance(error, FlinkConnectionError) and "(HTTP 429)" in str(error)
        assert nothing_left_open(server)


def test_trigger_honours_a_short_retry_after(flink_conn: Any) -> None:
    answers = iter([too_many("1")])
    with ChaosServer(lambda method, path: next(answers, Answer(200, OVERVIEW))) as server:
        trigger = FlinkJobStateTrigger(job_id=JOB, flink_conn_id=flink_conn(server), poll_interval=0.05)
        started = time.monotonic()
        assert first_event(trigger)["status"] == "success"
        assert time.monotonic() - started >= 1.0  # the poll's retry waited as the server asked
        assert server.count("GET", "/jobs/overview") == 2 and nothing_left_open(server)


def test_trigger_rides_out_a_leader_election_and_resets_mid_body(flink_conn: Any) -> None:
    answers = iter([LEADER_ELECTION] * 4 + [Answer(200, OVERVIEW, reset_after=5)] * 2)
    with ChaosServer(lambda method, path: next(answers, Answer(200, OVERVIEW))) as server:
        trigger = FlinkJobStateTrigger(job_id=JOB, flink_conn_id=flink_conn(server), poll_interval=0.05)
        assert first_event(trigger) == {"status": "success", "job_id": JOB, "state": "RUNNING"}
        assert server.count("GET", "/jobs/overview") >= 7  # more if a try timed out on a busy machine
        assert nothing_left_open(server)


# --- SQL Gateway: no session or operation left behind -----------------------------------------------------


def gateway(results: Answer, *, opening: Answer | None = None) -> Any:
    """A SQL Gateway that opens one session, queues one operation and answers its result pages with ``results``."""
    base = f"/v4/sessions/{SESSION}/operations/{OPERATION}"

    def behave(method: str, path: str) -> Answer:
        if path == "/api_versions":
            return Answer(200, {"versions": ["V1", "V2", "V3", "V4"]})
        if (method, path) == ("POST", "/v4/sessions"):
            return opening or Answer(200, {"sessionHandle": SESSION})
        if path.endswith("/statements"):
            return Answer(200, {"operationHandle": OPERATION})
        if path.startswith(f"{base}/result/"):
            return results
        if path == f"{base}/cancel":
            return Answer(200, {"status": "CANCELED"})
        return Answer(200, {"status": "CLOSED"})  # close the operation or the session

    return behave


@pytest.fixture
def gateway_conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def point(server: ChaosServer) -> str:
        extra = {"timeout": 0.5, "retries": 2, "retry_wait": 0}  # short: the statement tests trickle
        conn = {"conn_type": "flink_sql_gateway", "host": "127.0.0.1", "port": server.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_CHAOS_GATEWAY", json.dumps(conn))
        return "chaos_gateway"

    yield point


def test_a_lost_session_answer_opens_no_second_session(gateway_conn: Any) -> None:
    lost = Answer(200, {"sessionHandle": SESSION}, reset_after=0)  # the gateway opened it; the answer is lost
    with ChaosServer(gateway(Answer(200, {}), opening=lost)) as server:
        hook = FlinkSqlGatewayHook(gateway_conn(server))
        with pytest.raises(FlinkConnectionError) as info:
            hook.open_session({"parallelism.default": "1"})
        assert server.count("POST", "/v4/sessions$") == 1
        assert "sql-gateway.session.idle-timeout" in str(info.value.hint)
        hook.transport.close()
        assert nothing_left_open(server)


def test_a_statement_timeout_against_a_trickling_result_closes_the_operation(gateway_conn: Any) -> None:
    page = {"resultType": "NOT_READY", "nextResultUri": f"/v4/sessions/{SESSION}/operations/{OPERATION}/result/1"}
    with ChaosServer(gateway(Answer(200, page, trickle=0.05))) as server:
        hook = FlinkSqlGatewayHook(gateway_conn(server))
        session = hook.open_session()
        started = time.monotonic()
        with pytest.raises(FlinkTimeoutError):
            hook.run_statement(session, "SELECT n FROM ticks", timeout=2)
        assert time.monotonic() - started < 2 + 1.5
        assert server.count("DELETE", f"/operations/{OPERATION}/close$") == 1  # the operation is not left open
        hook.close_session(session)
        assert server.count("DELETE", f"/v4/sessions/{SESSION}$") == 1
        hook.transport.close()
        assert nothing_left_open(server)


def test_a_statement_timeout_on_endless_empty_pages_cancels_and_closes(gateway_conn: Any) -> None:
    page = {"resultType": "NOT_READY", "nextResultUri": f"/v4/sessions/{SESSION}/operations/{OPERATION}/result/1"}
    with ChaosServer(gateway(Answer(200, page))) as server:
        hook = FlinkSqlGatewayHook(gateway_conn(server))
        session = hook.open_session()
        started = time.monotonic()
        with pytest.raises(FlinkTimeoutError, match=f"operation {OPERATION} had no end of result within") as info:
            hook.run_statement(session, "SELECT n FROM ticks", timeout=1)
        assert 1 <= time.monotonic() - started < 1 + 1.5
        assert "cancelled and closed" in info.value.message
        assert server.count("POST", f"/operations/{OPERATION}/cancel$") == 1
        assert server.count("DELETE", f"/operations/{OPERATION}/close$") == 1
        hook.close_session(session)
        hook.transport.close()
        assert nothing_left_open(server)
