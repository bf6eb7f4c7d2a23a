"""Typed errors built from what Flink answers: the server's root cause plus a hint for known causes.

Flink's REST API and SQL Gateway answer failures as ``{"errors": ["<summary>", "<server stack trace>"]}``.
:func:`error_from_response` turns such an answer into the most specific :class:`FlinkError` subclass, whose
message is Flink's own root cause (the last ``Caused by:`` of the trace).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypedDict, Unpack

from airflow_flink_provider.protocol.http import is_retryable_status
from airflow_flink_provider.protocol.redaction import redact

_MAX_CAUSE_LINES = 12


class ErrorDetails(TypedDict, total=False):
    """What any :class:`FlinkError` may carry besides its message: the keyword arguments every subclass passes on."""

    root_cause: str | None
    hint: str | None
    status: int | None


class PassedOn(TypedDict):
    """What an error raised in another's place keeps of it (:meth:`FlinkError.passed_on`)."""

    root_cause: str | None
    status: int | None


class FlinkError(Exception):
    """A failure reported by (or while talking to) Flink.

    Secret values in the message, root cause and hint are masked (:func:`redact`) when the error is built,
    so neither ``str``, ``repr`` nor a pickle of it can carry them.

    :param message: what went wrong, normally Flink's root cause.
    :param root_cause: the root cause text, when it came from a server trace.
    :param hint: what to do about it, for well-known causes.
    :param status: the HTTP status of the answer, if there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        root_cause: str | None = None,
        hint: str | None = None,
        status: int | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.root_cause = redact(root_cause) if root_cause else root_cause
        self.hint = redact(hint) if hint else hint
        self.status = status

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed on a later try.

        Only a generic server-side failure (429, 5xx) is; a recognised cause (bad SQL, unknown id, no slots,
        missing connector...) will fail the same way again.
        """
        return type(self) is FlinkError and self.status is not None and is_retryable_status(self.status)

    def passed_on(self) -> PassedOn:
        """Its status and root cause, for an error raised in its place (``raise X(..., **error.passed_on())``)."""
        return {"status": self.status, "root_cause": self.root_cause}

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text = f"{text} (HTTP {self.status})"
        if self.hint:
            text = f"{text}\nHint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), self.message, self.__dict__.copy())


def _rebuild(cls: type[FlinkError], message: str, state: dict[str, Any]) -> FlinkError:
    """Unpickle any :class:`FlinkError` subclass whatever its keyword-only arguments."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class FlinkConnectionError(FlinkError):
    """Flink could not be reached (connection refused/reset, DNS, TLS); worth retrying later.

    :param request_sent: ``False`` when the request surely never reached the server (refused, connect
        timeout), so even a non-idempotent request may be sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool = True,
        **details: Unpack[ErrorDetails],
    ) -> None:
        super().__init__(message, **details)
        self.request_sent = request_sent

    @property
    def retryable(self) -> bool:
        """Always: the server may be back later."""
        return True


class FlinkTimeoutError(FlinkError):
    """A request got no answer in time, or a wait (savepoint, statement, results) ran out of time.

    :param transient: ``True`` for a request that timed out (worth retrying), ``False`` for a wait that
        ran out of time (the same wait would time out again).
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        **details: Unpack[ErrorDetails],
    ) -> None:
        super().__init__(message, **details)
        self.transient = transient

    @property
    def retryable(self) -> bool:
        """Whether this was a request timeout rather than an exhausted wait."""
        return self.transient


class FlinkNotFoundError(FlinkError):
    """The job, jar, savepoint trigger, session or operation is unknown to the server."""


class FlinkDuplicateJobError(FlinkError):
    """A job with the requested job id was already submitted (it may be running or long finished)."""


class FlinkSqlError(FlinkError):
    """The SQL did not parse or validate.

    :param line: 1-based line of the error within the statement, if Flink said.
    :param column: 1-based column of the error, if Flink said.
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        **details: Unpack[ErrorDetails],
    ) -> None:
        super().__init__(message, **details)
        self.line = line
        self.column = column


