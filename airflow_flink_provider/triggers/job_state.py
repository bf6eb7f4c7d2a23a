"""Wait for a Flink job to reach a state, asynchronously, in the triggerer.

The state rules (:class:`JobStateCheck`) live here too, so the sensor, the waiting operators and the
trigger judge a job the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_flink_provider.protocol import errors
from airflow_flink_provider.protocol.errors import FlinkError, FlinkTimeoutError
from airflow_flink_provider.protocol.outage import Outage

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.transport import AsyncTransport

GLOBALLY_TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})
"""States a Flink job never leaves."""

DEFAULT_FAILURE_STATES = frozenset({"FAILED", "FAILING", "CANCELED", "CANCELLING", "SUSPENDED"})
"""States that end a wait with an error unless they are targets."""

KNOWN_STATES = frozenset(
    {
        "INITIALIZING",
        "CREATED",
        "RUNNING",
        "FAILING",
        "FAILED",
        "CANCELLING",
        "CANCELED",
        "FINISHED",
        "RESTARTING",
        "SUSPENDED",
        "RECONCILING",
    }
)
"""Every ``JobStatus`` of Flink 2.x."""

_TASK_DONE = frozenset({"RUNNING", "FINISHED"})

Outcome = Literal["reached", "failed", "waiting"]


@dataclass(frozen=True)
class Verdict:
    """How a job stands against a :class:`JobStateCheck`.

    :param outcome: ``reached`` (a target state), ``failed`` (a failure state, or a terminal state that is
        not a target) or ``waiting``.
    :param state: the job's state as Flink reports it.
    :param waiting_tasks: for a RUNNING job, what is not running yet (e.g. waiting for slots): vertex names
        from job details, or a count summary such as ``2 of 4 tasks (SCHEDULED 2)`` from an overview entry.
    """

    outcome: Outcome
    state: str
    waiting_tasks: tuple[str, ...] = ()


def normalize_states(states: Iterable[str], what: str) -> frozenset[str]:
    """Upper-case job states and reject unknown ones.

    :param states: state names, any case.
    :param what: what they are, for the error message.
    :raises ValueError: on a state Flink does not have.
    """
    if isinstance(states, str):
        states = [states]
    normalized = frozenset(str(state).strip().upper() for state in states)
    unknown = normalized - KNOWN_STATES
    if unknown:
        raise ValueError(f"unknown Flink job state(s) in {what}: {sorted(unknown)}; known: {sorted(KNOWN_STATES)}")
    return normalized


@dataclass(frozen=True)
class JobStateCheck:
    """Target and failure states of a wait.

    A RUNNING job only counts as RUNNING once every subtask runs (or has finished): a job whose tasks
    still wait for slots is not running yet.

    :param target_states: states that end the wait successfully.
    :param failure_states: states that end it with an error (targets win over failures).
    """

    target_states: frozenset[str]
    failure_states: frozenset[str] = DEFAULT_FAILURE_STATES

    @classmethod
    def of(cls, target_states: Iterable[str], failure_states: Iterable[str] | None = None) -> JobStateCheck:
        """Build a check from user input, validating the state names.

        :param target_states: states that end the wait successfully.
        :param failure_states: states that fail it; ``None`` for :data:`DEFAULT_FAILURE_STATES`.
        """
        targets = normalize_states(target_states, "target_states")
        if not targets:
            raise ValueError("target_states must not be empty")
        failures = (
            DEFAULT_FAILURE_STATES if failure_states is None else normalize_states(failure_states, "failure_states")
        )
        return cls(targets, failures - targets)

    def evaluate(self, job: Mapping[str, Any]) -> Verdict:
        """Judge a job from its ``/jobs/overview`` entry or its ``GET /jobs/{id}`` details.

        :param job: the job's ``state`` and, for the RUNNING check, its task counts (``tasks`` of an overview
            entry) or its ``vertices`` (details).
        """
        state = str(job.get("state", "")).upper()
        if state == "RUNNING" and "RUNNING" in self.target_states:
            waiting = _waiting_tasks(job)
            return Verdict("waiting" if waiting else "reached", state, waiting)
        if state in self.target_states:
            return Verdict("reached", state)
        if state in self.failure_states or state in GLOBALLY_TERMINAL_STATES:
            return Verdict("failed", state)
        return Verdict("waiting", state)


def _waiting_tasks(job: Mapping[str, Any]) -> tuple[str, ...]:
    """What of a RUNNING job does not run yet: vertex names (details), or a count summary (overview entry).

    :param job: an overview entry (``tasks`` with lower-case state counts and ``total``) or job details.
    """
    tasks = job.get("tasks")
    if "vertices" in job or not isinstance(tasks, Mapping):
        return tuple(
            f"{vertex.get('name', '?')} ({vertex.get('status', '?')})"
            for vertex in job.get("vertices") or ()
            if not _vertex_running(vertex)
        )
    total = int(tasks.get("total") or 0)
    done = sum(int(tasks.get(task_state.lower()) or 0) for task_state in _TASK_DONE)
    if total > 0 and done >= total:
        return ()
    others = ", ".join(
        f"{str(task_state).upper()} {count}"
        for task_state, count in sorted(tasks.items())
        if count and str(task_state).upper() not in _TASK_DONE and task_state != "total"
    )
    return (f"{total - done} of {total} tasks ({others or 'none yet'})",)


def _vertex_running(vertex: Mapping[str, Any]) -> bool:
    """Whether all subtasks of a job vertex run (or have finished)."""
    tasks = vertex.get("tasks")
    if isinstance(tasks, Mapping) and vertex.get("parallelism"):
        busy = sum(int(count) for task_state, count in tasks.items() if str(task_state).upper() in _TASK_DONE)
        return busy >= int(vertex["parallelism"])
    return str(vertex.get("status", "")).upper() in _TASK_DONE


def may_be_stuck(verdict: Verdict, previous: Verdict | None) -> bool:
    """Whether a waiting job may lack slots: worth checking its root cause (``check_job``).

    That is a RESTARTING job, or one whose tasks do not all run and did not move since the previous poll
    (tasks that are starting change state from one poll to the next, so they cost no extra requests).

    :param verdict: the job's verdict now.
    :param previous: its verdict at the previous poll, ``None`` when unknown (then it is checked).
    """
    if verdict.outcome != "waiting":
        return False
    if verdict.state == "RESTARTING":
        return True
    return bool(verdict.waiting_tasks) and (previous is None or previous == verdict)


class FlinkJobStateTrigger(BaseTrigger):
    """Poll a Flink job until it reaches a target state, a failure state, or the deadline.

    Runs the same protocol exchanges as :class:`~airflow_flink_provider.hooks.flink_rest.FlinkRestHook`
    over one async transport (one keep-alive HTTP client, closed when the trigger ends). Events (payload
    dicts, plain values only): ``{"status": "success", "job_id", "state"}``,
    ``{"status": "failed", "job_id", "state", "root_cause"}``, ``{"status": "timeout", "job_id", "state",
    "message"}`` and ``{"status": "error", "job_id", "message", "error_type", "root_cause", "hint",
    "http_status"}`` (e.g. a job stuck without slots: ``FlinkResourceError``). :func:`error_from_event` turns
    them back into exceptions.

    It polls every ``poll_interval`` seconds, the last time at the deadline; no retry of a poll runs past
    the deadline. An outage of the REST API (refused connections,
    timeouts, 429/5xx such as the 503 Flink answers during a leader election) is ridden out for up to
    ``outage_budget`` seconds from the first failed poll; a longer one ends the wait with an error event that
    names the last HTTP status and how long the outage lasted. A triggerer that restarts the trigger starts a
    new outage window.

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
                "target_states": sorted(self.check.target_states),
                "failure_states": sorted(self.check.failure_states),
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
        """Poll ``/jobs/overview`` until the job reaches a target or failure state, or the deadline."""
        transport = await self._transport()
        try:
            payload = await self._wait(transport)
        finally:
            await transport.aclose()
        yield TriggerEvent(payload)

    def _seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    async def _wait(self, transport: AsyncTransport) -> dict[str, Any]:
        """Poll until there is something to report; returns the event's payload."""
        from airflow_flink_provider.hooks.transport import deadline as request_deadline
        from airflow_flink_provider.protocol import rest

        budget = transport.config.outage_budget if self.outage_budget is None else self.outage_budget
        outage = Outage(budget, what=f"Flink REST API at {transport.config.base_url}", log=self.log)
        last_state: str | None = None
        last_verdict: Verdict | None = None
        try:
            while True:
                polled = time.monotonic()
                left = self._seconds_left()
                try:
                    with request_deadline(outage.deadline(None if left is None else polled + left)):
                        verdict = self.check.evaluate(await transport.run(rest.get_job_overview(self.job_id)))
                        outage.recovered()
                        if verdict.state != last_state:
                            self.log.info("Flink job %s: %s -> %s", self.job_id, last_state or "-", verdict.state)
                            last_state = verdict.state
                        if verdict.outcome == "reached":
                            return {"status": "success", "job_id": self.job_id, "state": verdict.state}
                        if verdict.outcome == "failed":
                            cause = await transport.run(rest.get_root_cause(self.job_id))
                            return {
                                "status": "failed",
                                "job_id": self.job_id,
                                "state": verdict.state,
                                "root_cause": cause,
                            }
                        if may_be_stuck(verdict, last_verdict):
                            self.log.info(
                                "Flink job %s is %s; tasks not running: %s",
                                self.job_id,
                                verdict.state,
                                ", ".join(verdict.waiting_tasks) or "-",
                            )
                            await transport.run(rest.check_job(self.job_id))
                except FlinkError as err:
                    outage.failed(err, since=polled)  # raises unless the outage is within its budget
                else:
                    last_verdict = verdict
                left = self._seconds_left()
                if left is not None and left <= 0:
                    return {
                        "status": "timeout",
                        "job_id": self.job_id,
                        "state": last_state,
                        "message": f"Flink job {self.job_id} did not reach {sorted(self.check.target_states)} "
                        f"before the deadline; last state: {last_state}{outage.summary()}",
                    }
                await asyncio.sleep(self.poll_interval if left is None else min(self.poll_interval, left))
        except FlinkError as err:
            return {
                "status": "error",
                "job_id": self.job_id,
                "message": err.message,
                "error_type": type(err).__name__,
                "root_cause": err.root_cause,
                "hint": err.hint,
                "http_status": err.status,
            }

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
