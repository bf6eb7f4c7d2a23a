"""Wait for a Flink job to reach a state: poke, reschedule or deferrable."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_flink_provider.operators.common import require_job_id
from airflow_flink_provider.protocol.job_state import JobStateCheck, Verdict, wait_for_job_state
from airflow_flink_provider.sensors.base import FlinkRestSensor
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event

if TYPE_CHECKING:
    from airflow.sdk import Context


class FlinkJobStateSensor(FlinkRestSensor):
    """Wait until a Flink job reaches one of ``target_states``; fail when it reaches a failure state.

    A job counts as RUNNING only once all its tasks run (a job waiting for slots does not). A job in a
    failure state, or in a terminal state that is not a target (e.g. FINISHED while waiting for RUNNING),
    raises :class:`~airflow_flink_provider.protocol.errors.FlinkJobFailedError` with the root cause from the
    job's exception history. Returns the state reached (XCom). Each poke, and the trigger, runs the one wait
    exchange (:func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`). A failed task can be
    retried selectively with :class:`~airflow_flink_provider.retry.FlinkRetryPolicy`.

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
    :param deferrable: wait in the triggerer (polling every ``poke_interval`` seconds); default: Airflow's
        ``[operators] default_deferrable``.
    :param cancel_on_kill: in deferrable mode, cancel the job when a user kills the deferred task.
    :param flink_conn_id: the ``flink`` REST connection.
    :param outage_budget: seconds an API outage may last before the wait fails; ``None`` for the connection's
        ``outage_budget`` extra (default 60).
    """

    template_fields: Sequence[str] = ("job_id",)

    def __init__(
        self,
        *,
        job_id: str,
        target_states: Collection[str] = ("RUNNING",),
        failure_states: Collection[str] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = False,
        flink_conn_id: str = "flink_default",
        outage_budget: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(deferrable=deferrable, flink_conn_id=flink_conn_id, outage_budget=outage_budget, **kwargs)
        self.job_id = job_id
        self.check = JobStateCheck.of(target_states, failure_states)
        self.target_states = sorted(state.value for state in self.check.target_states)
        self.failure_states = sorted(state.value for state in self.check.failure_states)
        self.cancel_on_kill = cancel_on_kill
        self._last_verdict: Verdict | None = None

    def trigger(self, deadline: float) -> FlinkJobStateTrigger:
        """The job-state trigger.

        :param deadline: epoch seconds when the wait times out.
        """
        return FlinkJobStateTrigger(
            job_id=require_job_id(self.job_id),
            flink_conn_id=self.flink_conn_id,
            target_states=self.target_states,
            failure_states=self.failure_states,
            poll_interval=self.poke_interval,
            deadline=deadline,
            cancel_on_kill=self.cancel_on_kill,
            outage_budget=self.outage_budget,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """Check the job once; an API outage within its budget is another poke later."""
        job_id = require_job_id(self.job_id)
        self.note_job(context, job_id)
        store = context.get("task_state_store") if self.reschedule else None
        outage = self.outage_record(store)
        verdict = self.hook.run(
            wait_for_job_state(
                job_id, self.check, timeout=None, poll_interval=0, polls=1, outage=outage,
                previous=self._last_verdict, log=self.log,
            )
        )  # fmt: skip
        self.keep_outage(store, outage)
        self._last_verdict = verdict
        return PokeReturnValue(is_done=verdict.outcome == "reached", xcom_value=verdict.state)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: fail with its error or return the state reached."""
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(str(event.get("message")))
        error = error_from_event(event)
        if error is not None:
            raise error
        self.log.info("Flink job %s is %s", event.get("job_id"), event.get("state"))
        return str(event["state"])
