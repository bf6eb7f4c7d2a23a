"""Wait for a Flink job to reach a state, asynchronously, in the triggerer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_flink_provider.protocol import errors
from airflow_flink_provider.protocol.errors import FlinkError, FlinkJobFailedError, FlinkTimeoutError
from airflow_flink_provider.protocol.job_state import JobStateCheck, timeout_message, wait_for_job_state
from airflow_flink_provider.protocol.outage import Outage
from airflow_flink_provider.triggers.shared_poll import JobView, shared_view

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.transport import AsyncTransport


class FlinkJobStateTrigger(BaseTrigger):
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

    :param job_id: the Flink job id.
    :param flink_conn_id: the ``flink`` connection of the REST API.
    :param target_states: states that end the wait successfully.
    :param failure_states: states that end it with an error; ``None`` for the defaults.
    :param poll_interval: seconds between polls.
    :param deadline: epoch seconds after which the wait times out; ``None`` for no limit. Absolute, so a
        trigger restarted in another triggerer keeps the original deadline.
    :param cancel_on_kill: cancel the job when a user kills the deferred task (mark failed/success, clear).
    :param outage_budget: seconds an API outage may last; ``None`` for the connection's ``outage_budget``.
    """

    def __init__(
        self,
        *,
        job_id: str,
        flink_conn_id: str = "flink_default",
        target_states: Collection[str] = ("RUNNING",),
        failure_states: Collection[str] | None = None,
        poll_interval: float = 5.0,
        deadline: float | None = None,
        cancel_on_kill: bool = False,
        outage_budget: float | None = None,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.flink_conn_id = flink_conn_id
        self.check = JobStateCheck.of(target_states, failure_states)
        self.poll_interval = float(poll_interval)
        self.deadline = deadline
        self.cancel_on_kill = cancel_on_kill
        self.outage_budget = validate_outage_budget(outage_budget)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain keyword arguments to rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "flink_conn_id": self.flink_conn_id,
                "target_states": sorted(state.value for state in self.check.target_states),
                "failure_states": sorted(state.value for state in self.check.failure_states),
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "outage_budget": self.outage_budget,
            },
        )

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
        budget = view.config.outage_budget if self.outage_budget is None else self.outage_budget
        outage = Outage(budget, what=f"Flink REST API at {view.config.base_url}", log=self.log)
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.time())
        event: dict[str, Any] = {"job_id": self.job_id}
        try:
            verdict = await view.run(
                wait_for_job_state(
                    self.job_id,
                    self.check,
                    timeout=timeout,
                    poll_interval=self.poll_interval,
                    outage=outage,
                    log=self.log,
                )
            )
        except FlinkJobFailedError as err:
            return {**event, "status": "failed", "state": err.state, "root_cause": err.root_cause}
        except FlinkError as err:
            return {
                **event,
                "status": "error",
                "message": err.message,
                "error_type": type(err).__name__,
                "root_cause": err.root_cause,
                "hint": err.hint,
                "http_status": err.status,
            }
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


def validate_outage_budget(value: float | None) -> float | None:
    """An explicit outage budget as seconds (``None``: the connection's).

    :param value: the value given to a sensor or trigger.
    :raises ValueError: it is not a finite number >= 0.
    """
    if value is None:
        return None
    try:
        budget = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"outage_budget must be a number of seconds, got {value!r}") from None
    if not 0 <= budget < float("inf"):
        raise ValueError(f"outage_budget must be a finite number of seconds >= 0, got {value!r}")
    return budget


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
