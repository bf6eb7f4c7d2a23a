"""Transports: retry policy (4xx vs 5xx vs 429 vs timeouts vs refused connections), errors, auth, uploads.

HTTP answers are mocked (``responses`` for requests, ``httpx.MockTransport`` for httpx) only where a real
Flink cannot be made to produce them; refused connections and read timeouts use real loopback sockets.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import responses

from airflow_flink_provider.hooks.transport import (
    AsyncTransport,
    BasicAuth,
    BearerAuth,
    SyncTransport,
    TransportConfig,
)
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkSqlError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response, RetryPolicy, Sleep, retry_within

pytestmark = pytest.mark.unit

BASE = "http://flink.test:8081"
FAST = RetryPolicy(attempts=3, initial=0, maximum=0, jitter=0)
SQL_ERROR = {
    "errors": [
        "Internal server error.",
        "<Exception on server side:\n"
        "org.apache.flink.table.gateway.api.utils.SqlGatewayException: Failed to fetchResults.\n"
        "Caused by: org.apache.flink.table.api.ValidationException: SQL validation failed. From line 1, column 8 to "
        "line 1, column 11: Column 'nope' not found in any table\n\nEnd of exception on server side>",
    ]
}
SERVER_BUSY = {
    "errors": [
        "Internal server error.",
        "<Exception on server side:\njava.lang.RuntimeException: busy\n\tat a.B.c(B.java:1)\n\n"
        "End of exception on server side>",
    ]
}


def config(retry: RetryPolicy = FAST, **kwargs: Any) -> TransportConfig:
    return TransportConfig(base_url=kwargs.pop("base_url", BASE), retry=retry, **kwargs)


def one(request: Request) -> Exchange[Response]:
    """An exchange that sends one request and returns the response."""
    response = yield request
    assert response is not None
    return response


def caught(request: Request) -> Exchange[str]:
    """An exchange that catches the typed error thrown into it."""
    try:
        yield request
    except FlinkError as err:
        return f"caught {type(err).__name__}"
    return "no error"


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "failed" in r.getMessage()]


# --- sync transport -------------------------------------------------------------------------------


@responses.activate
def test_sync_5xx_is_retried_until_success(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/overview", json=SERVER_BUSY, status=503)
    responses.get(f"{BASE}/overview", json={"slots-total": 8}, status=200)
    with caplog.at_level(logging.WARNING):
        result = SyncTransport(config()).run(one(Request("GET", "/overview")))
    assert result.body == {"slots-total": 8}
    assert len(responses.calls) == 2
    [warning] = retry_warnings(caplog)
    assert "GET /overview failed (RuntimeException: busy); try 2 of 3" in warning.getMessage()


@responses.activate
def test_sync_5xx_gives_up_after_the_attempts() -> None:
    responses.get(f"{BASE}/overview", json=SERVER_BUSY, status=502)
    with pytest.raises(FlinkError) as info:
        SyncTransport(config()).run(one(Request("GET", "/overview")))
    assert type(info.value) is FlinkError and info.value.status == 502
    assert len(responses.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
@responses.activate
def test_sync_4xx_is_never_retried(status: int) -> None:
    responses.get(f"{BASE}/jobs/x", json={"errors": ["nope"]}, status=status)
    with pytest.raises(FlinkError) as info:
        SyncTransport(config()).run(one(Request("GET", "/jobs/x")))
    assert info.value.status == status
    assert len(responses.calls) == 1


@responses.activate
def test_sync_500_with_a_recognised_cause_is_not_retried() -> None:
    responses.get(f"{BASE}/result/0", json=SQL_ERROR, status=500)
    with pytest.raises(FlinkSqlError) as info:
        SyncTransport(config()).run(one(Request("GET", "/result/0")))
    assert (info.value.line, info.value.column) == (1, 8)
    assert len(responses.calls) == 1


@responses.activate
def test_sync_429_is_retried_even_for_post() -> None:
    responses.post(f"{BASE}/jars/j/run", json={"errors": ["slow down"]}, status=429)
    responses.post(f"{BASE}/jars/j/run", json={"jobid": "ab"}, status=200)
    result = SyncTransport(config()).run(one(Request("POST", "/jars/j/run", json={})))
    assert result.body == {"jobid": "ab"}
    assert len(responses.calls) == 2


@responses.activate
def test_sync_5xx_on_a_non_idempotent_post_is_not_retried() -> None:
    responses.post(f"{BASE}/sessions/s/statements", json=SERVER_BUSY, status=503)
    with pytest.raises(FlinkError):
        SyncTransport(config()).run(one(Request("POST", "/sessions/s/statements", json={})))
    assert len(responses.calls) == 1


@responses.activate
def test_sync_5xx_on_an_idempotent_post_is_retried() -> None:
    responses.post(f"{BASE}/jobs/j/savepoints", json=SERVER_BUSY, status=503)
    responses.post(f"{BASE}/jobs/j/savepoints", json={"request-id": "r"}, status=202)
    result = SyncTransport(config()).run(one(Request("POST", "/jobs/j/savepoints", json={}, idempotent=True)))
    assert result.body == {"request-id": "r"}


@responses.activate
def test_sync_error_is_thrown_into_the_exchange() -> None:
    responses.get(f"{BASE}/jobs/x", json={"errors": ["Job x not found"]}, status=404)
    assert SyncTransport(config()).run(caught(Request("GET", "/jobs/x"))) == "caught FlinkNotFoundError"


@responses.activate
def test_sync_accepted_status_reaches_the_exchange() -> None:
    responses.get(f"{BASE}/jobs/x", json={"errors": ["Job x not found"]}, status=404)
    result = SyncTransport(config()).run(one(Request("GET", "/jobs/x", accept=frozenset({404}))))
    assert result.status == 404 and result.body == {"errors": ["Job x not found"]}


@responses.activate
def test_sync_non_json_body_is_text() -> None:
    responses.get(f"{BASE}/taskmanagers/t/stdout", body="+I[1, a]\n", content_type="text/plain")
    result = SyncTransport(config()).run(one(Request("GET", "/taskmanagers/t/stdout")))
    assert result.body is None and result.text == "+I[1, a]\n"


@responses.activate
def test_sync_params_and_json_body_are_sent() -> None:
    responses.patch(f"{BASE}/jobs/j", status=202, json={})
    SyncTransport(config()).run(one(Request("PATCH", "/jobs/j", params={"mode": "cancel", "drain": True})))
    sent = responses.calls[0].request
    assert sent.url == f"{BASE}/jobs/j?mode=cancel&drain=true"


@responses.activate
def test_sync_basic_auth_header() -> None:
    responses.get(f"{BASE}/overview", json={})
    SyncTransport(config(auth=BasicAuth("ann", "s3cret"))).run(one(Request("GET", "/overview")))
    expected = "Basic " + base64.b64encode(b"ann:s3cret").decode()
    assert responses.calls[0].request.headers["Authorization"] == expected


@responses.activate
def test_sync_bearer_auth_header_and_no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/overview", json={})
    with caplog.at_level(logging.DEBUG, logger="airflow_flink_provider"):
        SyncTransport(config(auth=BearerAuth("tok-123"))).run(one(Request("GET", "/overview")))
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok-123"
    assert any("GET http://flink.test:8081/overview" in r.getMessage() for r in caplog.records)
    assert not any("tok-123" in r.getMessage() for r in caplog.records)
    assert "tok-123" not in repr(config(auth=BearerAuth("tok-123")))
    assert "s3cret" not in repr(config(auth=BasicAuth("a", "s3cret")))


@responses.activate
def test_sync_upload_is_multipart_jarfile(tmp_path: Path) -> None:
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK\x03\x04fake")
    responses.post(f"{BASE}/jars/upload", json={"filename": "/tmp/x/abc_job.jar", "status": "success"})
    SyncTransport(config()).run(one(Request("POST", "/jars/upload", upload=str(jar))))
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="jarfile"; filename="job.jar"' in sent.body
    assert b"PK\x03\x04fake" in sent.body


def test_sync_sleep_steps_wait() -> None:
    def sleeper() -> Exchange[float]:
        started = time.monotonic()
        yield Sleep(0.05)
        return time.monotonic() - started

    assert SyncTransport(config()).run(sleeper()) >= 0.05


# --- real sockets: refused connections and read timeouts -----------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback server that accepts connections and never answers; yields (port, accepted count)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted: list[int] = []
    stop = threading.Event()
    connections: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            connections.append(conn)
            accepted.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1]), accepted
    stop.set()
    thread.join(timeout=2)
    for conn in connections:
        conn.close()
    server.close()


def test_sync_refused_connection_is_retried_even_for_post(closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    transport = SyncTransport(config(base_url=f"http://127.0.0.1:{closed_port}"))
    with caplog.at_level(logging.WARNING), pytest.raises(FlinkConnectionError) as info:
        transport.run(one(Request("POST", "/sessions/s/statements", json={})))
    assert not info.value.request_sent and info.value.retryable
    assert f"127.0.0.1:{closed_port}" in info.value.message
    assert len(retry_warnings(caplog)) == FAST.attempts - 1


def test_sync_read_timeout_is_retried_for_get(silent_server: tuple[int, list[int]]) -> None:
    port, accepted = silent_server
    transport = SyncTransport(config(base_url=f"http://127.0.0.1:{port}", timeout=0.2))
    started = time.monotonic()
    with pytest.raises(FlinkTimeoutError) as info:
        transport.run(one(Request("GET", "/overview")))
    assert info.value.retryable and "within 0.2s" in info.value.message
    assert len(accepted) == FAST.attempts
    assert time.monotonic() - started >= 0.2 * FAST.attempts


def test_sync_read_timeout_is_not_retried_for_non_idempotent_post(silent_server: tuple[int, list[int]]) -> None:
    port, accepted = silent_server
    transport = SyncTransport(config(base_url=f"http://127.0.0.1:{port}", timeout=0.2))
    with pytest.raises(FlinkTimeoutError):
        transport.run(one(Request("POST", "/jars/j/run", json={})))
    assert len(accepted) == 1


def test_request_timeout_overrides_the_default(silent_server: tuple[int, list[int]]) -> None:
    port, _ = silent_server
    transport = SyncTransport(config(base_url=f"http://127.0.0.1:{port}", timeout=5, retry=RetryPolicy(attempts=1)))
    started = time.monotonic()
    with pytest.raises(FlinkTimeoutError):
        transport.run(one(Request("GET", "/overview", timeout=0.2)))
    assert time.monotonic() - started < 2


@responses.activate
def test_backoff_grows_exponentially_with_bounded_jitter(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/overview", json=SERVER_BUSY, status=503)
    policy = RetryPolicy(attempts=4, initial=0.05, maximum=0.15, jitter=0.01)
    with caplog.at_level(logging.WARNING), pytest.raises(FlinkError):
        SyncTransport(config(retry=policy)).run(one(Request("GET", "/overview")))
    waits = [record.args[5] for record in retry_warnings(caplog)]  # type: ignore[index]
    assert len(waits) == 3
    for wait, base in zip(waits, [0.05, 0.10, 0.15], strict=True):
        assert base <= wait <= base + 0.01


# --- async transport ------------------------------------------------------------------------------


def mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> AsyncTransport:
    return AsyncTransport(config(**kwargs), transport=httpx.MockTransport(handler))


def sequence(*answers: httpx.Response | Exception) -> tuple[Callable[[httpx.Request], httpx.Response], list[Any]]:
    """A handler answering in order (the last answer repeats), recording requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[min(len(seen), len(answers) - 1)]
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def test_async_5xx_is_retried_until_success() -> None:
    handler, seen = sequence(httpx.Response(503, json=SERVER_BUSY), httpx.Response(200, json={"state": "RUNNING"}))
    result = asyncio.run(mock(handler).run(one(Request("GET", "/jobs/j"))))
    assert result.body == {"state": "RUNNING"} and len(seen) == 2


