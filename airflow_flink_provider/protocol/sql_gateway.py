"""Exchanges for the Flink SQL Gateway REST API (``:8083``, paths ``/v{N}/sessions/...``).

Every exchange takes the negotiated API version (see :func:`negotiate_version`), e.g. ``"v4"``.

What the gateway really does (Flink 2.1.3):

* ``POST .../statements`` only queues the statement; errors (bad SQL, missing connector...) come from
  fetching its result, as HTTP 500 with the server's stack trace.
* A result is paged through ``nextResultUri``; pages may be ``NOT_READY`` or carry no rows for a while
  before the rows (or ``EOS``) come, so empty pages are polled with growing sleeps.
* ``INSERT`` finishes as soon as the job is submitted: its result is the job id. Closing the operation or the
  session does not stop that job. Closing a *query's* operation (or its session) cancels the query's job.
* Unknown sessions and operations are HTTP 500 (not 404) with ``Session '...' does not exist`` or
  ``Can not find the submitted operation``; they become :class:`FlinkNotFoundError` anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_flink_provider.protocol.errors import FlinkError, FlinkNotFoundError, FlinkTimeoutError
from airflow_flink_provider.protocol.http import Exchange, Request, Response, Sleep, path_segment
from airflow_flink_provider.protocol.statements import executable_text

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("v4", "v3", "v2")
"""API versions this client speaks, best first (v1 lacks ``rowFormat`` and ``configure-session``)."""

RUNNING_STATUSES = frozenset({"INITIALIZED", "PENDING", "RUNNING"})
"""Operation statuses that are not final yet."""

Clock = Callable[[], float]

_FIRST_POLL = 0.05
_MAX_POLL = 1.0
_RETRACTIONS = ("UPDATE_BEFORE", "DELETE")


@dataclass
class StatementResult:
    """The fetched result of one statement.

    ``rows`` is the materialised result: ``INSERT``/``UPDATE_AFTER`` rows are appended, and each
    ``UPDATE_BEFORE``/``DELETE`` row removes an equal earlier row (so a streaming ``GROUP BY`` gives the
    final counts); ``changelog`` counts the row kinds as they came.

    :param columns: column names.
    :param rows: the rows, each a list of JSON values.
    :param job_id: the Flink job the statement started (``INSERT``, queries), if any.
    :param result_kind: ``SUCCESS`` or ``SUCCESS_WITH_CONTENT``.
    :param truncated: ``True`` when the row limit stopped the fetch before the end of the result.
    :param is_query_result: whether the statement was a query.
    :param changelog: how many rows of each kind (``INSERT``, ``UPDATE_BEFORE``...) arrived.
    """

    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    job_id: str | None = None
    result_kind: str = ""
    truncated: bool = False
    is_query_result: bool = False
    changelog: dict[str, int] = field(default_factory=dict)

    def apply(self, kind: str, fields: list[Any]) -> None:
        """Apply one changelog row to :attr:`rows`.

        :param kind: ``INSERT``, ``UPDATE_BEFORE``, ``UPDATE_AFTER`` or ``DELETE``.
        :param fields: the row's values.
        """
        self.changelog[kind] = self.changelog.get(kind, 0) + 1
        if kind in _RETRACTIONS:
            if fields in self.rows:
                self.rows.remove(fields)
        else:
            self.rows.append(fields)

    def as_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` dicts."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]


def _body(response: Response | None) -> Any:
    assert response is not None, "a transport answers every Request with a Response"
    return response.body


def _session_path(version: str, session: str, *rest: str) -> str:
    return "/".join((f"/{version}/sessions", path_segment(session), *rest))


def _operation_path(version: str, session: str, operation: str, *rest: str) -> str:
    return _session_path(version, session, "operations", path_segment(operation), *rest)


def get_api_versions() -> Exchange[list[str]]:
    """``GET /api_versions``: the versions the gateway offers, lower-cased (e.g. ``["v1", ..., "v4"]``)."""
    body = _body((yield Request("GET", "/api_versions")))
    return [str(version).lower() for version in body.get("versions", [])]


def negotiate_version() -> Exchange[str]:
    """The highest API version both the gateway and this client support.

    :raises FlinkError: when they share none.
    """
    offered = yield from get_api_versions()
    for version in SUPPORTED_VERSIONS:
        if version in offered:
            return version
    raise FlinkError(
        f"The SQL Gateway offers API versions {offered}; this provider needs one of {list(SUPPORTED_VERSIONS)}",
        hint="Use a Flink SQL Gateway of Flink 1.17 or newer.",
    )


def get_info(*, version: str) -> Exchange[dict[str, Any]]:
    """``GET /{version}/info``: ``productName`` and ``version`` of Flink.

    :param version: API version.
    """
    return _body((yield Request("GET", f"/{version}/info")))


def open_session(
    properties: Mapping[str, str] | None = None, session_name: str | None = None, *, version: str
) -> Exchange[str]:
    """``POST /{version}/sessions``; returns the session handle.

    :param properties: session configuration (e.g. ``{"execution.runtime-mode": "batch"}``).
    :param session_name: a name shown in the gateway's logs.
    :param version: API version.
    """
    payload: dict[str, Any] = {"properties": {key: str(value) for key, value in (properties or {}).items()}}
    if session_name:
        payload["sessionName"] = session_name
    body = _body((yield Request("POST", f"/{version}/sessions", json=payload, idempotent=True)))
    return str(body["sessionHandle"])


def heartbeat(session: str, *, version: str) -> Exchange[None]:
    """``POST .../heartbeat``: keep an idle session alive.

    :param session: session handle.
    :param version: API version.
    """
    yield Request("POST", _session_path(version, session, "heartbeat"), idempotent=True)


def close_session(session: str, *, version: str) -> Exchange[None]:
    """``DELETE /{version}/sessions/{session}``; a session that is already gone is fine.

    :param session: session handle.
    :param version: API version.
    """
    try:
        yield Request("DELETE", _session_path(version, session), accept=frozenset({404}))
    except FlinkNotFoundError:
        return


def get_session_config(session: str, *, version: str) -> Exchange[dict[str, str]]:
    """``GET /{version}/sessions/{session}``: the session's effective configuration.

    :param session: session handle.
    :param version: API version.
    """
    return dict(_body((yield Request("GET", _session_path(version, session)))).get("properties", {}))


def session_exists(session: str, *, version: str) -> Exchange[bool]:
    """Whether the gateway still knows the session.

    :param session: session handle.
    :param version: API version.
    """
    try:
        yield from get_session_config(session, version=version)
    except FlinkNotFoundError:
        return False
    return True


def configure_session(session: str, statement: str, *, version: str, timeout: float | None = None) -> Exchange[None]:
    """``POST .../configure-session``: run DDL, ``USE``, ``SET``/``RESET``, ``ADD JAR``... synchronously.

    :param session: session handle.
    :param statement: one statement.
    :param version: API version.
    :param timeout: server-side execution timeout in seconds.
    """
    payload: dict[str, Any] = {"statement": statement}
    if timeout is not None:
        payload["executionTimeout"] = int(timeout * 1000)
    yield Request("POST", _session_path(version, session, "configure-session"), json=payload)


def execute_statement(
    session: str,
    statement: str,
    *,
    version: str,
    execution_config: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Exchange[str]:
    """``POST .../statements``: queue one statement; returns the operation handle.

    A ``BEGIN STATEMENT SET; ...; END`` block is sent as the equivalent ``EXECUTE STATEMENT SET BEGIN ...
    END`` (the gateway takes one statement per request).

    :param session: session handle.
    :param statement: one statement (see ``split_statements``).
    :param version: API version.
    :param execution_config: configuration for this statement only.
    :param timeout: server-side execution timeout in seconds.
    """
    payload: dict[str, Any] = {"statement": executable_text(statement)}
    if execution_config:
        payload["executionConfig"] = {key: str(value) for key, value in execution_config.items()}
    if timeout is not None:
        payload["executionTimeout"] = int(timeout * 1000)
    body = _body((yield Request("POST", _session_path(version, session, "statements"), json=payload)))
    return str(body["operationHandle"])


def get_operation_status(session: str, operation: str, *, version: str) -> Exchange[str]:
    """``GET .../operations/{operation}/status``: ``PENDING``, ``RUNNING``, ``FINISHED``, ``ERROR``...

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    """
    return str(_body((yield Request("GET", _operation_path(version, session, operation, "status"))))["status"])


def _result_path(version: str, session: str, operation: str, token: int = 0) -> str:
    return _operation_path(version, session, operation, "result", str(token))


def wait_for_operation(
    session: str,
    operation: str,
    *,
    version: str,
    timeout: float | None = None,
    poll_interval: float = 0.5,
    clock: Clock = time.monotonic,
) -> Exchange[str]:
    """Poll until the operation leaves PENDING/RUNNING; returns the final status.

    On ``ERROR`` the first result page is fetched, which makes the gateway answer with the error's stack
    trace; that becomes the typed error raised here (e.g. :class:`FlinkSqlError` with line and column).

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    :param timeout: seconds to wait in all (``None``: no limit).
    :param poll_interval: longest pause between polls.
    :param clock: monotonic clock (tests).
    :raises FlinkTimeoutError: the operation is still running after ``timeout`` or the gateway timed it out.
    """
    deadline = None if timeout is None else clock() + timeout
    delay = min(_FIRST_POLL, poll_interval)
    while True:
        status = yield from get_operation_status(session, operation, version=version)
        if status == "ERROR":
            yield Request("GET", _result_path(version, session, operation), params={"rowFormat": "JSON"})
            raise FlinkError(f"SQL Gateway operation {operation} failed without an error message")
        if status == "TIMEOUT":
            raise FlinkTimeoutError(f"The SQL Gateway timed out operation {operation} (executionTimeout)")
        if status not in RUNNING_STATUSES:
            return status
        if deadline is not None and clock() >= deadline:
            raise FlinkTimeoutError(f"SQL Gateway operation {operation} still {status} after {timeout}s")
        yield Sleep(delay)
        delay = min(delay * 2, poll_interval)


def fetch_results(
    session: str,
    operation: str,
    *,
    version: str,
    row_limit: int = 1000,
    timeout: float | None = None,
    poll_interval: float = _MAX_POLL,
    clock: Clock = time.monotonic,
) -> Exchange[StatementResult]:
    """Page through an operation's result (``rowFormat=JSON``) until ``EOS`` or ``row_limit`` rows.

    Errors of the statement (bad SQL, missing connector...) are raised here, typed.

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    :param row_limit: stop after this many (materialised) rows and mark the result truncated.
    :param timeout: seconds to wait in all (``None``: no limit; an unbounded query never reaches EOS).
    :param poll_interval: longest pause between polls of an empty page.
    :param clock: monotonic clock (tests).
    :raises FlinkTimeoutError: no EOS and fewer than ``row_limit`` rows after ``timeout``.
    """
    deadline = None if timeout is None else clock() + timeout
    result = StatementResult()
    request = Request("GET", _result_path(version, session, operation), params={"rowFormat": "JSON"})
    delay = _FIRST_POLL
    while True:
        page = _body((yield request))
        _read_page(page, result)
        if page.get("resultType") == "EOS" or not page.get("nextResultUri"):
            return result
        if len(result.rows) >= row_limit:
            result.rows = result.rows[:row_limit]
            result.truncated = True
            return result
        request = Request("GET", str(page["nextResultUri"]))
        has_rows = bool((page.get("results") or {}).get("data"))
        if has_rows:
            delay = _FIRST_POLL
            continue
        if deadline is not None and clock() >= deadline:
            raise FlinkTimeoutError(
                f"SQL Gateway operation {operation}: no end of result after {timeout}s "
                f"({len(result.rows)} rows so far); an unbounded query never ends, set a row limit"
            )
        yield Sleep(delay)
        delay = min(delay * 2, poll_interval)


def _read_page(page: Mapping[str, Any], result: StatementResult) -> None:
    """Fold one result page into ``result``."""
    if page.get("jobID"):
        result.job_id = str(page["jobID"])
    if page.get("resultKind"):
        result.result_kind = str(page["resultKind"])
    if "isQueryResult" in page:
        result.is_query_result = bool(page["isQueryResult"])
    results = page.get("results") or {}
    if results.get("columns") and not result.columns:
        result.columns = [str(column.get("name")) for column in results["columns"]]
    for row in results.get("data") or []:
        result.apply(str(row.get("kind", "INSERT")), list(row.get("fields") or []))


def cancel_operation(session: str, operation: str, *, version: str) -> Exchange[str]:
    """``POST .../cancel``; returns the operation's status afterwards.

    An operation that already ended (the gateway answers HTTP 500 ``Failed to convert the Operation Status
    from FINISHED to CANCELED``) is left as it is. Note that a *finished* query operation may still have a
    running job: close the operation to stop that.

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    """
    try:
        body = _body((yield Request("POST", _operation_path(version, session, operation, "cancel"))))
    except FlinkError as error:
        if "Failed to convert the Operation Status" not in error.message:
            raise
        return (yield from get_operation_status(session, operation, version=version))
    return str(body.get("status", ""))


def close_operation(session: str, operation: str, *, version: str) -> Exchange[str]:
    """``DELETE .../close``: release the operation (cancels a query's job; an INSERT's job keeps running).

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    """
    body = _body((yield Request("DELETE", _operation_path(version, session, operation, "close"))))
    return str(body.get("status", ""))


def run_statement(
    session: str, statement: str, *, version: str, row_limit: int = 1000, timeout: float | None = None
) -> Exchange[StatementResult]:
    """Execute one statement, fetch its result, then close the operation.

    Closing cancels a query's job (useful when the row limit cut an unbounded query short); an INSERT's job
    keeps running and its id is in :attr:`StatementResult.job_id`.

    :param session: session handle.
    :param statement: one statement.
    :param version: API version.
    :param row_limit: see :func:`fetch_results`.
    :param timeout: see :func:`fetch_results`.
    """
    operation = yield from execute_statement(session, statement, version=version)
    try:
        result = yield from fetch_results(session, operation, version=version, row_limit=row_limit, timeout=timeout)
    except Exception:
        yield from _close_quietly(session, operation, version=version)
        raise
    yield from _close_quietly(session, operation, version=version)
    return result


def _close_quietly(session: str, operation: str, *, version: str) -> Exchange[None]:
    """Close an operation whose outcome is already decided; a failure to close is not the statement's."""
    try:
        yield from close_operation(session, operation, version=version)
    except FlinkError as error:
        log.warning("Could not close SQL Gateway operation %s: %s", operation, error.message)
