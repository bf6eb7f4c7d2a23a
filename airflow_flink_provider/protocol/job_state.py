"""Flink job states, and waiting for one: the one vocabulary of the operators, sensors, triggers and DAGs.

:class:`JobState` names every ``JobStatus`` of Flink 2.x and says what each means for orchestration, the way
Databricks' ``RunState`` does for runs (:attr:`~JobState.is_terminal`, :attr:`~JobState.is_alive`,
:attr:`~JobState.is_failed`, :attr:`~JobState.is_ending`). :func:`waiting_tasks` is the one definition of
"all tasks running". :func:`wait_for_job_state` is the one wait: an exchange that polls a job until it reaches
a target state, riding out an API outage up to its budget, run by the sync transport (operators, poke
sensors) and the async one (the trigger).

SUSPENDED is neither terminal nor alive. Flink calls it *locally* terminal: the JobManager that ran the job lost
its leadership or shut down without cleaning up, and the job stays in the HA job store, so a new leader
recovers it under the same id (and Flink refuses a second job with that id). The job holds no task slots
meanwhile and will not move on its own without HA. Hence: a wait fails on it by default (it is in
:data:`DEFAULT_FAILURE_STATES`; leave it out of ``failure_states`` to wait for the recovery instead), the
health gate calls it unhealthy, and a submit that finds its id SUSPENDED attaches to it instead of starting a
second job (:attr:`JobState.is_over` is false), since the job may come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.errors import FlinkResourceError, classify, hint_for, job_failed_error
from airflow_flink_provider.protocol.http import Exchange, Sleep
from airflow_flink_provider.protocol.outage import Log, Outage, poll_until

_LOG = logging.getLogger(__name__)


class JobState(StrEnum):
    """A Flink job's state (``JobStatus``), with what it means for orchestration.

    Equal to its name as a string (``JobState.RUNNING == "RUNNING"``), so it compares with what Flink answers.
    """

    INITIALIZING = "INITIALIZING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    RESTARTING = "RESTARTING"
    SUSPENDED = "SUSPENDED"
    RECONCILING = "RECONCILING"

    @property
    def is_terminal(self) -> bool:
        """Never left: FINISHED, FAILED, CANCELED (Flink's globally terminal states)."""
        return self in (JobState.FINISHED, JobState.FAILED, JobState.CANCELED)

    @property
    def is_alive(self) -> bool:
        """Holds task slots, or will: every state but the terminal ones and SUSPENDED (see the module)."""
        return not self.is_terminal and self is not JobState.SUSPENDED

    @property
    def is_failed(self) -> bool:
        """Failed, or failing: FAILED, FAILING."""
        return self in (JobState.FAILING, JobState.FAILED)

    @property
    def is_ending(self) -> bool:
        """On the way to a terminal state (:attr:`final`): FAILING, CANCELLING."""
        return self in (JobState.FAILING, JobState.CANCELLING)

    @property
    def is_over(self) -> bool:
        """Will never run again: terminal, or ending. A job under a task's id in such a state is not attached to."""
        return self.is_terminal or self.is_ending

    @property
    def final(self) -> JobState:
        """The terminal state an ending state leads to (FAILING -> FAILED, CANCELLING -> CANCELED), else itself."""
        return {JobState.FAILING: JobState.FAILED, JobState.CANCELLING: JobState.CANCELED}.get(self, self)

    @classmethod
    def parse(cls, text: Any) -> JobState:
        """The state named by ``text`` (any case, surrounding blanks ignored).

        :param text: e.g. ``"running"``.
        :raises ValueError: naming the value and the known states.
        """
        found = cls.lookup(text)
        if found is None:
            raise ValueError(f"unknown Flink job state {text!r}; known: {', '.join(state.value for state in cls)}")
        return found

    @classmethod
    def lookup(cls, text: Any) -> JobState | None:
        """Like :meth:`parse`, but ``None`` for a name Flink 2.x does not have.

        :param text: what Flink (or a user) gave.
        """
        try:
            return cls(str(text).strip().upper())
        except ValueError:
            return None


TERMINAL = frozenset(state for state in JobState if state.is_terminal)
"""States a job never leaves."""

ALIVE = frozenset(state for state in JobState if state.is_alive)
"""States of a job that holds (or will hold) task slots."""

ENDING = frozenset(state for state in JobState if state.is_ending)
"""States on the way to a terminal state."""

FAILED = frozenset(state for state in JobState if state.is_failed)
"""Failed or failing states."""

OVER = frozenset(state for state in JobState if state.is_over)
"""States of a job that will never run again: terminal or ending."""

DEFAULT_FAILURE_STATES = frozenset(
    state for state in JobState if (state.is_over or not state.is_alive) and state is not JobState.FINISHED
)
"""What ends a wait with an error unless it is a target: FAILED, FAILING, CANCELED, CANCELLING, SUSPENDED."""

_TASK_BUSY = ("RUNNING", "FINISHED")
"""Task states that count as "running" for a job: a finished task (a bounded source) is not waited for."""


def parse_states(states: Iterable[str] | str, what: str) -> frozenset[JobState]:
    """User-given job states, checked.

    :param states: state names, any case (one name alone is one state).
    :param what: the parameter, for the error message.
    :raises ValueError: naming an unknown state and the known ones.
    """
    names = [states] if isinstance(states, str) else list(states)
    unknown = sorted({str(name) for name in names if JobState.lookup(name) is None})
    if unknown:
        known = ", ".join(state.value for state in JobState)
        raise ValueError(f"unknown Flink job state(s) in {what}: {unknown}; known: {known}")
    return frozenset(JobState.parse(name) for name in names)


def waiting_tasks(job: Mapping[str, Any]) -> tuple[str, ...]:
    """What of a job does not run yet: empty when every task runs (or has finished).

    The one definition of "all tasks running", for both shapes Flink answers:

    - an entry of ``GET /jobs/overview``: ``tasks`` holds counts per (lower-case) task state and ``total``;
      the answer is a count summary such as ``("3 of 4 tasks (SCHEDULED 3)",)``. No tasks at all (``total``
      0) is not running yet.
    - job details (``GET /jobs/{id}``): ``vertices`` with their ``parallelism`` and ``tasks`` counts (or
      only a ``status``); the answer names each vertex that does not run, e.g. ``("Source: orders
      (SCHEDULED)",)``.

    :param job: an overview entry or job details.
    """
    tasks = job.get("tasks")
    if "vertices" in job or not isinstance(tasks, Mapping):
        return tuple(
            f"{vertex.get('name', '?')} ({vertex.get('status', '?')})"
            for vertex in job.get("vertices") or ()
            if not _vertex_running(vertex)
        )
    total = int(tasks.get("total") or 0)
    busy = sum(int(tasks.get(task_state.lower()) or 0) for task_state in _TASK_BUSY)
    if total > 0 and busy >= total:
        return ()
    others = ", ".join(
        f"{str(task_state).upper()} {count}"
        for task_state, count in sorted(tasks.items())
        if count and str(task_state).upper() not in _TASK_BUSY and task_state != "total"
    )
    return (f"{total - busy} of {total} tasks ({others or 'none yet'})",)


def all_tasks_running(job: Mapping[str, Any]) -> bool:
    """Whether every task of the job runs or has finished (see :func:`waiting_tasks`).

    :param job: an overview entry or job details.
    """
    return not waiting_tasks(job)


def _vertex_running(vertex: Mapping[str, Any]) -> bool:
    """Whether all subtasks of a job vertex run (or have finished)."""
    tasks = vertex.get("tasks")
    if isinstance(tasks, Mapping) and vertex.get("parallelism"):
        busy = sum(int(count) for task_state, count in tasks.items() if str(task_state).upper() in _TASK_BUSY)
        return busy >= int(vertex["parallelism"])
    return str(vertex.get("status", "")).upper() in _TASK_BUSY


Outcome = Literal["reached", "failed", "waiting"]


@dataclass(frozen=True)
class Verdict:
    """How a job stands against a :class:`JobStateCheck`.

    :param outcome: ``reached`` (a target state), ``failed`` (a failure state, or a terminal state that is
        not a target) or ``waiting``.
    :param state: the job's state as Flink reported it (empty when the API never answered).
    :param waiting_tasks: for a RUNNING job, what does not run yet (:func:`waiting_tasks`).
    """

    outcome: Outcome
    state: str
    waiting_tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobStateCheck:
    """Target and failure states of a wait.

    A RUNNING job only counts as RUNNING once every task runs (or has finished): a job whose tasks still
    wait for slots is not running yet.

    :param target_states: states that end the wait successfully.
    :param failure_states: states that end it with an error (targets win over failures).
    """

    target_states: frozenset[JobState]
    failure_states: frozenset[JobState] = DEFAULT_FAILURE_STATES

    @classmethod
    def of(cls, target_states: Iterable[str] | str, failure_states: Iterable[str] | None = None) -> JobStateCheck:
        """Build a check from user input, validating the state names.

        :param target_states: states that end the wait successfully.
        :param failure_states: states that fail it; ``None`` for :data:`DEFAULT_FAILURE_STATES`.
        :raises ValueError: an unknown state, or no target.
        """
        targets = parse_states(target_states, "target_states")
        if not targets:
            raise ValueError("target_states must not be empty")
        failures = DEFAULT_FAILURE_STATES if failure_states is None else parse_states(failure_states, "failure_states")
        return cls(targets, failures - targets)

    def evaluate(self, job: Mapping[str, Any]) -> Verdict:
        """Judge a job from its ``/jobs/overview`` entry or its ``GET /jobs/{id}`` details.

        A terminal state that is not a target fails the wait (it will never be left); a state Flink 2.x does
        not have is waited on.

        :param job: the job's ``state`` and, for the RUNNING check, its task counts.
        """
        text = str(job.get("state", "")).upper()
        state = JobState.lookup(text)
        if state is JobState.RUNNING and state in self.target_states:
            waiting = waiting_tasks(job)
            return Verdict("waiting" if waiting else "reached", text, waiting)
        if state in self.target_states:
            return Verdict("reached", text)
        if state is not None and (state in self.failure_states or state.is_terminal):
            return Verdict("failed", text)
        return Verdict("waiting", text)


def may_be_stuck(verdict: Verdict, previous: Verdict | None) -> bool:
    """Whether a waiting job may lack slots: worth reading its root cause (:func:`check_job`).

    That is a RESTARTING job, or one whose tasks do not all run and did not move since the previous poll
    (tasks that are starting change state from one poll to the next, so they cost no extra requests).

    :param verdict: the job's verdict now.
    :param previous: its verdict at the previous poll, ``None`` when unknown (then it is checked).
    """
    if verdict.outcome != "waiting":
        return False
    if verdict.state == JobState.RESTARTING:
        return True
    return bool(verdict.waiting_tasks) and (previous is None or previous == verdict)


def check_job(job_id: str) -> Exchange[str]:
    """The job's state, or a typed error when the job failed or cannot get its slots.

    A job that asks for more slots than the cluster has is *not* failed by Flink with a restart strategy
    in place: it cycles RUNNING (tasks SCHEDULED) -> RESTARTING, holding free slots. This exchange reports
    that as :class:`FlinkResourceError` as soon as the newest failure is ``NoResourceAvailableException``
    while the job is alive but not running all its tasks.

    :param job_id: the job.
    :raises FlinkJobFailedError: the job is FAILED (a subclass per recognised cause, e.g.
        ``FlinkJobResourceError`` which is also a :class:`FlinkResourceError`).
    :raises FlinkResourceError: the job is stuck without slots.
    """
    job = yield from rest.get_job(job_id)
    text = str(job["state"])
    state = JobState.lookup(text)
    if state is JobState.FAILED:
        raise job_failed_error(job_id, (yield from failure_cause(job_id)))
    if state is None or not state.is_alive or all_tasks_running(job):
        return text
    cause = yield from rest.get_root_cause(job_id)
    if cause and classify(cause) is FlinkResourceError:
        raise FlinkResourceError(
            f"Flink job {job_id} cannot get the task slots it needs (state {text}): {cause}",
            root_cause=cause,
            hint=hint_for(cause),
        )
    return text


CAUSE_WAIT = 5
"""Seconds a wait reads a failed job's exception history again while it has no entry yet."""


def failure_cause(job_id: str) -> Exchange[str | None]:
    """The root cause of a job the live overview shows failed.

    ``GET /jobs/{id}/exceptions`` is served from a cache refreshed every ``web.refresh-interval`` (3 s by
    default), so a job seen FAILED a moment ago may have no entry there yet: it is read again every second for
    up to :data:`CAUSE_WAIT` seconds.

    :param job_id: the job.
    :return: the root cause, or ``None`` when the history stays empty.
    """
    for _ in range(CAUSE_WAIT):
        cause = yield from rest.get_root_cause(job_id)
        if cause:
            return cause
        yield Sleep(1.0)
    return (yield from rest.get_root_cause(job_id))


def poll_job(job_id: str, check: JobStateCheck, previous: Verdict | None = None) -> Exchange[Verdict]:
    """One look at a job during a wait: its live overview entry, and more only when something is wrong.

    :param job_id: the job.
    :param check: target and failure states.
    :param previous: the verdict of the previous poll (a job whose tasks did not move is checked for slots).
    :raises FlinkJobFailedError: the job is in a failure state (typed and worded by its root cause).
    :raises FlinkResourceError: the job's tasks cannot get slots.
    """
    verdict = check.evaluate((yield from rest.get_job_overview(job_id)))
    if verdict.outcome == "failed":
        cause = yield from failure_cause(job_id)
        raise job_failed_error(job_id, cause, state=verdict.state)
    if may_be_stuck(verdict, previous):
        yield from check_job(job_id)
    return verdict


def wait_for_job_state(
    job_id: str,
    check: JobStateCheck,
    *,
    timeout: float | None,
    poll_interval: float,
    outage_budget: float = 60.0,
    outage: Outage | None = None,
    polls: int | None = None,
    previous: Verdict | None = None,
    log: Log = _LOG,
    clock: Callable[[], float] = time.monotonic,
    api: str = "Flink REST API",
) -> Exchange[Verdict]:
    """Poll a job until it reaches a target state: the one wait of the provider.

    Polls every ``poll_interval`` seconds (:func:`poll_job`), the last time at the deadline. An outage of the
    API (refused connections, timeouts, 429/5xx such as the 503 of a leader election) is ridden out for up to
    the outage budget, counted from the first failed poll (:class:`~airflow_flink_provider.protocol.outage.Outage`);
    no retry of a poll runs past the end of the budget or the deadline (``Request.retry_for``). State changes
    and tasks that do not run yet are logged, one line each.

    The sync transport runs it for the operators' waits and each poke of a sensor (``polls=1``, with the
    :class:`Outage` kept across pokes), the async transport for the trigger.

    :param job_id: the job.
    :param check: target and failure states.
    :param timeout: seconds to wait at most; ``None`` for no limit.
    :param poll_interval: seconds between polls.
    :param outage_budget: seconds an API outage may last, when no ``outage`` is given.
    :param outage: an outage record to use (e.g. one under way since an earlier poke, or to read afterwards).
    :param polls: poll at most this many times (a sensor's poke: 1).
    :param previous: the verdict of a poll before this wait (an earlier poke).
    :param log: where progress is reported.
    :param clock: the wait's monotonic clock (tests).
    :param api: how messages name the API, e.g. ``Flink REST API at http://jm:8081``.
    :return: the verdict: ``reached``, or ``waiting`` when the time or the polls ran out (its ``state`` is the
        last one seen; the outage under way, if any, is in ``outage.summary()``).
    :raises FlinkJobFailedError: the job reached a failure state.
    :raises FlinkResourceError: the job's tasks cannot get slots.
    :raises FlinkConnectionError: the API was unavailable for longer than the outage budget.
    :raises FlinkError: any other error that is not an outage (an unknown job, a 4xx).
    """
    outage = outage if outage is not None else Outage(outage_budget, what=api, log=log, clock=clock)

    def poll(last: Verdict | None) -> Exchange[Verdict]:
        verdict = yield from poll_job(job_id, check, last)
        _report(log, job_id, verdict, last)
        return verdict

    last = yield from poll_until(
        poll,
        lambda verdict: verdict.outcome == "reached",
        timeout=timeout,
        poll_interval=poll_interval,
        outage=outage,
        polls=polls,
        previous=previous,
        clock=clock,
    )
    return last if last is not None else Verdict("waiting", "")


def _report(log: Log, job_id: str, verdict: Verdict, previous: Verdict | None) -> None:
    """Log a state change, and tasks that do not run yet when they changed."""
    if previous is None or verdict.state != previous.state:
        log.info("Flink job %s: %s -> %s", job_id, previous.state if previous else "-", verdict.state)
    if verdict.waiting_tasks and (previous is None or verdict.waiting_tasks != previous.waiting_tasks):
        log.info("Flink job %s is RUNNING but these tasks are not: %s", job_id, ", ".join(verdict.waiting_tasks))


def timeout_message(job_id: str, check: JobStateCheck, verdict: Verdict, waited: str, outage: Outage) -> str:
    """What a wait that ran out of time says: the targets, the last state, tasks not running, an outage.

    :param job_id: the job.
    :param check: what was waited for.
    :param verdict: the last verdict of :func:`wait_for_job_state`.
    :param waited: e.g. ``within 600s`` or ``before the deadline``.
    :param outage: the wait's outage record.
    """
    waiting = f"; tasks not running: {', '.join(verdict.waiting_tasks)}" if verdict.waiting_tasks else ""
    targets = sorted(state.value for state in check.target_states)
    return (
        f"Flink job {job_id} did not reach {targets} {waited} (last state {verdict.state or '-'}{waiting})"
        f"{outage.summary()}"
    )