class FlinkResourceError(FlinkError):
    """The job could not get the task slots it needs."""


class FlinkMissingConnectorError(FlinkError):
    """A table connector or format factory is not on the classpath (or its name is misspelled)."""


class FlinkJsonParseError(FlinkError):
    """A JSON record or document could not be parsed."""


class FlinkJobFailedError(FlinkError):
    """A job failed (or ended where it should have run); the message is the root cause from its exception history.

    :param job_id: the failed job's id.
    :param state: the state it was in (FAILED, FAILING, CANCELED...), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        state: str | None = None,
        **details: Unpack[ErrorDetails],
    ) -> None:
        super().__init__(message, **details)
        self.job_id = job_id
        self.state = state


class FlinkSavepointError(FlinkError):
    """A savepoint (or stop-with-savepoint) failed."""


class FlinkSavepointNotFoundError(FlinkSavepointError, FlinkNotFoundError):
    """A savepoint failed because Flink does not know the job (Flink accepts the trigger, then fails it)."""


class FlinkJobResourceError(FlinkJobFailedError, FlinkResourceError):
    """A job FAILED because it could not get its task slots."""


class FlinkJobMissingConnectorError(FlinkJobFailedError, FlinkMissingConnectorError):
    """A job FAILED because a connector or format factory is missing."""


class FlinkJobJsonParseError(FlinkJobFailedError, FlinkJsonParseError):
    """A job FAILED on a record that is not valid JSON."""


class FlinkJobUnhealthyError(FlinkJobFailedError):
    """A job failed its health check: it ended, or restarted more often than allowed (see ``protocol/health.py``)."""


# --- reading server traces -------------------------------------------------------------------------

_CAUSED_BY = "Caused by:"
_FRAME = re.compile(r"^\s+(at (?!\[)|\.\.\. \d+ more)")
_QUALIFIED_CLASS = re.compile(r"^(?:[a-z_$][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error|Throwable)?)(?=:|$)")
_WRAPPER = re.compile(r"^<Exception on server side:\s*|\s*End of exception on server side>\s*$")
_SUPPRESSED = re.compile(r"^\s+Suppressed:")
_NESTED = re.compile(r"<Exception on server side:\s*(.*?)(?:\s*End of exception on server side>|$)", re.S)


_WRAPPED = re.compile(
    r"^[\w$]+(?:Exception|Error): ((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?::|$).*)", re.S
)


def _short_class(line: str) -> str:
    """``org.apache.x.FooException: msg`` -> ``FooException: msg``; wrappers such as
    ``CompletionException: org.apache.x.FooException: msg`` are unwrapped to the inner exception."""
    text = _QUALIFIED_CLASS.sub(r"\1", line.strip(), count=1)
    while wrapped := _WRAPPED.match(text):
        text = _QUALIFIED_CLASS.sub(r"\1", wrapped.group(1), count=1)
    return text


def _exception_blocks(trace: str) -> list[list[str]]:
    """Split a Java stack trace into its exceptions' message lines (frames and suppressed ones dropped)."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    in_suppressed = False
    for raw in _WRAPPER.sub("", trace.strip()).splitlines():
        if raw.startswith(_CAUSED_BY):
            current = [raw[len(_CAUSED_BY) :].strip()]
            blocks.append(current)
            in_suppressed = False
        elif _SUPPRESSED.match(raw):
            in_suppressed = True
        elif _FRAME.match(raw) or in_suppressed:
            current = None
        elif current is None and not blocks:
            current = [raw.strip()]
            blocks.append(current)
        elif current is not None:
            current.append(raw.rstrip())
    return [block for block in blocks if any(part.strip() for part in block)]


