"""The provider's only I/O: drive protocol exchanges over HTTP, with timeouts and retries.

:class:`SyncTransport` (``requests`` + ``tenacity``) serves hooks in workers; :class:`AsyncTransport`
(``httpx`` + ``tenacity``) serves triggers in the triggerer. Both follow the same policy: connection errors,
request timeouts, 429 and 5xx are retried with exponential backoff and jitter (a request that is not
idempotent only when it surely did not reach Flink, or got a 429); other 4xx never. A failed answer that is
not retried becomes a typed :class:`~airflow_flink_provider.protocol.errors.FlinkError`, thrown into the
exchange (which may catch it) unless the request listed the status in ``Request.accept``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import requests
import urllib3.exceptions
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
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

    def headers(self) -> dict[str, str]:
        """Headers every request carries (bearer auth; basic auth is passed to the client)."""
        headers = {"Accept": "application/json"}
        if isinstance(self.auth, BearerAuth):
            headers["Authorization"] = f"Bearer {self.auth.token}"
        return headers


def _should_retry(request: Request, error: BaseException) -> bool:
    """Whether a failed try of ``request`` may be repeated."""
    if not isinstance(error, FlinkError) or not error.retryable:
        return False
    if request.safe_to_repeat or error.status == 429:
        return True
    return isinstance(error, FlinkConnectionError) and not error.request_sent


def _log_retry(request: Request, policy: RetryPolicy) -> Any:
    """A tenacity ``before_sleep`` hook that logs each retry at WARNING."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "Flink request %s %s failed (%s); try %d of %d in %.1fs",
            request.method,
            request.path,
            error.message if isinstance(error, FlinkError) else error,
            state.attempt_number + 1,
            policy.attempts,
            wait,
        )

    return before_sleep


def _retry_options(request: Request, policy: RetryPolicy) -> dict[str, Any]:
    return {
        "stop": stop_after_attempt(policy.attempts),
        "wait": wait_exponential(multiplier=policy.initial, max=policy.maximum) + wait_random(0, policy.jitter),
        "retry": retry_if_exception(lambda error: _should_retry(request, error)),
        "before_sleep": _log_retry(request, policy),
        "reraise": True,
    }


