"""Wait for a Flink job to reach a state: poke, reschedule or deferrable."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_flink_provider.hooks.transport import deadline as request_deadline
from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.common import job_failed_error, push_job_id, require_job_id
from airflow_flink_provider.protocol.errors import FlinkError
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.triggers.job_state import (
    FlinkJobStateTrigger,
    JobStateCheck,
    Verdict,
    error_from_event,
    may_be_stuck,
    validate_outage_budget,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

OUTAGE_KEY = "flink_outage_started"
"""Task state store key of the start (epoch seconds) of an API outage under way, in reschedule mode."""


class FlinkJobStateSensor(BaseSensorOperator):
    """Wait until a Flink job reaches one of ``target_states``; fail when it reaches a failure state.

    A job counts as RUNNING only once all its tasks run (a job waiting for slots does not). A job in a
    failure state, or in a terminal state that is not a target (e.g. FINISHED while waiting for RUNNING),
    raises :class:`~airflow_flink_provider.protocol.errors.FlinkJobFailedError` with the root cause from the
    job's exception history. Returns the state reached (XCom).

    An outage of the REST API (refused connections, timeouts, 429/5xx such as the 503 Flink answers during a
    leader election) does not fail the wait until it has lasted ``outage_budget`` seconds, counted from the first
    failed poke; then the error names the last HTTP status and how long the outage lasted. Where the outage's
    start is kept:

    * ``poke`` mode: on the sensor, which lives for the whole try;
    * ``reschedule`` mode: in the task state store (``flink_outage_started``, epoch seconds), since each poke
      runs in a new process; it is deleted when the API answers again (without a store in the context, each
      poke is its own window);
    * deferrable: the trigger keeps it while it polls (a restarted triggerer starts a new window).

    :param job_id: the Flink job id (templated).
    :param target_states: states that end the wait successfully.
    :param failure_states: states that fail it; default FAILED, FAILING, CANCELED, CANCELLING, SUSPENDED.
    :param deferrable: wait in the triggerer (polling every ``poke_interval`` seconds).
    :param cancel_on_kill: in deferrable mode, cancel the job when a user kills the deferred task.
    :param flink_conn_id: the ``flink`` REST connection.
    :param outage_budget: seconds an API outage may last before the wait fails; ``None`` for the connection's
        ``outage_budget`` extra (default 60).
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#eaf5e9"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(
        self,
        *,
        job_id: str,
        target_states: Collection[str] = ("RUNNING",),
        failure_states: Collection[str] | None = None,
        deferrable: bool = False,
        cancel_on_kill: bool = False,
        flink_conn_id: str = "flink_default",
        outage_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.check = JobStateCheck.of(target_states, failure_states)
        self.target_states = sorted(self.check.target_states)
        self.failure_states = sorted(self.check.failure_states)
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.flink_conn_id = flink_conn_id
        self.outage_budget = validate_outage_budget(outage_budget)
        self._last_verdict: Verdict | None = None
        self._outage: Outage | None = None

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once; an API outage within its budget is another poke later."""
        job_id = require_job_id(self.job_id)
        push_job_id(context, job_id)
        hook = self._rest_hook()
        polled = time.time()
        try:
            with request_deadline(None if self._outage is None else self._outage.deadline()):
                verdict = self.check.evaluate(hook.get_job_overview(job_id))
                if verdict.outcome == "failed":
                    raise job_failed_error(hook, job_id, verdict.state)
                if may_be_stuck(verdict, self._last_verdict):  # the previous poke's verdict, in poke mode
                    hook.check_job(job_id)  # raises FlinkResourceError for a job that cannot get its slots
        except FlinkError as error:
            self._outage_failed(context, hook, error, polled)  # raises unless the outage is within its budget
            return PokeReturnValue(is_done=False)
        self._outage_ended(context)
        self._last_verdict = verdict
        if verdict.waiting_tasks:
            self.log.info(
                "Flink job %s is RUNNING but these tasks are not: %s", job_id, ", ".join(verdict.waiting_tasks)
            )
        else:
            self.log.info("Flink job %s is %s (waiting for %s)", job_id, verdict.state, self.target_states)
        return PokeReturnValue(is_done=verdict.outcome == "reached", xcom_value=verdict.state)

    def _outage_failed(self, context: Context, hook: FlinkRestHook, error: FlinkError, polled: float) -> None:
        """Record a failed poke in the outage under way (kept on the sensor, or in the task state store)."""
        if not error.retryable:
            raise error
        store = self._outage_store(context)
        if self._outage is None or store is not None:
            config = hook.transport_config
            self._outage = Outage(
                config.outage_budget if self.outage_budget is None else self.outage_budget,
                what=f"Flink REST API at {config.base_url}",
                log=self.log,
                clock=time.time,
                started=_stored_start(store),
            )
        under_way = self._outage.started is not None
        self._outage.failed(error, since=polled)
        if store is not None and not under_way:
            store.set(OUTAGE_KEY, self._outage.started)

    def _outage_ended(self, context: Context) -> None:
        """The API answered: end the outage under way, if any."""
        store = self._outage_store(context)
        started = _stored_start(store)
        if store is not None and started is not None:
            what = f"Flink REST API of connection {self.flink_conn_id!r}"
            Outage(0, what=what, log=self.log, clock=time.time, started=started).recovered()
            store.delete(OUTAGE_KEY)
        elif self._outage is not None:
            self._outage.recovered()
        self._outage = None

    def _outage_store(self, context: Context) -> Any:
        """The task state store that keeps an outage's start between reschedule pokes (``None`` in poke mode)."""
        return context.get("task_state_store") if self.reschedule else None

    def execute(self, context: Context) -> Any:
        """Poke or reschedule as usual; when deferrable, check once and then defer to the trigger."""
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        self.defer(
            trigger=FlinkJobStateTrigger(
                job_id=require_job_id(self.job_id),
                flink_conn_id=self.flink_conn_id,
                target_states=self.target_states,
                failure_states=self.failure_states,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                cancel_on_kill=self.cancel_on_kill,
                outage_budget=self.outage_budget,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 60),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: fail with its error or return the state reached."""
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        error = error_from_event(event)
        if error is not None:
            raise error
        self.log.info("Flink job %s is %s", event.get("job_id"), event.get("state"))
        return str(event["state"])


def _stored_start(store: Any) -> float | None:
    """The start of the outage under way kept in a task state store (``None``: none, or no store)."""
    value = None if store is None else store.get(OUTAGE_KEY)
    return float(value) if isinstance(value, int | float) else None