def root_cause(trace: str) -> str:
    """The deepest cause of a Java stack trace, as ``SimpleClassName: message``, secrets masked.

    The cause goes into trigger events, sensor messages and logs as it is, so it is redacted here: a
    failing record or option is often quoted in it (``For input string: 'password=...'``).

    :param trace: a server-side stack trace (or any text; text without a trace is returned stripped).
    :return: the message of the last ``Caused by:`` (or of the top exception when there is none), its
        class name kept without the package, multi-line messages kept up to a dozen lines.
    """
    return redact(_root_cause(trace))


def _root_cause(trace: str) -> str:
    blocks = _exception_blocks(trace)
    if not blocks:
        return trace.strip()
    lines = blocks[-1]
    while lines and not lines[-1].strip():
        lines.pop()
    nested = _NESTED.search("\n".join(lines))
    if nested and nested.group(1).strip():  # a REST client error quoting another server's trace
        return _root_cause(nested.group(1))
    if len(lines) > _MAX_CAUSE_LINES:
        lines = [*lines[:_MAX_CAUSE_LINES], "..."]
    return _short_class("\n".join(lines))


# --- recognising causes ----------------------------------------------------------------------------

_SLOTS = re.compile(
    r"NoResourceAvailableException|Could not acquire the minimum required resources"
    r"|Slot request bulk is not fulfillable|not enough (?:task )?slots",
    re.IGNORECASE,
)
_MISSING_FACTORY = re.compile(
    r"Could not find any factory for identifier '(?P<name>[^']*)'"
    r"|Cannot discover a connector using option: '?connector'?\s*=\s*'?(?P<option>[^'\s]*)"
    r"|Could not find any format factory for identifier '(?P<format>[^']*)'",
)
_DUPLICATE_JOB = re.compile(r"DuplicateJobSubmissionException|Job has already been submitted")
_SQL = re.compile(
    r"SqlParseException|SqlParserException|SqlValidatorException|CalciteContextException"
    r"|SQL parse failed|SQL validation failed|ValidationException|Non-query expression encountered"
    r"|Unsupported SQL query|Encountered \".*\" at line|only single statement supported"
    r"|Unsupported statement for configuring session|statement is allowed in Statement Set"
    r"|Cannot find table '[^']*' in any of the catalogs",
)
_POSITION = re.compile(r"\b(?:at|From) line (\d+), column (\d+)", re.IGNORECASE)
_JSON = re.compile(
    r"Failed to deserialize JSON|Json\w*Exception|MismatchedInputException|Unexpected character .* in JSON",
)
_NOT_FOUND = re.compile(
    r"NotFoundException|FlinkJobNotFoundException|Could not find Flink job"
    r"|Job .* not found|Job could not be found|(?:Jar )?[Ff]ile \S+ does not exist"
    r"|There is no savepoint operation|Session '[^']*' does not exist"
    r"|Can not find the submitted operation|Operation '[^']*' (?:does not exist|not found)"
    r"|Unknown (?:job|operation|session|savepoint)",
    re.IGNORECASE,
)

