"""When a Flink job is healthy: the one definition, as pure rules over successive observations.

A job is *healthy* when it is RUNNING with all its tasks, has completed at least ``min_checkpoints``
checkpoints since ``checkpoints_since``, and has not restarted for ``stable_for`` seconds. It is *unhealthy*
(for good: the wait fails at once) when it ended (any terminal or ending state, or SUSPENDED), or restarted
more than ``max_restarts`` times since the watch began. Anything else is *waiting*.

- :class:`HealthPolicy` holds the limits (plain values; :meth:`HealthPolicy.as_dict` for a trigger).
- :func:`observe` is the exchange of one look at a job: its live overview entry plus the *readings* the
  policy needs (:data:`READINGS`: ``/jobs/{id}/checkpoints`` and ``/jobs/{id}/exceptions``).
- :class:`HealthWatch` judges successive observations with an injected clock (epoch seconds, since it is
  compared with Flink's timestamps) and keeps what it must remember between them (checkpoints counted,
  restarts seen, since when the job runs) as plain values (:meth:`HealthWatch.as_dict`), so a reschedule-mode
  sensor keeps it in the task state store and a trigger receives it.
- :func:`wait_until_healthy` polls until healthy on :func:`~airflow_flink_provider.protocol.outage.poll_until`,
  riding out API outages like the job-state wait.

Restarts are counted from the exception history: each entry is one failure the job restarted from (or
failed on). That history is served from a cache (``web.refresh-interval``, 3 s), so a job seen FAILED a moment
ago may have no entry there yet: the watch keeps *waiting* on such a job for up to
:data:`~airflow_flink_provider.protocol.job_state.CAUSE_WAIT` seconds (the wait reads it again every second)
before it calls it unhealthy without a root cause, as the job-state wait's ``failure_cause`` does.

Checkpoints are counted by id from the checkpoint history, and by the growth of the completed count between
two looks, whichever is larger (so a history shorter than the checkpoints between two looks loses none).

Adding a limit (e.g. checkpoint age, source lag, back-pressure): an optional field of :class:`HealthPolicy`
(``None``: off), a reading in :data:`READINGS` named by :meth:`HealthPolicy.readings` when the field is set
(if it needs data the job and the two default readings do not hold), and a line in
:meth:`HealthWatch.judge` that adds a problem (not healthy yet) or a fatal reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from airflow_flink_provider.protocol import metrics, rest
from airflow_flink_provider.protocol.errors import (
    FlinkJobFailedError,
    FlinkJobUnhealthyError,
    hint_for,
    job_failed_error,
)
from airflow_flink_provider.protocol.http import Exchange, Sleep
from airflow_flink_provider.protocol.job_state import CAUSE_WAIT, JobState, waiting_tasks
from airflow_flink_provider.protocol.outage import Log, Outage, poll_until

_LOG = logging.getLogger(__name__)

READINGS: dict[str, Callable[[str], Exchange[Any]]] = {
    "checkpoints": rest.get_checkpoints,
    "exceptions": rest.get_exceptions,
    "vertices": metrics.get_vertex_load,
}
"""What an observation may read beyond the job's overview entry: name -> exchange of the job id."""


_ALWAYS = ("min_checkpoints", "checkpoints_since", "stable_for", "max_restarts")
"""The limits :meth:`HealthPolicy.as_dict` always gives; the optional ones only when they differ from the default."""