def test_async_4xx_is_not_retried_and_is_typed() -> None:
    handler, seen = sequence(httpx.Response(404, json={"errors": ["Job j not found"]}))
    with pytest.raises(FlinkNotFoundError):
        asyncio.run(mock(handler).run(one(Request("GET", "/jobs/j"))))
    assert len(seen) == 1


def test_async_recognised_500_is_not_retried() -> None:
    handler, seen = sequence(httpx.Response(500, json=SQL_ERROR))
    with pytest.raises(FlinkSqlError):
        asyncio.run(mock(handler).run(one(Request("GET", "/result/0"))))
    assert len(seen) == 1


def test_async_429_on_post_is_retried() -> None:
    handler, seen = sequence(httpx.Response(429), httpx.Response(200, json={"jobid": "j"}))
    result = asyncio.run(mock(handler).run(one(Request("POST", "/jars/x/run", json={"a": 1}))))
    assert result.body == {"jobid": "j"} and len(seen) == 2
    assert seen[0].read() == b'{"a":1}' or seen[0].read() == b'{"a": 1}'


def test_async_timeout_is_retried_for_get_then_raised() -> None:
    handler, seen = sequence(httpx.ReadTimeout("slow"))
    with pytest.raises(FlinkTimeoutError) as info:
        asyncio.run(mock(handler).run(one(Request("GET", "/jobs/j"))))
    assert info.value.retryable and len(seen) == FAST.attempts