_HINT_SLOTS = (
    "Not enough task slots: the job asks for more parallel slots than the cluster can give. Lower the "
    "parallelism ('parallelism.default' or the operator's parallelism), cancel jobs that hold slots, or "
    "add TaskManagers / taskmanager.numberOfTaskSlots. See the cluster's free slots in GET /overview."
)
_HINT_FACTORY = (
    "No connector/format factory named {name!r} is on the classpath: check the spelling of "
    "'connector'/'format', or add the connector jar (and its dependencies) to the Flink and SQL Gateway "
    "lib/ directories or load it with ADD JAR."
)
_HINT_JSON = (
    "A record is not valid JSON for the table's schema. Fix the producer, or set "
    "'json.ignore-parse-errors' = 'true' on the source to skip bad records (or route them to a "
    "dead-letter topic with a raw-format table)."
)
_HINT_REQUEST_FORMAT = "Flink could not read the request body: a parameter has the wrong type or name."
_HINT_BAD_ID = (
    "Flink could not parse an id in the URL: job ids and savepoint request ids are 32 hex digits, "
    "SQL Gateway session and operation handles are UUIDs."
)
_SQL_SPECIFIC_HINTS = (
    (
        "only single statement supported",
        "The SQL Gateway runs one statement per request: split the script with split_statements().",
    ),
    (
        "Unsupported statement for configuring session",
        "configure-session accepts only DDL, USE, SET, LOAD/UNLOAD MODULE and ADD JAR: run other statements "
        "with execute_statement().",
    ),
    (
        "statement is allowed in Statement Set",
        "Inside a statement set only INSERT (and CREATE TABLE AS) may run: end the set with END first.",
    ),
)
_HINT_DUPLICATE_JOB = (
    "A job with this job id was already submitted. Flink keeps the ids of ended jobs too (until "
    "jobstore.expiration-time), so attach to that job (find_job) or derive a new job id for a new run."
)
_MISSING_JVM_OPENS = re.compile(
    r"Could not initialize class org\.apache\.flink\.datastream\.impl\.ExecutionContextEnvironment"
    r"|does not \"opens java\.\w+\" to unnamed module"
)
_HINT_JVM_OPENS = (
    "The JobManager's JVM runs without Flink's --add-opens flags (env.java.default-opts.all in Flink's "
    "config.yaml), so on Java 17 no jar can be run through the REST API. Start the cluster with them "
    "(e.g. --add-opens=java.base/java.util=ALL-UNNAMED) and restart the JobManager."
)
_HINT_NOT_FOUND = (
    "Flink does not know this id: it may be mistyped, belong to another cluster, or the job may have ended "
    "and expired from the job store (jobstore.expiration-time), or the session/operation was closed."
)
_HINT_SAVEPOINT_DIR = (
    "No savepoint directory: pass a target directory or set 'execution.checkpointing.savepoint-dir' "
    "(state.savepoints.dir) on the cluster."
)


def sql_position(text: str) -> tuple[int | None, int | None]:
    """The first ``line N, column M`` Flink mentions in an error text.

    :param text: an error message or trace.
    :return: ``(line, column)``, or ``(None, None)``.
    """
    match = _POSITION.search(text)
    if not match:
        return None, None
    return int(match.group(1)), int(match.group(2))


def hint_for(text: str) -> str | None:
    """A short hint for a well-known Flink failure, or ``None``.

    :param text: an error message, root cause or whole stack trace.
    """
    if _SLOTS.search(text):
        return _HINT_SLOTS
    if factory := _MISSING_FACTORY.search(text):
        name = factory.group("name") or factory.group("option") or factory.group("format") or ""
        return _HINT_FACTORY.format(name=name)
    if _DUPLICATE_JOB.search(text):
        return _HINT_DUPLICATE_JOB
    if _MISSING_JVM_OPENS.search(text):
        return _HINT_JVM_OPENS
    if "Request did not match expected format" in text:
        return _HINT_REQUEST_FORMAT
    if "Cannot resolve path parameter" in text:
        return _HINT_BAD_ID
    for marker, hint in _SQL_SPECIFIC_HINTS:
        if marker in text:
            return hint
    if _SQL.search(text):
        line, column = sql_position(text)
        where = f" near line {line}, column {column} of the statement" if line is not None else ""
        return f"Flink rejected the SQL{where}: check names, types and syntax there."
    if _JSON.search(text):
        return _HINT_JSON
    if "No savepoint directory configured" in text:
        return _HINT_SAVEPOINT_DIR
    if _NOT_FOUND.search(text):
        return _HINT_NOT_FOUND
    return None


