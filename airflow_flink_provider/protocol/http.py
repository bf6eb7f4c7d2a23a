"""Plain values exchanged between the protocol core and a transport, and the one retry policy.

Nothing here performs I/O. An *exchange* is a generator that yields :class:`Request` (answered with a
:class:`Response`) or :class:`Sleep` (answered with ``None``) and finally returns its result. A transport
(``hooks/transport.py``) drives it to the end.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import quote

T = TypeVar("T")

ParamValue = str | int | float | bool

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Request:
    """One HTTP request an exchange needs.

    :param method: HTTP verb (``GET``, ``POST``, ``PATCH``, ``DELETE``...).
    :param path: path relative to the service base URL, e.g. ``/jobs/overview``.
    :param params: query parameters.
    :param json: JSON body, sent when not ``None``.
    :param upload: local file path sent as the multipart field ``jarfile`` (jar upload only).
    :param accept: non-2xx statuses handed back to the exchange instead of raised (e.g. ``{404}``).
    :param timeout: per-request timeout in seconds overriding the transport default.
    :param idempotent: whether sending the request twice does no harm. A request that is not is retried
        only when it surely never reached the server (connection refused, connect timeout), never after
        a read timeout or a 5xx. Defaults to ``True`` for GET/HEAD/OPTIONS/PUT/DELETE, ``False`` otherwise.
    :param retry_for: seconds, from when the transport takes the request, after which no retry starts
        (a wait's deadline, or the end of its outage budget; see :func:`retry_within`). The first try
        always runs with its whole timeout; ``None``: the retry policy alone decides.
    """

    method: str
    path: str
    params: Mapping[str, ParamValue] | None = None
    json: Any = None
    upload: str | None = None
    accept: frozenset[int] = field(default_factory=frozenset)
    timeout: float | None = None
    idempotent: bool | None = None
    retry_for: float | None = None

    @property
    def safe_to_repeat(self) -> bool:
        """Whether a failure after the request may have reached the server can be retried."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _IDEMPOTENT_METHODS


@dataclass(frozen=True)
class Response:
    """What the server answered.

    :param status: HTTP status code.
    :param body: parsed JSON body, or ``None`` when the body is not JSON.
    :param text: the raw body as text.
    """

    status: int
    body: Any
    text: str

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Sleep:
    """Ask the transport to wait before the exchange goes on (between polls).

    :param seconds: how long to wait.
    """

    seconds: float


Exchange = Generator[Request | Sleep, Response | None, T]
"""A protocol operation: yields requests/sleeps, receives responses, returns ``T``."""


def retry_within(exchange: Exchange[T], until: float | None, clock: Callable[[], float]) -> Exchange[T]:
    """Run ``exchange``, letting no retry of its requests start after ``until``.

    Each request it yields gets ``retry_for`` = what is left until ``until`` (its first try still runs), so a
    wait's poll cannot be retried past the wait's deadline or its outage budget. Errors a transport throws
    in are passed on to ``exchange``.

    :param exchange: e.g. ``rest.get_job_overview(job_id)``.
    :param until: the bound on ``clock``, or ``None`` for none.
    :param clock: the clock ``until`` is on (the wait's).
    """
    if until is None:
        return (yield from exchange)
    try:
        step = next(exchange)
        while True:
            if isinstance(step, Request):
                step = replace(step, retry_for=max(0.0, until - clock()))
            try:
                answer = yield step
            except GeneratorExit:
                exchange.close()
                raise
            except BaseException as error:  # thrown in by the transport: the exchange may catch it
                step = exchange.throw(error)
            else:
                step = exchange.send(answer)
    except StopIteration as stop:
        return stop.value


RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth another try: request timeout, rate limiting and server-side failures."""


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status may succeed on a later try (408, 429, and 5xx except 501/505).

    :param status: HTTP status code.
    """
    return status in RETRYABLE_STATUSES or (500 <= status < 600 and status not in (501, 505))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, shared by both transports.

    :param attempts: total tries of one request, the first included (1 disables retries).
    :param initial: wait before the second try, in seconds; doubles with each try.
    :param maximum: cap on one wait, in seconds.
    :param jitter: up to this many seconds of random extra wait, added to each wait.
    """

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be >= 1, got {self.attempts}")
        if self.initial < 0 or self.maximum < 0 or self.jitter < 0:
            raise ValueError("retry waits must not be negative")


def join_url(base_url: str, path: str) -> str:
    """Join a service base URL (which may carry a path prefix) and a request path.

    :param base_url: e.g. ``http://host:8081`` or ``https://proxy/flink/``.
    :param path: e.g. ``/jobs/overview`` or ``jobs/overview``.
    """
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def path_segment(value: str) -> str:
    """Quote a value used as one path segment (ids, handles), so it cannot alter the path.

    :param value: the raw segment.
    """
    return quote(str(value), safe="")