def test_async_timeout_is_not_retried_for_non_idempotent_post() -> None:
    handler, seen = sequence(httpx.ReadTimeout("slow"))
    with pytest.raises(FlinkTimeoutError):
        asyncio.run(mock(handler).run(one(Request("POST", "/sessions/s/statements", json={}))))
    assert len(seen) == 1


def test_async_connect_error_is_retried_for_post() -> None:
    handler, seen = sequence(httpx.ConnectError("refused"), httpx.Response(200, json={"ok": True}))
    result = asyncio.run(mock(handler).run(one(Request("POST", "/sessions", json={}))))
    assert result.body == {"ok": True} and len(seen) == 2


def test_async_broken_connection_after_sending_is_not_retried_for_post() -> None:
    handler, seen = sequence(httpx.RemoteProtocolError("reset"), httpx.Response(200))
    with pytest.raises(FlinkConnectionError) as info:
        asyncio.run(mock(handler).run(one(Request("POST", "/jars/x/run", json={}))))
    assert info.value.request_sent and len(seen) == 1


def test_async_real_refused_connection(closed_port: int) -> None:
    transport = AsyncTransport(config(base_url=f"http://127.0.0.1:{closed_port}"))
    with pytest.raises(FlinkConnectionError) as info:
        asyncio.run(transport.run(one(Request("GET", "/overview"))))
    assert not info.value.request_sent


