"""Run a Flink SQL script through the SQL Gateway, one session per task try."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.openlineage.mixin import FlinkOpenLineageMixin
from airflow_flink_provider.operators.common import (
    check_slots,
    converge_on_job,
    is_over,
    log_job_url,
    parse_parallelism,
    push_job_id,
    refuse_orphaned_jobs,
    task_identity,
    validate_if_ended,
    validate_snapshot_path,
    wait_for_job,
)
from airflow_flink_provider.protocol.errors import FlinkError, FlinkSqlError
from airflow_flink_provider.protocol.job_ids import sql_purposes
from airflow_flink_provider.protocol.job_state import JobStateCheck
from airflow_flink_provider.protocol.redaction import MASK, find_secrets, redact
from airflow_flink_provider.protocol.statements import Statement, split_statements
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
    from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook

FIXED_JOB_ID_KEY = "$internal.pipeline.job-id"
"""Session option that makes the next job submitted by the session use a given job id."""

SESSION_KEY = "flink_sql_session"
"""Task state store key: the gateway session a try opened, closed by the next try if it is still open."""

WAIT_XCOM = "flink_sql_wait"
"""XCom key: a deferred wait's outcome and deadline, for a resume that got the trigger's event only."""

_JOB_STATEMENT = re.compile(
    r"^(?:INSERT\s|EXECUTE\s+(?:STATEMENT\s+SET|INSERT|PLAN)\b|BEGIN\s+STATEMENT\s+SET\b"
    r"|COMPILE\s+AND\s+EXECUTE\b|(?:CREATE\s+OR\s+REPLACE|CREATE|REPLACE)\s+TABLE\b.*\bAS\s*\(?\s*(?:SELECT|WITH)\b)",
    re.IGNORECASE | re.DOTALL,
)
_QUERY_STATEMENT = re.compile(r"^\(*\s*(?:SELECT|WITH|VALUES|SHOW|DESC|DESCRIBE|EXPLAIN)\b", re.IGNORECASE)
_SET_PARALLELISM = re.compile(r"^SET\s+'parallelism\.default'\s*=\s*'?\s*([^'\s;]+)", re.IGNORECASE)
_WAIT_TARGETS = {"RUNNING": ("RUNNING", "FINISHED"), "FINISHED": ("FINISHED",)}


def statement_kind(text: str) -> str:
    """Classify a statement: ``job`` (submits a Flink job), ``query`` (returns rows) or ``other``.

    :param text: the statement, without leading comments.
    """
    if _JOB_STATEMENT.match(text):
        return "job"
    if _QUERY_STATEMENT.match(text):
        return "query"
    return "other"


def redactor(script: str) -> Callable[[str], str]:
    """A function that masks secrets in text taken from ``script`` (a line, a preview, a result cell).

    It applies :func:`redact`, and also masks the script's secret values wherever they appear, so a value
    whose key is on another line (or a ``SHOW CREATE TABLE`` row that prints it) is masked too.

    :param script: the rendered script.
    """
    secrets = find_secrets(script)

    def masked(text: str) -> str:
        text = redact(text)
        for secret in secrets:
            text = text.replace(secret, MASK)
        return text

    return masked


def locate_error(error: FlinkError, statement: Statement, index: int, total: int, script: str) -> FlinkError:
    """A copy of ``error`` whose message says which statement and script line failed.

    A :class:`FlinkSqlError` position (relative to the statement Flink saw) becomes the script's position.

    :param error: the error Flink answered.
    :param statement: the failing statement.
    :param index: its 1-based index in the script.
    :param total: how many statements the script has.
    :param script: the whole rendered script, to quote the failing line.
    """
    located = copy.copy(error)
    line, column = statement.line, None
    if isinstance(error, FlinkSqlError) and error.line is not None:
        line, column = statement.script_position(error.line, error.column)
        assert isinstance(located, FlinkSqlError)
        located.line, located.column = line, column
    where = f"line {line}, column {column}" if column is not None else f"line {line}"
    lines = script.splitlines()
    quoted = f"\n  {line:>4} | {redactor(script)(lines[line - 1].rstrip())}" if 0 < line <= len(lines) else ""
    located.message = f"Statement {index}/{total} failed at script {where}: {error.message}{quoted}"
    located.args = (located.message,)
    return located


class FlinkSqlGatewayOperator(FlinkOpenLineageMixin, BaseOperator):
    """Run a Flink SQL script in one SQL Gateway session.

    The script (inline, or a ``.sql`` file found through the DAG's template search path) is rendered with
    Jinja, split into statements and run in order. Each statement that submits a job (``INSERT``,
    statement sets, CTAS...) gets a job id derived from the DAG, task, run, map index and the statement's
    normalized text (and its count among identical statements), recorded in the task state store before
    it is submitted. A live job under that id (an earlier or concurrent try's) is attached to; a
    "duplicate" or lost answer is resolved by looking the id up; ``if_ended`` decides about a job that
    already ended; an earlier try's job that this try would not reuse (its statement was edited) and that
    still runs fails the task before anything is submitted. See "Job identity" in
    ``docs/provider-design.md``. Rows of queries (``SELECT``, ``SHOW``...) are returned, bounded by
    ``result_row_limit``, with secrets in text cells masked. The session is closed on success, failure and
    kill, and recorded so that the next try closes it if this try is killed.

    Returns (XCom) ``{"job_ids": [...], "results": [{"statement", "line", "columns", "rows", "truncated"}]}``.

    :param sql: the script, or a path ending in ``.sql`` (templated).
    :param flink_sql_gateway_conn_id: the ``flink_sql_gateway`` connection.
    :param flink_conn_id: the ``flink`` REST connection, used to find jobs of earlier tries, check free
        slots and wait for job states.
    :param session_properties: Flink options for the session, e.g. ``{"parallelism.default": "2"}``
        (templated).
    :param savepoint_path: restore the script's jobs from this savepoint (``execution.state-recovery.path``)
        (templated). It applies to every job of the session: use one INSERT or statement set per script.
    :param allow_non_restored_state: skip savepoint state that maps to no operator.
    :param claim_mode: ``CLAIM`` or ``NO_CLAIM`` for the savepoint restore.
    :param result_row_limit: at most this many rows are kept per query.
    :param statement_timeout: seconds one statement may take to run and return its rows.
    :param wait_for: ``None`` (return once jobs are submitted), ``"RUNNING"`` (all their tasks run, or the
        job already finished) or ``"FINISHED"``.
    :param wait_timeout: seconds to wait for ``wait_for``.
    :param poll_interval: seconds between job state polls.
    :param deferrable: wait in the triggerer instead of on a worker; default: Airflow's
        ``[operators] default_deferrable``.
    :param cancel_on_kill: cancel the jobs this try submitted or attached to when the task is killed.
    :param session_name: name of the gateway session (default: from the task instance).
    :param if_ended: what a new try (a retry or a clear) does when a statement's job already FINISHED, was
        CANCELED or FAILED: ``resubmit`` it under the next generation's id (default), ``reuse`` its outcome
        (FINISHED succeeds, FAILED/CANCELED fail with the root cause), or ``fail``.
    """

    template_fields: Sequence[str] = ("sql", "session_properties", "savepoint_path", "session_name")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql", "session_properties": "json"}
    ui_color = "#e6f0fa"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(
        self,
        *,
        sql: str,
        flink_sql_gateway_conn_id: str = "flink_sql_gateway_default",
        flink_conn_id: str = "flink_default",
        session_properties: Mapping[str, Any] | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
        claim_mode: str | None = None,
        result_row_limit: int = 100,
        statement_timeout: float = 300.0,
        wait_for: str | None = None,
        wait_timeout: float = 600.0,
        poll_interval: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = False,
        session_name: str | None = None,
        if_ended: str = "resubmit",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.if_ended = validate_if_ended(if_ended)
        if wait_for is not None and wait_for.upper() not in _WAIT_TARGETS:
            raise ValueError(f"wait_for must be None, 'RUNNING' or 'FINISHED', got {wait_for!r}")
        if claim_mode is not None and claim_mode.upper() not in ("CLAIM", "NO_CLAIM"):
            raise ValueError(f"claim_mode must be 'CLAIM' or 'NO_CLAIM', got {claim_mode!r}")
        if result_row_limit < 0:
            raise ValueError(f"result_row_limit must be >= 0, got {result_row_limit}")
        self.sql = sql
        self.flink_sql_gateway_conn_id = flink_sql_gateway_conn_id
        self.flink_conn_id = flink_conn_id
        self.session_properties = dict(session_properties or {})
        self.savepoint_path = savepoint_path
        self.allow_non_restored_state = allow_non_restored_state
        self.claim_mode = claim_mode.upper() if claim_mode else None
        self.result_row_limit = result_row_limit
        self.statement_timeout = statement_timeout
        self.wait_for = wait_for.upper() if wait_for else None
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.session_name = session_name
        self._gateway: FlinkSqlGatewayHook | None = None
        self._session: str | None = None
        self._submitted: list[str] = []
        self._reset_pending = False

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the templates, then register the secrets in the SQL and session properties with the masker.

        Airflow stores the rendered fields and logs from here on, so a password in a ``WITH`` option or an
        argument shows as ``***`` in the rendered-fields view and in the task log.
        """
        from airflow_flink_provider.hooks.base import mask_secrets_in

        super().render_template_fields(context, jinja_env)
        mask_secrets_in(self.sql, self.session_properties, self.savepoint_path)

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def _gateway_hook(self) -> FlinkSqlGatewayHook:
        from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook

        return FlinkSqlGatewayHook(flink_sql_gateway_conn_id=self.flink_sql_gateway_conn_id)

    def _properties(self) -> dict[str, str]:
        """Session properties as strings, with the savepoint options added."""
        properties = {str(key): _option_value(value) for key, value in self.session_properties.items()}
        if self.savepoint_path:
            properties["execution.state-recovery.path"] = str(self.savepoint_path)
            if self.allow_non_restored_state:
                properties["execution.state-recovery.ignore-unclaimed-state"] = "true"
            if self.claim_mode:
                properties["execution.state-recovery.claim-mode"] = self.claim_mode
        return properties

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the script; see the class docstring."""
        script = self.sql
        statements = split_statements(script)
        if not statements:
            raise ValueError("The SQL script has no statements")
        if self.savepoint_path:
            validate_snapshot_path(self.savepoint_path, "savepoint_path")
        kinds = [statement_kind(statement.text) for statement in statements]
        purposes = iter(sql_purposes([st.text for st, kind in zip(statements, kinds, strict=True) if kind == "job"]))
        if self.savepoint_path and kinds.count("job") > 1:
            self.log.warning(
                "savepoint_path applies to all %d jobs of this script; jobs whose operators are not in the "
                "savepoint need allow_non_restored_state or a script of their own",
                kinds.count("job"),
            )
        properties = self._properties()
        parallelism = parse_parallelism(properties.get("parallelism.default"), "parallelism.default")
        rest = self._rest_hook()
        gateway = self._gateway_hook()
        dag_id, task_id, run_id, _ = task_identity(context)
        job_purposes = [next(purposes) if kind == "job" else "" for kind in kinds]
        refuse_orphaned_jobs(rest, context, set(job_purposes) - {""}, self.log)
        self._gateway = gateway
        self._submitted = []
        self._reset_pending = False
        self._close_earlier_session(gateway, context)
        self._session = gateway.open_session(
            properties, session_name=self.session_name or f"airflow {dag_id}.{task_id} {run_id}"
        )
        if (store := context.get("task_state_store")) is not None:
            store.set(SESSION_KEY, self._session)
        self.log.info("Opened SQL Gateway session %s; running %d statement(s)", self._session, len(statements))
        job_ids: list[str] = []
        results: list[dict[str, Any]] = []
        masked = redactor(script)  # what reaches the log and XCom: SHOW CREATE TABLE prints the options
        try:
            for index, (statement, kind) in enumerate(zip(statements, kinds, strict=True), start=1):
                preview = " ".join(statement.text.split())[:120]
                self.log.info(
                    "Statement %d/%d (line %d, %s): %s",
                    index,
                    len(statements),
                    statement.line,
                    kind,
                    masked(preview),
                )
                if self._reset_pending:
                    self._reset_job_id(raise_errors=True)
                if kind == "job":
                    job_id = self._run_job_statement(
                        context, rest, statement, index, len(statements), parallelism, job_purposes[index - 1]
                    )
                    job_ids.append(job_id)
                    continue
                if match := _SET_PARALLELISM.match(statement.text):
                    parallelism = parse_parallelism(match.group(1), "parallelism.default")
                result = self._run_statement(statement, index, len(statements))
                if kind == "query":
                    results.append(
                        {
                            "statement": index,
                            "line": statement.line,
                            "columns": list(result.columns),
                            "rows": [[masked(v) if isinstance(v, str) else v for v in row] for row in result.rows],
                            "truncated": result.truncated,
                        }
                    )
                    self.log.info(
                        "Statement %d/%d returned %d row(s)%s",
                        index,
                        len(statements),
                        len(result.rows),
                        " (truncated at result_row_limit)" if result.truncated else "",
                    )
        except BaseException:
            self._close_session(raise_errors=False, context=context)
            raise
        self._close_session(raise_errors=True, context=context)
        if job_ids:
            push_job_id(context, job_ids[0])
        outcome: dict[str, Any] = {"job_ids": job_ids, "results": results}
        if self.wait_for and job_ids:
            return self._wait(context, rest, outcome)
        return outcome

    def _close_earlier_session(self, gateway: FlinkSqlGatewayHook, context: Context) -> None:
        """Close the session an earlier try recorded, if it is still open (that try was killed)."""
        store = context.get("task_state_store")
        earlier = store.get(SESSION_KEY) if store is not None else None
        if store is None or not isinstance(earlier, str) or not earlier:
            return
        if gateway.session_exists(earlier):
            self.log.warning("Closing SQL Gateway session %s, left open by an earlier try of this task", earlier)
            gateway.close_session(earlier)
        store.delete(SESSION_KEY)

    def _run_statement(self, statement: Statement, index: int, total: int, *, row_limit: int | None = None) -> Any:
        """Execute one statement and fetch its (bounded) result, naming the script line on failure.

        A failure to close the operation is logged, never raised: it must not replace the statement's own
        error, and closing the session releases the operation anyway.
        """
        gateway, session = self._gateway, self._session
        assert gateway is not None and session is not None
        limit = self.result_row_limit if row_limit is None else row_limit
        try:
            operation = gateway.execute_statement(session, statement.text)
            try:
                return gateway.fetch_results(session, operation, row_limit=limit, timeout=self.statement_timeout)
            finally:
                try:
                    gateway.close_operation(session, operation)
                except FlinkError as err:
                    self.log.warning(
                        "Could not close operation %s of statement %d/%d: %s", operation, index, total, err
                    )
        except FlinkError as err:
            raise locate_error(err, statement, index, total, self.sql) from err

    def _run_job_statement(
        self,
        context: Context,
        rest: FlinkRestHook,
        statement: Statement,
        index: int,
        total: int,
        parallelism: int | None,
        purpose: str,
    ) -> str:
        """Submit a job statement under its deterministic id, or attach to the job of an earlier try.

        The job id is set in the session (``SET '$internal.pipeline.job-id'``) for the submission and reset
        after it; the job is recorded (for ``cancel_on_kill``) before the reset, whose failure is logged and
        retried before the next statement instead of failing a submitted job's task.
        """
        gateway, session = self._gateway, self._session
        assert gateway is not None and session is not None
        slots_checked = False

        def submit(job_id: str) -> str:
            nonlocal slots_checked
            if not slots_checked:
                check_slots(rest, parallelism, self.log)
                slots_checked = True
            gateway.configure_session(session, f"SET '{FIXED_JOB_ID_KEY}' = '{job_id}'")
            self._reset_pending = True
            result = self._run_statement(statement, index, total, row_limit=10)
            submitted = str(result.job_id or job_id)
            self._submitted.append(submitted)
            return submitted

        try:
            handle = converge_on_job(rest, context, purpose, submit, self.log, if_ended=self.if_ended)
        except BaseException:
            self._reset_job_id(raise_errors=False)
            raise
        self._reset_job_id(raise_errors=False)
        if handle.job_id not in self._submitted and not is_over(handle.state or ""):
            self._submitted.append(handle.job_id)  # attached to: cancel_on_kill covers it too
        self.log.info("Statement %d/%d: Flink job %s (%s)", index, total, handle.job_id, purpose)
        log_job_url(self.log, self.flink_conn_id, handle.job_id)
        return handle.job_id

    def _reset_job_id(self, *, raise_errors: bool) -> None:
        """Reset the session's fixed job id, if set; a failure is raised or logged (and retried later)."""
        gateway, session = self._gateway, self._session
        if not self._reset_pending or gateway is None or session is None:
            return
        try:
            gateway.configure_session(session, f"RESET '{FIXED_JOB_ID_KEY}'")
        except FlinkError as err:
            if raise_errors:
                raise
            self.log.warning(
                "Could not reset %s in session %s (%s); the job was submitted and is kept. The reset is "
                "retried before the next statement",
                FIXED_JOB_ID_KEY,
                session,
                err,
            )
            return
        self._reset_pending = False

    def _close_session(self, *, raise_errors: bool, context: Context | None = None) -> None:
        """Close the gateway session; errors are raised on success paths and only logged otherwise."""
        gateway, session = self._gateway, self._session
        if gateway is None or session is None:
            return
        self._session = None
        try:
            gateway.close_session(session)
            self.log.info("Closed SQL Gateway session %s", session)
        except FlinkError as err:
            if raise_errors:
                raise
            self.log.error("Could not close SQL Gateway session %s: %s", session, err)
            return
        store = context.get("task_state_store") if context is not None else None
        if store is not None and store.get(SESSION_KEY) == session:
            store.delete(SESSION_KEY)

    def _wait(self, context: Context, rest: FlinkRestHook, outcome: dict[str, Any]) -> dict[str, Any]:
        """Wait until every submitted job reaches ``wait_for``, on the worker or in the triggerer."""
        assert self.wait_for is not None
        if self.deferrable:
            self._defer(context, outcome, list(outcome["job_ids"]), time.time() + self.wait_timeout)
        check = JobStateCheck.of(_WAIT_TARGETS[self.wait_for])
        deadline = time.monotonic() + self.wait_timeout
        for job_id in outcome["job_ids"]:
            state = wait_for_job(
                rest,
                job_id,
                check,
                timeout=max(0.0, deadline - time.monotonic()),
                poll_interval=self.poll_interval,
                log=self.log,
            )
            self.log.info("Flink job %s is %s", job_id, state)
        return outcome

    def _defer(self, context: Context, outcome: dict[str, Any], pending: list[str], deadline: float) -> None:
        """Defer to the job state trigger for the first pending job.

        What the resumed task needs is also kept in an XCom (``WAIT_XCOM``): ``airflow dags test`` resumes a
        deferred task with the trigger's event only, without the ``kwargs`` given here.
        """
        assert self.wait_for is not None
        context["ti"].xcom_push(key=WAIT_XCOM, value={"outcome": outcome, "deadline": deadline})
        self.defer(
            trigger=FlinkJobStateTrigger(
                job_id=pending[0],
                flink_conn_id=self.flink_conn_id,
                target_states=_WAIT_TARGETS[self.wait_for],
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            kwargs={"outcome": outcome, "pending": pending[1:], "deadline": deadline},
            timeout=timedelta(seconds=max(1.0, deadline - time.time()) + 60),
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        outcome: dict[str, Any] | None = None,
        pending: list[str] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger fired: fail with its error, wait for the next job, or return.

        :param event: the trigger's event.
        :param outcome: the script's outcome; read from the ``WAIT_XCOM`` XCom when not given.
        :param pending: jobs still to wait for; by default those after the event's job.
        :param deadline: the wait's deadline (epoch seconds); read from the XCom when not given.
        """
        error = error_from_event(event)
        if error is not None:
            raise error
        self.log.info("Flink job %s is %s", event.get("job_id"), event.get("state"))
        if outcome is None or deadline is None:
            ti = context["ti"]
            kept = ti.xcom_pull(task_ids=ti.task_id, key=WAIT_XCOM, map_indexes=ti.map_index)
            outcome, deadline = kept["outcome"], kept["deadline"]
        if pending is None:
            job_ids = list(outcome["job_ids"])
            pending = job_ids[job_ids.index(event["job_id"]) + 1 :] if event.get("job_id") in job_ids else []
        if pending:
            self._defer(context, outcome, pending, deadline)
        return outcome

    def on_kill(self) -> None:
        """Close the gateway session; with ``cancel_on_kill``, also cancel the jobs this try submitted or
        attached to."""
        try:
            if self.cancel_on_kill and self._submitted:
                rest = self._rest_hook()
                for job_id in self._submitted:
                    self.log.info("Task killed: cancelling Flink job %s", job_id)
                    rest.cancel_job(job_id)
        finally:
            self._close_session(raise_errors=False)


def _option_value(value: Any) -> str:
    """A Flink option value as the string Flink parses (booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