@dataclass(frozen=True)
class HealthPolicy:
    """The limits a healthy job keeps.

    :param min_checkpoints: completed checkpoints needed since ``checkpoints_since``.
    :param checkpoints_since: epoch seconds from which checkpoints count; ``None``: when the watch began.
    :param stable_for: seconds the job must have been RUNNING with all tasks and without a restart.
    :param max_restarts: restarts allowed since the watch began (one more is fatal); ``None``: no limit.
    :param max_pending_records: source lag (``pendingRecords`` over the sources) a healthy job stays within;
        not healthy while above it or not reported yet (~10 s after RUNNING).
    :param max_checkpoint_age: seconds since the latest completed checkpoint was triggered.
    :param max_failed_checkpoints: failed checkpoints allowed within ``window``.
    :param max_restarts_in_window: restarts allowed within ``window`` (unlike ``max_restarts``, not fatal: the
        job is healthy again once older restarts leave the window).
    :param max_backpressure: the worst backpressure level allowed, ``ok`` or ``low``.
    :param window: seconds back from now that ``max_failed_checkpoints`` and ``max_restarts_in_window`` count.

    The optional limits (``None``: off) are checked with :func:`~airflow_flink_provider.protocol.metrics.check_limits`,
    the rule the observability DAG alerts with; a breach keeps the job *waiting*, never fails it by itself.
    """

    min_checkpoints: int = 0
    checkpoints_since: float | None = None
    stable_for: float = 0.0
    max_restarts: int | None = None
    max_pending_records: float | None = None
    max_checkpoint_age: float | None = None
    max_failed_checkpoints: int | None = None
    max_restarts_in_window: int | None = None
    max_backpressure: str | None = None
    window: float = 600.0

    def __post_init__(self) -> None:
        if isinstance(self.min_checkpoints, bool) or not isinstance(self.min_checkpoints, int):
            raise ValueError(f"min_checkpoints must be a whole number >= 0, got {self.min_checkpoints!r}")
        if self.min_checkpoints < 0:
            raise ValueError(f"min_checkpoints must be >= 0, got {self.min_checkpoints}")
        _seconds("stable_for", self.stable_for)
        if self.checkpoints_since is not None:
            _seconds("checkpoints_since", self.checkpoints_since)
        if self.max_restarts is not None and (
            isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 0
        ):
            raise ValueError(f"max_restarts must be a whole number >= 0 or None, got {self.max_restarts!r}")
        _seconds("window", self.window)
        self.limits()  # checks the optional limits

    def limits(self) -> metrics.HealthLimits:
        """The optional limits as the provider's :class:`~airflow_flink_provider.protocol.metrics.HealthLimits`."""
        return metrics.HealthLimits(
            max_pending_records=self.max_pending_records,
            max_checkpoint_age_s=self.max_checkpoint_age,
            max_failed_checkpoints=self.max_failed_checkpoints,
            max_restarts=self.max_restarts_in_window,
            max_backpressure=self.max_backpressure,
        )

    def readings(self) -> tuple[str, ...]:
        """The :data:`READINGS` each look needs: checkpoints (counted and reported) and the exception history
        (restarts and the root cause), and the vertices' load when a source lag or backpressure limit is set."""
        if self.max_pending_records is not None or self.max_backpressure is not None:
            return ("checkpoints", "exceptions", "vertices")
        return ("checkpoints", "exceptions")

    def as_dict(self) -> dict[str, Any]:
        """The limits as plain values (a trigger's keyword arguments); optional limits only when set."""
        values = asdict(self)
        defaults = HealthPolicy.__dataclass_fields__
        return {name: value for name, value in values.items() if name in _ALWAYS or value != defaults[name].default}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HealthPolicy:
        """The policy :meth:`as_dict` gave.

        :param values: field name -> value; unknown names are an error.
        :raises ValueError: an unknown field or a bad value.
        """
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown health limit(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def _seconds(name: str, value: Any) -> None:
    """Check a number of seconds (or epoch seconds) >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


@dataclass(frozen=True)
class Observation:
    """One look at a job.

    :param job: its live ``/jobs/overview`` entry (``state``, ``tasks``) or its details.
    :param readings: the answers of the policy's :data:`READINGS`, by name.
    """

    job: Mapping[str, Any]
    readings: Mapping[str, Any] = field(default_factory=dict)


def observe(job_id: str, policy: HealthPolicy) -> Exchange[Observation]:
    """Look at a job once: its overview entry and the readings ``policy`` needs.

    :param job_id: the job.
    :param policy: the limits (they name the readings).
    :raises FlinkNotFoundError: Flink does not know the job.
    """
    job = yield from rest.get_job_overview(job_id)
    readings = {}
    for name in policy.readings():
        readings[name] = yield from READINGS[name](job_id)
    return Observation(job, readings)


Outcome = Literal["healthy", "waiting", "unhealthy"]

_AWAITING_CAUSE = "the job FAILED; its exception history has no entry yet"


@dataclass(frozen=True)
class HealthVerdict:
    """How a job stands against a :class:`HealthPolicy`.

    :param outcome: ``healthy``, ``waiting`` or ``unhealthy`` (for good).
    :param reason: why, in one line (what is missing while waiting).
    :param state: the job's state as Flink reported it.
    :param checkpoints: completed checkpoints counted since ``checkpoints_since``.
    :param restarts: restarts since the watch began.
    :param root_cause: the root cause of the job's newest failure since the watch began, if any.
    """

    outcome: Outcome
    reason: str
    state: str
    checkpoints: int = 0
    restarts: int = 0
    root_cause: str | None = None

    def as_xcom(self, job_id: str) -> dict[str, Any]:
        """The sensor's return value: ``job_id``, ``healthy``, ``reason``, ``state``, ``checkpoints``,
        ``restarts``, ``root_cause``.

        :param job_id: the job.
        """
        return {
            "job_id": job_id,
            "healthy": self.outcome == "healthy",
            "reason": self.reason,
            "state": self.state,
            "checkpoints": self.checkpoints,
            "restarts": self.restarts,
            "root_cause": self.root_cause,
        }


class HealthWatch:
    """Judges successive observations of one job against a policy.

    What it remembers between observations is plain values (:meth:`as_dict`), restored with ``memory``.

    :param policy: the limits.
    :param clock: epoch seconds (compared with Flink's millisecond timestamps).
    :param memory: what an earlier watch of the same wait remembered (:meth:`as_dict`).
    """

    def __init__(
        self,
        policy: HealthPolicy,
        *,
        clock: Callable[[], float] = time.time,
        memory: Mapping[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        memory = memory or {}
        self.started: float | None = memory.get("started")
        self.checkpoints: int = int(memory.get("checkpoints", 0))
        self.last_checkpoint_id: int | None = memory.get("last_checkpoint_id")
        self.last_completed_total: int | None = memory.get("last_completed_total")
        self.restarts: int = int(memory.get("restarts", 0))
        self.last_restart_ms: int | None = memory.get("last_restart_ms")
        self.running_since: float | None = memory.get("running_since")
        self.root_cause: str | None = memory.get("root_cause")
        self.last_look: float | None = memory.get("last_look")
        self.reason: str | None = memory.get("reason")
        self.failed_seen: float | None = memory.get("failed_seen")

    def as_dict(self) -> dict[str, Any]:
        """What the watch remembers, as plain values (``memory`` of a later watch)."""
        return {
            "started": self.started,
            "checkpoints": self.checkpoints,
            "last_checkpoint_id": self.last_checkpoint_id,
            "last_completed_total": self.last_completed_total,
            "restarts": self.restarts,
            "last_restart_ms": self.last_restart_ms,
            "running_since": self.running_since,
            "root_cause": self.root_cause,
            "last_look": self.last_look,
            "reason": self.reason,
            "failed_seen": self.failed_seen,
        }

    @property
    def awaiting_cause(self) -> bool:
        """The job was seen failed, its exception history had no entry yet, and :data:`CAUSE_WAIT` has not passed."""
        return self.failed_seen is not None and self.root_cause is None and self.reason == _AWAITING_CAUSE

    @property
    def since(self) -> float:
        """Epoch seconds from which checkpoints count."""
        if self.policy.checkpoints_since is not None:
            return self.policy.checkpoints_since
        return self.started if self.started is not None else self.clock()

    def judge(self, observation: Observation) -> HealthVerdict:
        """Judge the job as observed now, and remember what the next judgement needs.

        :param observation: a look at the job (:func:`observe`).
        """
        now = self.clock()
        if self.started is None:
            self.started = now
        state_text = str(observation.job.get("state", "")).upper()
        state = JobState.lookup(state_text)
        self._count_restarts(observation.readings.get("exceptions"))
        self._count_checkpoints(observation.readings.get("checkpoints"))
        waiting = waiting_tasks(observation.job) if state is JobState.RUNNING else ()
        if state is JobState.RUNNING and not waiting:
            if self.running_since is None:
                self.running_since = now
        else:
            self.running_since = None

        fatal = None
        if state is not None and (not state.is_alive or state.is_ending):
            fatal = f"the job is {state_text}"
        elif self.policy.max_restarts is not None and self.restarts > self.policy.max_restarts:
            fatal = f"the job restarted {self.restarts} times, more than max_restarts={self.policy.max_restarts}"
        if fatal is not None:
            if self.root_cause is None:  # it failed before the watch began
                self.root_cause = rest.root_cause_of(observation.readings.get("exceptions") or {})
            if self.root_cause is None and state is JobState.FAILED:
                if self.failed_seen is None:
                    self.failed_seen = now
                if now - self.failed_seen < CAUSE_WAIT:  # the history may be stale (cached): read it again
                    return self._verdict("waiting", _AWAITING_CAUSE, state_text)
            return self._verdict("unhealthy", fatal, state_text)

        problems = []
        if state is not JobState.RUNNING:
            problems.append(f"the job is {state_text or 'unknown'}, not RUNNING")
        elif waiting:
            problems.append(f"tasks not running: {', '.join(waiting)}")
        else:
            stable = now - max(self.running_since or now, (self.last_restart_ms or 0) / 1000)
            if stable < self.policy.stable_for:
                problems.append(f"stable for {stable:.0f}s of {self.policy.stable_for:g}s")
        if self.checkpoints < self.policy.min_checkpoints:
            problems.append(f"{self.checkpoints} of {self.policy.min_checkpoints} checkpoints completed")
        if state is JobState.RUNNING and not waiting:
            problems += self._limit_problems(observation, now)
        if problems:
            return self._verdict("waiting", "; ".join(problems), state_text)
        return self._verdict("healthy", self._healthy_reason(), state_text)

    def _limit_problems(self, observation: Observation, now: float) -> list[str]:
        """The optional limits the running job is over (see :meth:`HealthPolicy.limits`)."""
        policy = self.policy
        limits = policy.limits()
        if limits == metrics.HealthLimits():
            return []
        now_ms, window_ms = int(now * 1000), int(policy.window * 1000)
        load = observation.readings.get("vertices")
        problems = []
        if policy.max_pending_records is not None and (load is None or load.pending_records is None):
            problems.append("source lag (pendingRecords) not reported yet")
        checkpoints = observation.readings.get("checkpoints") or {}
        # The age limit is absolute here: an interval of 0 marks checkpointing as on for check_limits.
        health = metrics.checkpoint_health(checkpoints, {"interval": 0}, now_ms, window_ms=window_ms)
        if policy.max_checkpoint_age is not None and health.last_completed_ms is None:
            problems.append("no checkpoint completed yet")
        signals = metrics.JobSignals(
            job_id="",
            name="",
            state="RUNNING",
            at_ms=now_ms,
            pending_records=load.pending_records if load else None,
            backpressure=load.backpressure if load else None,
            backpressure_ratio=load.backpressure_ratio if load else None,
            watermark_delay_ms=None,
            checkpoints=health,
            restarts=metrics.restarts_since(observation.readings.get("exceptions") or {}, now_ms - window_ms),
            window_ms=window_ms,
        )
        return problems + [str(breach) for breach in metrics.check_limits(signals, limits)]

    def _verdict(self, outcome: Outcome, reason: str, state: str) -> HealthVerdict:
        self.reason = reason
        return HealthVerdict(outcome, reason, state, self.checkpoints, self.restarts, self.root_cause)

    def _healthy_reason(self) -> str:
        parts = ["RUNNING with all tasks"]
        if self.policy.min_checkpoints:
            parts.append(f"{self.checkpoints} checkpoints completed (>= {self.policy.min_checkpoints})")
        if self.policy.stable_for:
            parts.append(f"no restart for {self.policy.stable_for:g}s")
        if self.policy.max_restarts is not None:
            parts.append(f"{self.restarts} restarts (<= {self.policy.max_restarts})")
        if self.policy.limits() != metrics.HealthLimits():
            parts.append("within the lag, checkpoint, restart and backpressure limits")
        return ", ".join(parts)

    def _count_restarts(self, exceptions: Mapping[str, Any] | None) -> None:
        """Count the exception history's entries newer than the last one counted and than the watch's start."""
        if not exceptions:
            return
        entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
        floor_ms = max(self.last_restart_ms or 0, int((self.started or 0) * 1000) - 1)
        new = [entry for entry in entries if int(entry.get("timestamp") or 0) > floor_ms]
        if new:
            self.restarts += len(new)
            self.last_restart_ms = max(int(entry.get("timestamp") or 0) for entry in new)
            self.root_cause = rest.root_cause_of({"exceptionHistory": {"entries": new}})

    def _count_checkpoints(self, checkpoints: Mapping[str, Any] | None) -> None:
        """Count completed checkpoints triggered since :attr:`since`: new ids in the history, or the growth of
        the completed count when more completed between two looks than the history holds."""
        if not checkpoints:
            return
        since_ms = self.since * 1000
        previous_look, self.last_look = self.last_look, self.clock()
        completed = [
            int(entry["id"])
            for entry in checkpoints.get("history") or ()
            if entry.get("status") == "COMPLETED"
            and not entry.get("is_savepoint")
            and float(entry.get("trigger_timestamp") or 0) >= since_ms
            and (self.last_checkpoint_id is None or int(entry["id"]) > self.last_checkpoint_id)
        ]
        total = int((checkpoints.get("counts") or {}).get("completed") or 0)
        grown = 0
        if self.last_completed_total is not None and previous_look is not None and previous_look * 1000 >= since_ms:
            grown = total - self.last_completed_total  # all completed after the last look, so after ``since``
        self.checkpoints += max(len(completed), grown)
        if completed:
            self.last_checkpoint_id = max(completed)
        self.last_completed_total = total


def unhealthy_error(job_id: str, verdict: HealthVerdict) -> FlinkJobFailedError:
    """The error for an unhealthy verdict: a failed job's typed error (by its root cause), else
    :class:`FlinkJobUnhealthyError` naming the reason and the newest failure's root cause.

    :param job_id: the job.
    :param verdict: an ``unhealthy`` verdict.
    """
    state = JobState.lookup(verdict.state)
    if state is not None and state.is_failed:
        return job_failed_error(job_id, verdict.root_cause, state=verdict.state)
    cause = f"; newest failure: {verdict.root_cause}" if verdict.root_cause else ""
    return FlinkJobUnhealthyError(
        f"Flink job {job_id} is not healthy: {verdict.reason}{cause}",
        job_id=job_id,
        state=verdict.state,
        root_cause=verdict.root_cause,
        hint=hint_for(verdict.root_cause) if verdict.root_cause else None,
    )


def wait_until_healthy(
    job_id: str,
    watch: HealthWatch,
    *,
    timeout: float | None,
    poll_interval: float,
    outage: Outage,
    polls: int | None = None,
    log: Log = _LOG,
) -> Exchange[HealthVerdict]:
    """Poll a job until ``watch`` calls it healthy, riding out API outages (:func:`poll_until`).

    A changed verdict reason is logged, one line each.

    :param job_id: the job.
    :param watch: the policy and what earlier looks found.
    :param timeout: seconds to wait at most; ``None`` for no limit.
    :param poll_interval: seconds between looks.
    :param outage: the wait's outage record.
    :param polls: look at most this many times (a sensor's poke: 1).
    :param log: where progress is reported.
    :return: the last verdict: ``healthy``, or ``waiting`` when the time or the polls ran out.
    :raises FlinkJobFailedError: the job is unhealthy for good (:func:`unhealthy_error`).
    :raises FlinkConnectionError: the API was unavailable for longer than the outage budget.
    """

    def look(last: HealthVerdict | None) -> Exchange[HealthVerdict]:
        reason = watch.reason
        verdict = watch.judge((yield from observe(job_id, watch.policy)))
        for _ in range(CAUSE_WAIT):  # a failed job's history is read again every second while it is empty
            if not watch.awaiting_cause:
                break
            yield Sleep(1.0)
            verdict = watch.judge((yield from observe(job_id, watch.policy)))
        if verdict.outcome == "unhealthy":
            raise unhealthy_error(job_id, verdict)
        if verdict.reason != reason:
            log.info("Flink job %s: %s (%s)", job_id, verdict.outcome, verdict.reason)
        return verdict

    last = yield from poll_until(
        look,
        lambda verdict: verdict.outcome == "healthy",
        timeout=timeout,
        poll_interval=poll_interval,
        outage=outage,
        polls=polls,
        clock=watch.clock,
    )
    return last if last is not None else HealthVerdict("waiting", "the Flink REST API did not answer", "")