def test_async_error_is_thrown_into_the_exchange_and_accept_works() -> None:
    handler, _ = sequence(httpx.Response(404, json={"errors": ["Job j not found"]}))
    assert asyncio.run(mock(handler).run(caught(Request("GET", "/jobs/j")))) == "caught FlinkNotFoundError"
    result = asyncio.run(mock(handler).run(one(Request("GET", "/jobs/j", accept=frozenset({404})))))
    assert result.status == 404


def test_async_auth_params_sleep_and_upload(tmp_path: Path) -> None:
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK-async")
    handler, seen = sequence(httpx.Response(200, json={"filename": "/x/abc_job.jar"}))

    def steps() -> Exchange[float]:
        yield Request("PATCH", "/jobs/j", params={"mode": "cancel"})
        started = time.monotonic()
        yield Sleep(0.05)
        waited = time.monotonic() - started
        yield Request("POST", "/jars/upload", upload=str(jar))
        return waited

    waited = asyncio.run(mock(handler, auth=BasicAuth("ann", "pw")).run(steps()))
    assert waited >= 0.05
    assert str(seen[0].url) == f"{BASE}/jobs/j?mode=cancel"
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"ann:pw").decode()
    body = seen[1].read()
    assert b'name="jarfile"; filename="job.jar"' in body and b"PK-async" in body