def _error_texts(body: Any) -> list[str]:
    """The strings of an ``{"errors": [...]}`` body, or the body itself when it is text."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return [str(item) for item in errors if item is not None]
        if isinstance(errors, str):
            return [errors]
        return [str(body)] if body else []
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        return [body] if body.strip() else []
    return [] if body is None else [str(body)]


def _pick_trace(texts: Iterable[str]) -> str:
    """The most informative of the error strings: the stack trace if there is one."""
    texts = [text for text in texts if text.strip()]
    with_trace = [text for text in texts if _CAUSED_BY in text or "\tat " in text or "Exception" in text]
    return max(with_trace or texts, key=len, default="")


def classify(text: str, status: int | None = None) -> type[FlinkError]:
    """The most specific :class:`FlinkError` subclass for an error text.

    :param text: the whole error text (all causes), not just the root cause.
    :param status: the HTTP status, if any; 404 always means not found.
    """
    if status == 404:
        return FlinkNotFoundError
    if _SLOTS.search(text):
        return FlinkResourceError
    if _DUPLICATE_JOB.search(text):
        return FlinkDuplicateJobError
    if _MISSING_FACTORY.search(text):
        return FlinkMissingConnectorError
    if _SQL.search(text):
        return FlinkSqlError
    if _JSON.search(text) and "Request did not match expected format" not in text:
        return FlinkJsonParseError
    if _NOT_FOUND.search(text):
        return FlinkNotFoundError
    return FlinkError


def error_from_text(text: str, *, status: int | None = None, summary: str | None = None) -> FlinkError:
    """Build the typed error for a Flink error text (a trace, a root cause or a plain message).

    :param text: the error text.
    :param status: the HTTP status it came with, if any.
    :param summary: a fallback message when the text is empty.
    """
    text = redact(text)
    cause = root_cause(text) if text.strip() else None
    summary = redact(summary) if summary else None
    message = cause or summary or "Flink reported an error without details"
    cls = classify(text, status)
    hint = hint_for(text)
    if cls is FlinkNotFoundError and hint is None:
        hint = _HINT_NOT_FOUND
    if cls is FlinkSqlError:
        line, column = sql_position(cause or "")
        if line is None:
            line, column = sql_position(text)
        return FlinkSqlError(message, line=line, column=column, root_cause=cause, hint=hint, status=status)
    return cls(message, root_cause=cause, hint=hint, status=status)


def error_from_response(status: int, body: Any) -> FlinkError:
    """Turn a non-2xx answer from the Flink REST API or the SQL Gateway into a typed error.

    :param status: the HTTP status.
    :param body: the parsed JSON body (``{"errors": [...]}``) or the raw text.
    """
    texts = _error_texts(body)
    trace = _pick_trace(texts)
    summary = "; ".join(text for text in texts if text != trace) or None
    return error_from_text(trace, status=status, summary=summary)


_JOB_FAILED_BY_CAUSE: dict[type[FlinkError], type[FlinkJobFailedError]] = {
    FlinkResourceError: FlinkJobResourceError,
    FlinkMissingConnectorError: FlinkJobMissingConnectorError,
    FlinkJsonParseError: FlinkJobJsonParseError,
}


def job_failed_error(job_id: str, cause: str | None, *, state: str = "FAILED") -> FlinkJobFailedError:
    """The error for a job that reached FAILED, typed by its root cause when the cause is well known.

    A job that failed for lack of slots raises :class:`FlinkJobResourceError`, which is both a
    :class:`FlinkJobFailedError` and a :class:`FlinkResourceError` (likewise for connectors and JSON).

    :param job_id: the job.
    :param cause: its root cause (see ``rest.get_root_cause``), if known.
    :param state: the state to report.
    """
    if not cause:
        return FlinkJobFailedError(f"Flink job {job_id} is {state} (no exception recorded)", job_id=job_id, state=state)
    cls = _JOB_FAILED_BY_CAUSE.get(classify(cause), FlinkJobFailedError)
    return cls(
        f"Flink job {job_id} is {state}: {cause}", job_id=job_id, state=state, root_cause=cause, hint=hint_for(cause)
    )