def _parse_body(text: str, content_type: str) -> Any:
    """Parse a JSON body; ``None`` when the body is empty or not JSON."""
    stripped = text.lstrip()
    if not stripped or ("json" not in content_type and stripped[0] not in "{["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _finish(request: Request, response: Response, url: str, elapsed: float) -> Response:
    """Log an answer and raise the typed error for a failed one that the exchange did not accept."""
    log.debug("Flink answered %s %s: HTTP %d in %.3fs", request.method, url, response.status, elapsed)
    if response.ok or response.status in request.accept:
        return response
    raise error_from_response(response.status, response.body if response.body is not None else response.text)


def _params(request: Request) -> dict[str, str] | None:
    """Query parameters as strings (booleans the way Flink reads them)."""
    if not request.params:
        return None
    return {key: _param_text(value) for key, value in request.params.items() if value is not None}


def _param_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class SyncTransport:
    """Run exchanges with ``requests`` (one pooled session per transport).

    :param config: endpoint, auth, TLS, timeout and retries.
    :param session: a session to use instead of a new one (tests).
    """

    def __init__(self, config: TransportConfig, *, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()
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
        try:
            step = next(exchange)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    step = exchange.send(None)
                    continue
                try:
                    response = self.send(step)
                except FlinkError as error:
                    step = exchange.throw(error)
                else:
                    step = exchange.send(response)
        except StopIteration as stop:
            return stop.value

    def send(self, request: Request) -> Response:
        """Send one request, retrying per the policy; raise a typed error for a failure.

        :param request: what to send.
        """
        for attempt in Retrying(**_retry_options(request, self.config.retry)):
            with attempt:
                return self._send_once(request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _send_once(self, request: Request) -> Response:
        url = join_url(self.config.base_url, request.path)
        log.debug("Flink request %s %s params=%s", request.method, url, request.params or {})
        started = time.monotonic()
        try:
            if request.upload is not None:
                with open(request.upload, "rb") as jar:
                    files = {"jarfile": (os.path.basename(request.upload), jar, _JAR_CONTENT_TYPE)}
                    raw = self._request(request, url, files=files)
            else:
                raw = self._request(request, url, json=request.json)
        except requests.exceptions.ConnectTimeout as exc:
            raise FlinkConnectionError(f"Timed out connecting to Flink at {url}", request_sent=False) from exc
        except requests.exceptions.Timeout as exc:
            raise FlinkTimeoutError(
                f"Flink did not answer {request.method} {url} within {self._timeout(request)}s",
                transient=True,
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise FlinkConnectionError(
                f"Could not reach Flink at {url}: {type(exc).__name__}", request_sent=not _never_sent(exc)
            ) from exc
        response = Response(raw.status_code, _parse_body(raw.text, raw.headers.get("Content-Type", "")), raw.text)
        return _finish(request, response, url, time.monotonic() - started)

    def _request(self, request: Request, url: str, **kwargs: Any) -> requests.Response:
        return self._session.request(
            request.method, url, params=_params(request), timeout=self._timeout(request), **kwargs
        )

    def _timeout(self, request: Request) -> float:
        return request.timeout or self.config.timeout

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """Whether ``requests`` failed before the request could reach the server."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _ssl_context(config: TransportConfig) -> ssl.SSLContext | bool:
    """The ``verify`` value for httpx: a context for a CA bundle or client cert, else a bool."""
    if isinstance(config.verify, bool) and config.cert is None:
        return config.verify
    context = ssl.create_default_context(cafile=config.verify if isinstance(config.verify, str) else None)
    if config.verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if isinstance(config.cert, str):
        context.load_cert_chain(config.cert)
    elif config.cert is not None:
        context.load_cert_chain(*config.cert)
    return context


class AsyncTransport:
    """Run exchanges with ``httpx.AsyncClient`` (a client per :meth:`run`, closed at its end).

    :param config: endpoint, auth, TLS, timeout and retries.
    :param transport: an httpx transport to use instead of the network (tests: ``httpx.MockTransport``).
    """

    def __init__(self, config: TransportConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport

    def _client(self) -> httpx.AsyncClient:
        auth = None
        if isinstance(self.config.auth, BasicAuth):
            auth = httpx.BasicAuth(self.config.auth.username, self.config.auth.password)
        return httpx.AsyncClient(
            headers=self.config.headers(),
            auth=auth,
            verify=_ssl_context(self.config),
            timeout=self.config.timeout,
            transport=self._transport,
        )

    async def run(self, exchange: Exchange[T]) -> T:
        """Drive an exchange to its end and return its result.

        :param exchange: the protocol operation.
        """
        async with self._client() as client:
            try:
                step = next(exchange)
                while True:
                    if isinstance(step, Sleep):
                        await asyncio.sleep(step.seconds)
                        step = exchange.send(None)
                        continue
                    try:
                        response = await self._send(client, step)
                    except FlinkError as error:
                        step = exchange.throw(error)
                    else:
                        step = exchange.send(response)
            except StopIteration as stop:
                return stop.value

    async def _send(self, client: httpx.AsyncClient, request: Request) -> Response:
        async for attempt in AsyncRetrying(**_retry_options(request, self.config.retry)):
            with attempt:
                return await self._send_once(client, request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _send_once(self, client: httpx.AsyncClient, request: Request) -> Response:
        url = join_url(self.config.base_url, request.path)
        log.debug("Flink request %s %s params=%s", request.method, url, request.params or {})
        timeout = request.timeout or self.config.timeout
        kwargs: dict[str, Any] = {"params": _params(request), "timeout": timeout}
        if request.upload is not None:
            name = os.path.basename(request.upload)
            kwargs["files"] = {"jarfile": (name, Path(request.upload).read_bytes(), _JAR_CONTENT_TYPE)}
        elif request.json is not None:
            kwargs["json"] = request.json
        started = time.monotonic()
        try:
            raw = await client.request(request.method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise FlinkConnectionError(
                f"Could not reach Flink at {url}: {type(exc).__name__}", request_sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise FlinkTimeoutError(
                f"Flink did not answer {request.method} {url} within {timeout}s", transient=True
            ) from exc
        except httpx.TransportError as exc:
            raise FlinkConnectionError(f"Could not reach Flink at {url}: {type(exc).__name__}") from exc
        response = Response(raw.status_code, _parse_body(raw.text, raw.headers.get("Content-Type", "")), raw.text)
        return _finish(request, response, url, time.monotonic() - started)