def test_async_bearer_header() -> None:
    handler, seen = sequence(httpx.Response(200, json={}))
    asyncio.run(mock(handler, auth=BearerAuth("tok")).run(one(Request("GET", "/overview"))))
    assert seen[0].headers["Authorization"] == "Bearer tok"


# --- configuration ----------------------------------------------------------------------------------


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        TransportConfig(base_url="flink:8081")
    for timeout in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            TransportConfig(base_url=BASE, timeout=timeout)
    for budget in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="outage_budget must be a finite number"):
            TransportConfig(base_url=BASE, outage_budget=budget)
    assert TransportConfig(base_url=BASE).outage_budget == 60.0
    assert TransportConfig(base_url=BASE, outage_budget=0).outage_budget == 0


# --- Retry-After, HTML error pages, a wait's deadline, the async client ----------------------------------


@responses.activate
def test_sync_retry_after_is_honoured_and_capped(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/overview", status=429, headers={"Retry-After": "0.2"})
    responses.get(f"{BASE}/overview", status=503, headers={"Retry-After": "3600"})
    responses.get(f"{BASE}/overview", json={}, status=200)
    policy = RetryPolicy(attempts=3, initial=0, maximum=0.3, jitter=0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        SyncTransport(config(retry=policy)).run(one(Request("GET", "/overview")))
    waits = [record.args[5] for record in retry_warnings(caplog)]  # type: ignore[index]
    assert waits == [0.2, 0.3]  # as asked, then capped at RetryPolicy.maximum
    assert all("(Retry-After)" in record.getMessage() for record in retry_warnings(caplog))
    assert 0.5 <= time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("nan", None), ("", None)],
)
def test_retry_after_values(header: str, expected: float | None) -> None:
    from airflow_flink_provider.hooks.transport import _retry_after

    assert _retry_after(header) == expected


def test_retry_after_as_an_http_date() -> None:
    from email.utils import format_datetime

    from airflow_flink_provider.hooks.transport import _retry_after

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (_retry_after(when) or 0) <= 30


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)


@responses.activate
def test_sync_html_error_page_is_short_and_readable() -> None:
    big = "<!DOCTYPE html><html><head><title>Service &amp; maintenance</title><style>p{}</style></head><body>"
    big += "<p>" + "We are down for maintenance. " * 500 + "</p></body></html>"
    responses.get(f"{BASE}/a", body=NGINX_502, status=502, content_type="text/html")
    responses.get(f"{BASE}/b", body=big, status=500, content_type="text/html; charset=utf-8")
    transport = SyncTransport(config(retry=RetryPolicy(attempts=1)))
    with pytest.raises(FlinkError) as info:
        transport.run(one(Request("GET", "/a")))
    assert str(info.value) == "502 Bad Gateway nginx/1.25.3 (HTTP 502)"
    with pytest.raises(FlinkError) as info:
        transport.run(one(Request("GET", "/b")))
    assert info.value.message.startswith("Service & maintenance: We are down for maintenance.")
    assert len(info.value.message) <= 200 and "<" not in info.value.message and info.value.status == 500


