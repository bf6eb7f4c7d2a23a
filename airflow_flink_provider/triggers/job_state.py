"""Wait for a Flink job to reach a state, asynchronously, in the triggerer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any, Unpack

from airflow.triggers.base import TriggerEvent

from airflow_flink_provider.protocol import errors
from airflow_flink_provider.protocol.errors import FlinkError, FlinkJobFailedError, FlinkTimeoutError
from airflow_flink_provider.protocol.job_state import JobStateCheck, timeout_message, wait_for_job_state
from airflow_flink_provider.triggers.base import FlinkJobTrigger, JobTriggerArguments, error_event
from airflow_flink_provider.triggers.shared_poll import JobView, shared_view

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.transport import AsyncTransport


class FlinkJobStateTrigger(FlinkJobTrigger):
    """Poll a Flink job until it reaches a target state, a failure state, or the deadline.

    Runs the one wait exchange (:func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`), as the
    operators and the sensor do, on the shared poll of its connection
    (:mod:`~airflow_flink_provider.triggers.shared_poll`): the triggers of one connection in a triggerer share one
    ``GET /jobs/overview`` per interval and one keep-alive HTTP client; each keeps its own deadline, outage
    budget and event, and a trigger alone (``airflow dags test``) polls as before. Events (payload dicts,
    plain values only): ``{"status": "success", "job_id", "state"}``,
    ``{"status": "failed", "job_id", "state", "root_cause"}``, ``{"status": "timeout", "job_id", "state",
    "message"}`` and ``{"status": "error", "job_id", "message", "error_type", "root_cause", "hint",
    "http_status"}`` (e.g. a job stuck without slots: ``FlinkResourceError``). :func:`error_from_event` turns
    them back into exceptions.

    It polls every ``poll_interval`` seconds, the last time at the deadline; no retry of a poll runs past the
    deadline. An outage of the REST API (refused connections, timeouts, 429/5xx such as the 503 Flink answers
    during a leader election) is ridden out for up to ``outage_budget`` seconds from the first failed poll; a
    longer one ends the wait with an error event that names the last HTTP status and how long the outage
    lasted. A triggerer that restarts the trigger starts a new outage window.

    :param target_states: states that end the wait successfully.
    :param failure_states: states that end it with an error; ``None`` for the defaults.
    :param cancel_on_kill: cancel the job when a user kills the deferred task (mark failed/success, clear).
    :param common: the job and how to watch it (:class:`~airflow_flink_provider.triggers.base.FlinkJobTrigger`):
        ``job_id``, ``flink_conn_id``, ``poll_interval``, ``deadline`` and ``outage_budget``.
    """

    def __init__(
        self,
        *,
        target_states: Collection[str] = ("RUNNING",),
        failure_states: Collection[str] | None = None,
        cancel_on_kill: bool = False,
        **common: Unpack[JobTriggerArguments],
    ) -> None:
        super().__init__(**common)
        self.check = JobStateCheck.of(target_states, failure_states)
        self.cancel_on_kill = cancel_on_kill

    def own_arguments(self) -> dict[str, Any]:
        """The states that end the wait and ``cancel_on_kill``, as plain values."""
        return {
            "target_states": sorted(state.value for state in self.check.target_states),
            "failure_states": sorted(state.value for state in self.check.failure_states),
            "cancel_on_kill": self.cancel_on_kill,
        }

    async def _transport(self) -> AsyncTransport:
        """An async transport for the connection (the caller closes it)."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return await FlinkRestHook.aget_async_transport(self.flink_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the job on the shared overview poll until it reaches a target or failure state, or the deadline."""
        async with shared_view(self.flink_conn_id, self.job_id, self.poll_interval, self._transport) as view:
            payload = await self._wait(view)
        yield TriggerEvent(payload)

    async def _wait(self, view: JobView) -> dict[str, Any]:
        """Run the wait exchange; returns the event's payload."""
        outage = self.outage(view.config)
        event: dict[str, Any] = {"job_id": self.job_id}
        try:
            verdict = await view.run(
                wait_for_job_state(
                    self.job_id,
                    self.check,
                    timeout=self.time_left(),
                    poll_interval=self.poll_interval,
                    outage=outage,
                    log=self.log,
                )
            )
        except FlinkJobFailedError as err:
            return {**event, "status": "failed", "state": err.state, "root_cause": err.root_cause}
        except FlinkError as err:
            return error_event(self.job_id, err)
        if verdict.outcome == "reached":
            return {**event, "status": "success", "state": verdict.state}
        message = timeout_message(self.job_id, self.check, verdict, "before the deadline", outage)
        return {**event, "status": "timeout", "state": verdict.state or None, "message": message}

    async def on_kill(self) -> None:
        """Cancel the job when ``cancel_on_kill`` is set and a user killed the deferred task."""
        if not self.cancel_on_kill:
            return
        from airflow_flink_provider.protocol import rest

        self.log.info("Task killed: cancelling Flink job %s", self.job_id)
        async with await self._transport() as transport:
            await transport.run(rest.cancel_job(self.job_id))


def error_from_event(event: Mapping[str, Any]) -> FlinkError | None:
    """The error a :class:`FlinkJobStateTrigger` event stands for, or ``None`` for success.

    :param event: the event payload the task was resumed with.
    """
    status = event.get("status")
    if status == "success":
        return None
    job_id = str(event.get("job_id"))
    if status == "failed":
        return errors.job_failed_error(job_id, event.get("root_cause"), state=str(event.get("state")))
    message = str(event.get("message") or f"unexpected event from the Flink job trigger: {dict(event)}")
    if status == "timeout":
        return FlinkTimeoutError(message)
    cls = getattr(errors, str(event.get("error_type")), None)
    if not (isinstance(cls, type) and issubclass(cls, FlinkError)):
        cls = FlinkError
    status = event.get("http_status")
    return cls(
        message,
        root_cause=event.get("root_cause"),
        hint=event.get("hint"),
        status=status if isinstance(status, int) else None,
    )
