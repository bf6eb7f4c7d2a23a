"""The provider's only I/O: drive protocol exchanges over HTTP, with timeouts and retries.

:class:`SyncTransport` (``requests`` + ``tenacity``) serves hooks in workers; :class:`AsyncTransport`
(``httpx`` + ``tenacity``) serves triggers in the triggerer. Both follow the same policy:

* Connection errors, request timeouts, 429 and 5xx are retried with exponential backoff and jitter (a request
  that is not idempotent only when it surely did not reach Flink, or got a 429); other 4xx never. A
  ``Retry-After`` header is honoured, capped at ``RetryPolicy.maximum``.
* Each try has a *total* time limit (``TransportConfig.timeout`` or ``Request.timeout``): a server that
  trickles its answer byte by byte cannot keep a request alive past it (a plain ``requests`` or ``httpx``
  timeout only limits each socket read).
* A request with ``retry_for`` (a wait's deadline, or the end of its outage budget, see
  :func:`~airflow_flink_provider.protocol.http.retry_within`) is retried only within that many seconds: the
  first try always runs with its whole timeout, but no retry (nor the wait before it) runs past the bound.
* A failed answer that is not retried becomes a typed :class:`~airflow_flink_provider.protocol.errors.FlinkError`,
  thrown into the exchange (which may catch it) unless the request listed the status in ``Request.accept``.
  An HTML error page (from a proxy or load balancer) is shortened to its title and text.

Both keep their connections alive between requests: the sync transport in a pooled ``requests`` session, the
async one in one ``httpx.AsyncClient`` per transport (and event loop), closed by :meth:`AsyncTransport.aclose`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import html
import http.client
import io
import json
import logging
import math
import os
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.poolmanager
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkTimeoutError,
    error_from_response,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response, RetryPolicy, Sleep, join_url

T = TypeVar("T")

log = logging.getLogger(__name__)

_JAR_CONTENT_TYPE = "application/x-java-archive"


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic authentication.

    :param username: user name.
    :param password: password (never shown in repr or logs).
    """

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer <token>`` authentication.

    :param token: the token (never shown in repr or logs).
    """

    token: str = field(repr=False)


@dataclass(frozen=True)
class TransportConfig:
    """Where and how to talk to one Flink endpoint.

    :param base_url: e.g. ``http://127.0.0.1:8081`` (may carry a path prefix).
    :param auth: basic or bearer authentication, or ``None``.
    :param verify: verify TLS certificates (``True``/``False``) or the path of a CA bundle.
    :param cert: client certificate: a PEM path holding cert and key, or ``(cert_path, key_path)``.
    :param timeout: seconds one request may take in all (connect, send, answer); also the limit of each
        socket operation.
    :param retry: retry attempts and backoff.
    :param outage_budget: seconds a wait (job-state sensor, trigger, the operators' waits) rides out an
        outage of the API (refused connections, timeouts, 429 and 5xx answers) before it fails.
    """

    base_url: str
    auth: BasicAuth | BearerAuth | None = None
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    outage_budget: float = 60.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not 0 < self.timeout < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout}")
        if not 0 <= self.outage_budget < math.inf:
            raise ValueError(f"outage_budget must be a finite number of seconds >= 0, got {self.outage_budget}")
        if isinstance(self.verify, str) and not self.verify.strip():
            raise ValueError("verify must be True, False or the path of a CA bundle, got an empty string")

    def headers(self) -> dict[str, str]:
        """Headers every request carries (bearer auth; basic auth is passed to the client)."""
        headers = {"Accept": "application/json"}
        if isinstance(self.auth, BearerAuth):
            headers["Authorization"] = f"Bearer {self.auth.token}"
        return headers


_SHORTEST_TRY = 0.1
"""Seconds a retry gets at least, when a deadline is close."""
_TRY_DEADLINE: ContextVar[float | None] = ContextVar("flink_try_deadline", default=None)


def _should_retry(request: Request, error: BaseException) -> bool:
    """Whether a failed try of ``request`` may be repeated."""
    if not isinstance(error, FlinkError) or not error.retryable:
        return False
    if request.safe_to_repeat or error.status == 429:
        return True
    return isinstance(error, FlinkConnectionError) and not error.request_sent


class _Tries:
    """The tries of one request: when to stop, how long to wait between tries, how long each may take.

    :param request: the request.
    :param config: the transport's settings.
    """

    def __init__(self, request: Request, config: TransportConfig) -> None:
        self.request = request
        self.policy = config.retry
        self.url = join_url(config.base_url, request.path)
        self.timeout = request.timeout or config.timeout
        self.deadline = None if request.retry_for is None else time.monotonic() + request.retry_for
        self.retry_after: float | None = None
        self.tries = 0
        self._asked = False
        self._backoff = wait_exponential(multiplier=self.policy.initial, max=self.policy.maximum) + wait_random(
            0, self.policy.jitter
        )

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``Retrying``/``AsyncRetrying``."""
        return {
            "stop": self._stop,
            "wait": self._wait,
            "retry": retry_if_exception(lambda error: _should_retry(self.request, error)),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def try_timeout(self) -> float:
        """Seconds the next try may take in all: the timeout; for a retry, no more than what is left of the
        request's ``retry_for`` (the retry policy starts none that could not begin before it)."""
        self.tries += 1
        if self.deadline is None or self.tries == 1:
            return self.timeout
        return min(self.timeout, max(self.deadline - time.monotonic(), _SHORTEST_TRY))

    def timed_out(self, timeout: float) -> FlinkTimeoutError:
        """The error of a try that took ``timeout`` seconds without a complete answer."""
        return FlinkTimeoutError(
            f"Flink did not answer {self.request.method} {self.url} within {timeout:.3g}s", transient=True
        )

    def unreachable(self, exc: BaseException, *, request_sent: bool = True) -> FlinkConnectionError:
        """The error of a try that could not reach Flink (or lost the connection)."""
        return FlinkConnectionError(
            f"Could not reach Flink at {self.url}: {type(exc).__name__}", request_sent=request_sent
        )

    def answer(self, status: int, text: str, headers: Mapping[str, str], reason: str, started: float) -> Response:
        """Turn an answer into a :class:`Response`, or raise the typed error of a failed one.

        :param status: HTTP status.
        :param text: the body as text.
        :param headers: the answer's headers.
        :param reason: the HTTP reason phrase.
        :param started: when the try began (``time.monotonic``).
        """
        content_type = headers.get("Content-Type", "")
        response = Response(status, _parse_body(text, content_type), text)
        log.debug(
            "Flink answered %s %s: HTTP %d in %.3fs", self.request.method, self.url, status, time.monotonic() - started
        )
        if response.ok or status in self.request.accept:
            return response
        self.retry_after = _retry_after(headers.get("Retry-After"))
        body = response.body if response.body is not None else _readable(text, content_type, reason)
        raise error_from_response(status, body)

    def _wait(self, state: RetryCallState) -> float:
        asked, self.retry_after = self.retry_after, None
        self._asked = asked is not None
        if asked is not None:
            return min(asked, self.policy.maximum)
        return float(self._backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        """Stop after the policy's attempts, or when the next try could not start before the deadline."""
        if state.attempt_number >= self.policy.attempts:
            return True
        return self.deadline is not None and time.monotonic() + state.upcoming_sleep >= self.deadline

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Flink request %s %s failed (%s); try %d of %d in %.1fs%s",
            self.request.method,
            self.request.path,
            error.message if isinstance(error, FlinkError) else error,
            state.attempt_number + 1,
            self.policy.attempts,
            wait,
            " (Retry-After)" if self._asked else "",
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delay-seconds or an HTTP date); ``None`` if absent or bad."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _parse_body(text: str, content_type: str) -> Any:
    """Parse a JSON body; ``None`` when the body is empty or not JSON."""
    stripped = text.lstrip()
    if not stripped or ("json" not in content_type and stripped[0] not in "{["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


_HTML_SCAN = 65536
_HTML_TEXT = 200
_PLAIN_TEXT = 2000
_HTML_NOISE = re.compile(r"<(head|script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def _readable(text: str, content_type: str, reason: str) -> str:
    """A non-JSON error body as a short text: an HTML page (a proxy's error page) as its title and words.

    :param text: the body.
    :param content_type: its ``Content-Type``.
    :param reason: the HTTP reason phrase, used for an empty body.
    """
    stripped = text.strip()
    if not stripped:
        return reason
    if "html" not in content_type.lower() and not stripped[:15].lower().startswith(("<!doctype html", "<html")):
        return _shorten(stripped, _PLAIN_TEXT)
    page = stripped[:_HTML_SCAN]
    title_match = _HTML_TITLE.search(page)
    title = " ".join(html.unescape(title_match.group(1)).split()) if title_match else ""
    words = " ".join(html.unescape(_HTML_TAG.sub(" ", _HTML_NOISE.sub(" ", page))).split())
    if title and not words.startswith(title):
        words = f"{title}: {words}" if words else title
    return _shorten(words or reason, _HTML_TEXT)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _params(request: Request) -> dict[str, str] | None:
    """Query parameters as strings (booleans the way Flink reads them)."""
    if not request.params:
        return None
    return {key: _param_text(value) for key, value in request.params.items() if value is not None}


def _param_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# --- sync: requests, with a total time limit per try ------------------------------------------------


class _DeadlineReader(io.RawIOBase):
    """Reads an answer from its socket, each read limited to what is left of the try's total time.

    :param raw: the socket's reader (``socket.SocketIO``; keeps the socket open while the answer is read).
    :param sock: the socket.
    :param until: the try's deadline (``time.monotonic``).
    """

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, until: float) -> None:
        super().__init__()
        self._raw, self._sock, self._until = raw, sock, until
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._until - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's total time is up")
        self._sock.settimeout(left if self._read_timeout is None else min(self._read_timeout, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """``http.client`` response that reads its status line, headers and body by the try's deadline."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        until = _TRY_DEADLINE.get()
        if until is not None:
            self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, until))


class _HTTPConnection(urllib3.connection.HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose connections read answers by the try's total deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.poolmanager.PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.poolmanager.ProxyManager):  # not SOCKS, whose pools are its own
            manager.pool_classes_by_scheme = _POOLS
        return manager

    def close(self) -> None:
        """Close every pooled connection now (urllib3 2 leaves a cleared pool's connections to the GC)."""
        for manager in (self.poolmanager, *self.proxy_manager.values()):
            for key in manager.pools.keys():  # noqa: SIM118 (the container refuses iteration)
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        super().close()


class SyncTransport:
    """Run exchanges with ``requests`` (one pooled session per transport).

    :param config: endpoint, auth, TLS, timeout and retries.
    :param session: a session to use instead of a new one (tests).
    """

    def __init__(self, config: TransportConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()
        for prefix in ("http://", "https://"):
            self._session.mount(prefix, _DeadlineAdapter())
        self._session.headers.update(config.headers())
        if isinstance(config.auth, BasicAuth):
            self._session.auth = (config.auth.username, config.auth.password)
        self._session.verify = config.verify
        if config.cert is not None:
            self._session.cert = config.cert

    def run(self, exchange: Exchange[T]) -> T:
        """Drive an exchange to its end and return its result.

        :param exchange: the protocol operation.
        """
        return drive_sync(exchange, self.send)

    def send(self, request: Request) -> Response:
        """Send one request, retrying per the policy; raise a typed error for a failure.

        :param request: what to send.
        """
        tries = _Tries(request, self.config)
        for attempt in Retrying(**tries.options()):
            with attempt:
                return self._send_once(request, tries)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _send_once(self, request: Request, tries: _Tries) -> Response:
        timeout = tries.try_timeout()
        log.debug("Flink request %s %s params=%s", request.method, tries.url, request.params or {})
        started = time.monotonic()
        token = _TRY_DEADLINE.set(started + timeout)
        try:
            if request.upload is not None:
                with open(request.upload, "rb") as jar:
                    files = {"jarfile": (os.path.basename(request.upload), jar, _JAR_CONTENT_TYPE)}
                    raw = self._request(request, tries.url, timeout, files=files)
            else:
                raw = self._request(request, tries.url, timeout, json=request.json)
        except requests.exceptions.ConnectTimeout as exc:
            raise tries.unreachable(exc, request_sent=False) from exc
        except requests.exceptions.Timeout as exc:
            raise tries.timed_out(timeout) from exc
        except requests.exceptions.RequestException as exc:
            if _read_timed_out(exc):
                raise tries.timed_out(timeout) from exc
            raise tries.unreachable(exc, request_sent=not _never_sent(exc)) from exc
        finally:
            _TRY_DEADLINE.reset(token)
        return tries.answer(raw.status_code, raw.text, raw.headers, raw.reason or "", started)

    def _request(self, request: Request, url: str, timeout: float, **kwargs: Any) -> requests.Response:
        return self._session.request(request.method, url, params=_params(request), timeout=timeout, **kwargs)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """Whether ``requests`` failed before the request could reach the server."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _read_timed_out(exc: requests.exceptions.RequestException) -> bool:
    """Whether the body of an answer timed out (``requests`` reports that as a connection error)."""
    return bool(exc.args) and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError)


# --- async: httpx, one client per transport ---------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _ssl_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
    """The TLS context of a ``verify``/``cert`` setting, made once per process and shared by every client.

    Loading a CA bundle takes ~14 ms (it was ~75 % of an exchange's cost when each made its own client), so
    a setting's context is built at its first use only, also for plain ``http://`` (httpx asks for one).

    :param verify: ``True`` (the default CA bundle), ``False`` or the path of a CA bundle.
    :param cert: a client certificate: a PEM path holding cert and key, or ``(cert_path, key_path)``.
    """
    context = (
        httpx.create_ssl_context(verify=True)
        if verify is True
        else ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    )
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if isinstance(cert, str):
        context.load_cert_chain(cert)
    elif cert is not None:
        context.load_cert_chain(*cert)
    return context


def _advance(exchange: Exchange[T], outcome: Response | FlinkError | None) -> Request | Sleep:
    """Hand an exchange the outcome of its last step: a response (``None`` after a sleep), or an error thrown in.

    :param exchange: the protocol operation.
    :param outcome: what its last request or sleep came to.
    """
    return exchange.throw(outcome) if isinstance(outcome, FlinkError) else exchange.send(outcome)


def drive_sync(
    exchange: Exchange[T],
    send: Callable[[Request], Response],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Drive an exchange to its end with the given ``send`` and ``sleep``: the one sync exchange loop.

    As :func:`drive`: a :class:`~airflow_flink_provider.protocol.errors.FlinkError` raised by ``send`` or
    ``sleep`` is thrown into the exchange (which may catch it); any other error ends it.

    :param exchange: the protocol operation.
    :param send: sends one request, blocking until its answer (retries included).
    :param sleep: blocks between polls.
    """
    try:
        step = next(exchange)
        while True:
            step = _advance(exchange, _attempt(step, send, sleep))
    except StopIteration as stop:
        return stop.value


def _attempt(
    step: Request | Sleep, send: Callable[[Request], Response], sleep: Callable[[float], None]
) -> Response | FlinkError | None:
    """Carry out one step of an exchange: its answer, ``None`` after a sleep, or the Flink error it raised.

    :param step: what the exchange asked for.
    :param send: sends a request.
    :param sleep: waits.
    """
    try:
        if isinstance(step, Sleep):
            sleep(step.seconds)
            return None
        return send(step)
    except FlinkError as error:
        return error


async def drive(
    exchange: Exchange[T],
    send: Callable[[Request], Awaitable[Response]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Drive an exchange to its end with the given ``send`` and ``sleep``: the one async exchange loop.

    A :class:`~airflow_flink_provider.protocol.errors.FlinkError` raised by ``send`` is thrown into the
    exchange (which may catch it); so is any error of ``sleep`` (e.g. a shared poll that failed).

    :param exchange: the protocol operation.
    :param send: sends one request (retries included) and returns its answer.
    :param sleep: waits between polls.
    """
    try:
        step = next(exchange)
        while True:
            try:
                outcome: Response | FlinkError | None = None
                if isinstance(step, Sleep):
                    await sleep(step.seconds)
                else:
                    outcome = await send(step)
            except FlinkError as error:
                outcome = error
            step = _advance(exchange, outcome)
    except StopIteration as stop:
        return stop.value


class AsyncTransport:
    """Run exchanges with one ``httpx.AsyncClient`` (connections kept alive between exchanges).

    The client is made at the first request and bound to that event loop (a transport used from another
    loop makes a new one). Close it with :meth:`aclose`, or use the transport as ``async with``.

    :param config: endpoint, auth, TLS, timeout and retries.
    :param transport: an httpx transport to use instead of the network (tests: ``httpx.MockTransport``).
    """

    def __init__(self, config: TransportConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client_now(self) -> httpx.AsyncClient:
        """The client of the running event loop, made when there is none yet."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._loop is not loop:
            auth = None
            if isinstance(self.config.auth, BasicAuth):
                auth = httpx.BasicAuth(self.config.auth.username, self.config.auth.password)
            self._client = httpx.AsyncClient(
                headers=self.config.headers(),
                auth=auth,
                verify=_ssl_context(self.config.verify, self.config.cert),
                timeout=self.config.timeout,
                transport=self._transport,
            )
            self._loop = loop
        return self._client

    @property
    def is_open(self) -> bool:
        """Whether the transport holds an open client."""
        return self._client is not None and not self._client.is_closed

    async def aclose(self) -> None:
        """Close the client and its connections (the transport makes a new one if used again)."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def run(self, exchange: Exchange[T]) -> T:
        """Drive an exchange to its end and return its result.

        :param exchange: the protocol operation.
        """
        return await drive(exchange, self.send)

    async def send(self, request: Request) -> Response:
        """Send one request on the transport's client, retrying per the policy; raise a typed error.

        :param request: what to send.
        """
        tries = _Tries(request, self.config)
        async for attempt in AsyncRetrying(**tries.options()):
            with attempt:
                return await self._send_once(request, tries)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(self, request: Request, tries: _Tries) -> Response:
        timeout = tries.try_timeout()
        log.debug("Flink request %s %s params=%s", request.method, tries.url, request.params or {})
        kwargs: dict[str, Any] = {"params": _params(request), "timeout": timeout}
        if request.upload is not None:
            name = os.path.basename(request.upload)
            kwargs["files"] = {"jarfile": (name, Path(request.upload).read_bytes(), _JAR_CONTENT_TYPE)}
        elif request.json is not None:
            kwargs["json"] = request.json
        client = self._client_now()
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                raw = await client.request(request.method, tries.url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise tries.unreachable(exc, request_sent=False) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise tries.timed_out(timeout) from exc
        except httpx.TransportError as exc:
            raise tries.unreachable(exc) from exc
        return tries.answer(raw.status_code, raw.text, raw.headers, raw.reason_phrase, started)
