"""Wait for a Flink job to reach a state: poke, reschedule or deferrable."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.common import job_failed_error, push_job_id, require_job_id
from airflow_flink_provider.triggers.job_state import (
    FlinkJobStateTrigger,
    JobStateCheck,
    Verdict,
    error_from_event,
    may_be_stuck,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook


class FlinkJobStateSensor(BaseSensorOperator):
    """Wait until a Flink job reaches one of ``target_states``; fail when it reaches a failure state.

    A job counts as RUNNING only once all its tasks run (a job waiting for slots does not). A job in a
    failure state, or in a terminal state that is not a target (e.g. FINISHED while waiting for RUNNING),
    raises :class:`~airflow_flink_provider.protocol.errors.FlinkJobFailedError` with the root cause from the
    job's exception history. Returns the state reached (XCom).

    :param job_id: the Flink job id (templated).
    :param target_states: states that end the wait successfully.
    :param failure_states: states that fail it; default FAILED, FAILING, CANCELED, CANCELLING, SUSPENDED.
    :param deferrable: wait in the triggerer (polling every ``poke_interval`` seconds).
    :param cancel_on_kill: in deferrable mode, cancel the job when a user kills the deferred task.
    :param flink_conn_id: the ``flink`` REST connection.
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
        self._last_verdict: Verdict | None = None

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once."""
        job_id = require_job_id(self.job_id)
        push_job_id(context, job_id)
        hook = self._rest_hook()
        verdict = self.check.evaluate(hook.get_job_overview(job_id))
        if verdict.outcome == "failed":
            raise job_failed_error(hook, job_id, verdict.state)
        if may_be_stuck(verdict, self._last_verdict):  # the previous poke's verdict, in poke mode
            hook.check_job(job_id)  # raises FlinkResourceError for a job that cannot get its slots
        self._last_verdict = verdict
        if verdict.waiting_tasks:
            self.log.info(
                "Flink job %s is RUNNING but these tasks are not: %s", job_id, ", ".join(verdict.waiting_tasks)
            )
        else:
            self.log.info("Flink job %s is %s (waiting for %s)", job_id, verdict.state, self.target_states)
        return PokeReturnValue(is_done=verdict.outcome == "reached", xcom_value=verdict.state)

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