def test_async_html_and_empty_error_bodies() -> None:
    handler, _ = sequence(httpx.Response(504, html=NGINX_502.replace("502 Bad Gateway", "504 Gateway Time-out")))
    with pytest.raises(FlinkError) as info:
        asyncio.run(mock(handler, retry=RetryPolicy(attempts=1)).run(one(Request("GET", "/jobs/overview"))))
    assert str(info.value) == "504 Gateway Time-out nginx/1.25.3 (HTTP 504)"
    handler, _ = sequence(httpx.Response(503))
    with pytest.raises(FlinkError) as info:
        asyncio.run(mock(handler, retry=RetryPolicy(attempts=1)).run(one(Request("GET", "/jobs/overview"))))
    assert str(info.value) == "Service Unavailable (HTTP 503)"


@responses.activate
def test_a_retry_bound_stops_retries_before_it_passes(caplog: pytest.LogCaptureFixture) -> None:
    responses.get(f"{BASE}/overview", json=SERVER_BUSY, status=503)
    policy = RetryPolicy(attempts=50, initial=0.2, maximum=0.2, jitter=0)
    started = time.monotonic()
    with pytest.raises(FlinkError) as info:
        SyncTransport(config(retry=policy)).run(one(Request("GET", "/overview", retry_for=1.0)))
    assert info.value.status == 503
    assert time.monotonic() - started < 1.0
    assert 3 <= len(responses.calls) <= 6


def test_past_its_retry_bound_a_request_gets_its_first_try_but_no_retry() -> None:
    handler, seen = sequence(httpx.Response(503, json=SERVER_BUSY), httpx.Response(200, json={}))
    with pytest.raises(FlinkError) as info:
        asyncio.run(mock(handler).run(one(Request("GET", "/overview", retry_for=0))))
    assert info.value.status == 503 and len(seen) == 1
    handler, seen = sequence(httpx.Response(200, json={"ok": True}))
    assert asyncio.run(mock(handler).run(one(Request("GET", "/overview", retry_for=0)))).body == {"ok": True}


def test_retry_within_bounds_every_request_of_an_exchange_and_passes_errors_in() -> None:
    now = [100.0]

    def two_reads() -> Exchange[str]:
        first = yield Request("GET", "/a")
        now[0] += 4  # the first read took 4 s on the wait's clock
        try:
            yield Request("GET", "/b")
        except FlinkError as error:
            return f"{first.body if first else None}, then {error.message}"
        return "no error"

    wrapped = retry_within(two_reads(), until=110.0, clock=lambda: now[0])
    first = next(wrapped)
    assert isinstance(first, Request) and first.retry_for == 10.0
    second = wrapped.send(Response(200, {"n": 1}, ""))
    assert isinstance(second, Request) and second.retry_for == 6.0
    with pytest.raises(StopIteration) as done:
        wrapped.throw(FlinkError("gone", status=503))
    assert done.value.value == "{'n': 1}, then gone"
    unbounded = retry_within(two_reads(), until=None, clock=lambda: now[0])
    assert next(unbounded).retry_for is None  # type: ignore[union-attr]


def test_async_transport_keeps_one_client_and_closes_it() -> None:
    made: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    handler, seen = sequence(httpx.Response(200, json={"jobs": []}))
    transport = mock(handler)

    async def polls() -> None:
        for _ in range(5):
            await transport.run(one(Request("GET", "/jobs/overview")))
        assert transport.is_open
        await transport.aclose()
        assert not transport.is_open
        async with transport:  # usable again after aclose, and closed by the block
            await transport.run(one(Request("GET", "/jobs/overview")))
        assert not transport.is_open

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.AsyncClient, "__init__", counting_init)
        asyncio.run(polls())
    assert len(seen) == 6 and len(made) == 2
    assert all(client.is_closed for client in made)


def test_async_transport_used_from_a_new_event_loop_makes_a_new_client() -> None:
    handler, seen = sequence(httpx.Response(200, json={}))
    transport = mock(handler)
    asyncio.run(transport.run(one(Request("GET", "/overview"))))
    asyncio.run(transport.run(one(Request("GET", "/overview"))))
    assert len(seen) == 2


def test_config_rejects_an_empty_ca_path() -> None:
    with pytest.raises(ValueError, match="empty string"):
        TransportConfig(base_url=BASE, verify=" ")
