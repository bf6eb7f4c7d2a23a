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
* ``executionTimeout`` > 0 is refused (``SqlGatewayService doesn't support timeout mechanism now``), so a
  statement's timeout is kept here, on the client: when it runs out, the operation is cancelled and closed.
* There is no call that lists sessions, and the gateway picks the session handle, so a session whose
  ``POST /sessions`` answer was lost cannot be found again: it stays open until
  ``sql-gateway.session.idle-timeout`` (10 minutes by default). :func:`open_session` is therefore never
  repeated after the request may have reached the gateway (see :data:`SESSION_MAYBE_OPENED_HINT`).

Which requests are safe to repeat after a lost answer (``Request.idempotent``): reads (``GET``), the
heartbeat, cancel (an ended operation is tolerated), close of an operation or a session (already gone is
fine), and ``configure-session`` with ``SET``/``RESET``/``USE`` or ``CREATE``/``DROP`` with ``IF [NOT] EXISTS``.
Not safe: opening a session, other ``configure-session`` statements (a second ``CREATE TABLE`` fails), and
``POST .../statements`` (a second INSERT is a second job).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response, Sleep, path_segment
from airflow_flink_provider.protocol.statements import executable_text

log = logging.getLogger(__name__)

T = TypeVar("T")

SUPPORTED_VERSIONS = ("v4", "v3", "v2")
"""API versions this client speaks, best first (v1 lacks ``rowFormat`` and ``configure-session``)."""

RUNNING_STATUSES = frozenset({"INITIALIZED", "PENDING", "RUNNING"})
"""Operation statuses that are not final yet."""

Clock = Callable[[], float]

SESSION_MAYBE_OPENED_HINT = (
    "The gateway may have opened the session although its answer was lost. It is not asked again (that could "
    "leave a second session behind) and cannot be found again (the SQL Gateway has no call that lists "
    "sessions), so it stays open until sql-gateway.session.idle-timeout (10 minutes by default) closes it. "
    "Retry the task: the retry opens exactly one new session."
)

_REPEATABLE_CONFIG = re.compile(
    r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*"  # leading blanks and comments
    r"(?:(?:SET|RESET|USE)\b"
    r"|(?:CREATE|DROP)\s+(?:(?:TEMPORARY|SYSTEM)\s+)*(?:TABLE|VIEW|FUNCTION|DATABASE|CATALOG)\s+IF\s+(?:NOT\s+)?EXISTS\b)",
    re.IGNORECASE | re.DOTALL,
)
"""``configure-session`` statements that do no harm when run twice."""
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
    try:
        body = _body((yield Request("POST", f"/{version}/sessions", json=payload, idempotent=False)))
    except FlinkError as error:
        if _may_have_arrived(error):
            raise FlinkConnectionError(
                f"Opening a SQL Gateway session failed after the request may have reached the gateway "
                f"({error.message})",
                hint=SESSION_MAYBE_OPENED_HINT,
                **error.passed_on(),
            ) from error
        raise
    return str(body["sessionHandle"])


def _may_have_arrived(error: FlinkError) -> bool:
    """Whether a failed non-idempotent request may have been carried out anyway (its answer was lost).

    That is a lost connection after sending, a read timeout, or a 5xx; not a refused connection, a 429 or a
    4xx, which the server answers without doing anything.
    """
    if isinstance(error, FlinkConnectionError):
        return error.request_sent
    if isinstance(error, FlinkTimeoutError):
        return error.transient
    return type(error) is FlinkError and error.status is not None and error.status >= 500


def heartbeat(session: str, *, version: str) -> Exchange[None]:
    """``POST .../heartbeat``: keep an idle session alive.

    :param session: session handle.
    :param version: API version.
    """
    yield Request("POST", _session_path(version, session, "heartbeat"), idempotent=True)  # only touches the session


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


def configure_session(session: str, statement: str, *, version: str) -> Exchange[None]:
    """``POST .../configure-session``: run DDL, ``USE``, ``SET``/``RESET``, ``ADD JAR``... synchronously.

    Retried after a lost answer only when running the statement twice does no harm (see the module notes).

    :param session: session handle.
    :param statement: one statement.
    :param version: API version.
    """
    yield Request(
        "POST",
        _session_path(version, session, "configure-session"),
        json={"statement": statement},
        idempotent=bool(_REPEATABLE_CONFIG.match(statement)),
    )


def execute_statement(
    session: str,
    statement: str,
    *,
    version: str,
    execution_config: Mapping[str, str] | None = None,
    timeout: float | None = None,
    clock: Clock = time.monotonic,
) -> Exchange[str]:
    """``POST .../statements``: queue one statement; returns the operation handle.

    A ``BEGIN STATEMENT SET; ...; END`` block is sent as the equivalent ``EXECUTE STATEMENT SET BEGIN ...
    END`` (the gateway takes one statement per request).

    With a ``timeout`` the statement must also finish executing within it (counted from submission): a DDL
    or ``SET`` ran, an INSERT's job was submitted (with ``table.dml-sync``: the job ended), a query's job was
    submitted and its result can be fetched. Otherwise the operation is cancelled and closed (which cancels its
    job) and :class:`FlinkTimeoutError` is raised. The gateway's own ``executionTimeout`` is not used: Flink 2.1
    refuses any value above 0.

    :param session: session handle.
    :param statement: one statement (see ``split_statements``).
    :param version: API version.
    :param execution_config: configuration for this statement only.
    :param timeout: seconds the statement may take to execute; ``None``: return as soon as it is queued.
    :param clock: monotonic clock (tests).
    :raises FlinkTimeoutError: the statement was still executing after ``timeout`` seconds.
    """
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    started = clock()
    payload: dict[str, Any] = {"statement": executable_text(statement)}
    if execution_config:
        payload["executionConfig"] = {key: str(value) for key, value in execution_config.items()}
    body = _body((yield Request("POST", _session_path(version, session, "statements"), json=payload)))
    operation = str(body["operationHandle"])
    if timeout is None:
        return operation
    wait = wait_for_operation(
        session, operation, version=version, timeout=max(0.0, started + timeout - clock()), clock=clock
    )
    yield from _within(wait, session, operation, version=version, timeout=timeout, what="did not finish executing")
    return operation


def _within(
    step: Exchange[T], session: str, operation: str, *, version: str, timeout: float | None, what: str
) -> Exchange[T]:
    """Run ``step`` (a wait on the operation) under the statement timeout.

    When the statement timeout runs out, the operation is cancelled and closed and the error says so; on any
    other failure it is closed (a failure to close is logged, not raised over the statement's own error).

    :param step: the wait, already given what is left of ``timeout``.
    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    :param timeout: the statement timeout in seconds, ``None`` for none.
    :param what: what the operation failed to do in time, for the message.
    """
    try:
        return (yield from step)
    except FlinkTimeoutError as error:
        if timeout is None or error.transient:  # a request timed out, not the statement
            yield from _close_quietly(session, operation, version=version)
            raise
        yield from _abandon(session, operation, version=version)
        raise FlinkTimeoutError(
            f"SQL Gateway operation {operation} {what} within the statement timeout of {timeout:g}s; "
            "it was cancelled and closed",
            hint="Raise the timeout, or for an unbounded query set a row limit (a streaming query never ends).",
        ) from error
    except Exception:
        yield from _close_quietly(session, operation, version=version)
        raise


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
        body = _body((yield Request("POST", _operation_path(version, session, operation, "cancel"), idempotent=True)))
    except FlinkError as error:
        if "Failed to convert the Operation Status" not in error.message:
            raise
        return (yield from get_operation_status(session, operation, version=version))
    return str(body.get("status", ""))


def close_operation(session: str, operation: str, *, version: str) -> Exchange[str]:
    """``DELETE .../close``: release the operation (cancels a query's job; an INSERT's job keeps running).

    An operation (or session) that is already gone counts as closed, so a close retried after a lost answer
    does not fail.

    :param session: session handle.
    :param operation: operation handle.
    :param version: API version.
    """
    try:
        body = _body((yield Request("DELETE", _operation_path(version, session, operation, "close"))))
    except FlinkNotFoundError:
        return "CLOSED"
    return str(body.get("status", ""))


def run_statement(
    session: str,
    statement: str,
    *,
    version: str,
    row_limit: int = 1000,
    timeout: float | None = None,
    clock: Clock = time.monotonic,
) -> Exchange[StatementResult]:
    """Execute one statement, fetch its result, then close the operation.

    Closing cancels a query's job (useful when the row limit cut an unbounded query short); an INSERT's job
    keeps running and its id is in :attr:`StatementResult.job_id`.

    :param session: session handle.
    :param statement: one statement.
    :param version: API version.
    :param row_limit: see :func:`fetch_results`.
    :param timeout: seconds for the whole statement, from submission to the end of its result (``None``: no
        limit); when it runs out the operation is cancelled and closed.
    :param clock: monotonic clock (tests).
    :raises FlinkTimeoutError: the result did not end within ``timeout``.
    """
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    started = clock()
    operation = yield from execute_statement(session, statement, version=version)
    fetch = fetch_results(
        session,
        operation,
        version=version,
        row_limit=row_limit,
        timeout=None if timeout is None else max(0.0, started + timeout - clock()),
        clock=clock,
    )
    result = yield from _within(
        fetch, session, operation, version=version, timeout=timeout, what="had no end of result"
    )
    yield from _close_quietly(session, operation, version=version)
    return result


def _abandon(session: str, operation: str, *, version: str) -> Exchange[None]:
    """Cancel and close an operation that ran out of time; a failure to do so is logged, not raised."""
    try:
        yield from cancel_operation(session, operation, version=version)
    except FlinkError as error:
        log.warning("Could not cancel SQL Gateway operation %s: %s", operation, error.message)
    yield from _close_quietly(session, operation, version=version)


def _close_quietly(session: str, operation: str, *, version: str) -> Exchange[None]:
    """Close an operation whose outcome is already decided; a failure to close is not the statement's."""
    try:
        yield from close_operation(session, operation, version=version)
    except FlinkError as error:
        log.warning("Could not close SQL Gateway operation %s: %s", operation, error.message)
