"""Riding out a short outage of a Flink API during a wait, up to a budget.

A wait (the job-state sensor, its trigger, the operators' waits) polls a job. Each poll's requests are
already retried by the transport (a few seconds of backoff); an outage longer than that — a JobManager
failover answers HTTP 503 during its leader election, a restart refuses connections — is not the job's
fault. :class:`Outage` lets the wait keep polling through it for up to ``budget`` seconds, counted from the
first failed poll, and then fails with the last error and how long the outage lasted.

The outage is judged after each poll, and a poll's retries end by the end of the budget (see
:meth:`Outage.left`; the first try of a request always runs). :func:`poll_until` is the one polling loop
that does this: the job-state wait (:func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`) and
the health wait (:func:`~airflow_flink_provider.protocol.health.wait_until_healthy`) are built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from airflow_flink_provider.protocol.errors import FlinkConnectionError, FlinkError
from airflow_flink_provider.protocol.http import Exchange, Sleep, retry_within

V = TypeVar("V")

OUTAGE_HINT = (
    "The API did not answer for longer than the wait's outage budget. Check the JobManager (or the proxy in "
    "front of it); if outages this long are expected (e.g. a failover), raise the connection extra "
    "'outage_budget' or the sensor's outage_budget."
)


class Log(Protocol):
    """What an outage is reported to: a stdlib or Airflow task logger."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


class Outage:
    """One wait's record of an API outage: when it began, its last error, and when to give up.

    :param budget: seconds an outage may last before the wait fails (0: fail at the first failed poll).
    :param what: the API, for messages, e.g. ``Flink REST API at http://127.0.0.1:8081``.
    :param log: where the outage is reported.
    :param clock: seconds; :func:`time.monotonic` within one process, :func:`time.time` when ``started`` is
        kept across processes (reschedule mode).
    :param started: when an outage already under way began (on ``clock``), or ``None``.
    """

    def __init__(
        self,
        budget: float,
        *,
        what: str,
        log: Log,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        if not 0 <= budget < float("inf"):
            raise ValueError(f"outage_budget must be a finite number of seconds >= 0, got {budget}")
        self.budget = budget
        self.what = what
        self.log = log
        self.clock = clock
        self.started = started
        self.last_error: FlinkError | None = None

    def lasted(self) -> float:
        """Seconds since the current outage began (0 when there is none)."""
        return 0.0 if self.started is None else max(0.0, self.clock() - self.started)

    def failed(self, error: FlinkError, *, since: float | None = None) -> None:
        """Record a failed poll; return when the wait may poll again.

        :param error: what the poll raised (after the transport's own retries).
        :param since: when the failed poll began (on ``clock``): the outage began no later than that.
        :raises FlinkError: ``error`` itself when it is not an outage (a 4xx, an unknown job, bad SQL...).
        :raises FlinkConnectionError: the outage has lasted ``budget`` seconds; names how long it lasted and the
            last error, whose HTTP status it carries (``str()`` shows it).
        """
        if not error.retryable:
            raise error
        now = self.clock()
        if self.started is None:
            self.started = now if since is None else min(since, now)
        self.last_error = error
        lasted = now - self.started
        if lasted >= self.budget:
            raise FlinkConnectionError(
                f"{self.what} has been unavailable for {lasted:.1f}s, longer than the outage budget of "
                f"{self.budget:g}s; last error: {first_line(error)}",
                hint=OUTAGE_HINT,
                **error.passed_on(),
            ) from error
        self.log.warning(
            "%s unavailable for %.1fs (%s); riding it out for up to %gs (outage budget)",
            self.what,
            lasted,
            describe(error),
            self.budget,
        )

    def recovered(self) -> bool:
        """The API answered: end the current outage. Whether there was one."""
        if self.started is None:
            return False
        self.log.info("%s answers again after an outage of %.1fs", self.what, self.lasted())
        self.started = None
        self.last_error = None
        return True

    def left(self) -> float:
        """Seconds of the budget left: of the outage under way, or all of it for one the next poll would start.

        A wait lets the next poll's retries run no longer than that (``Request.retry_for``).
        """
        return max(0.0, self.budget - self.lasted())

    def summary(self) -> str:
        """A short note on the outage under way, for a timeout message ('' when there is none)."""
        if self.started is None or self.last_error is None:
            return ""
        return f"; {self.what} unavailable for the last {self.lasted():.1f}s ({describe(self.last_error)})"


def first_line(error: FlinkError) -> str:
    """The first line of an error's message (its class name when it has none).

    :param error: a failed request's error.
    """
    text = error.message.strip()
    return text.splitlines()[0] if text else type(error).__name__


def describe(error: FlinkError) -> str:
    """An error in one line with its HTTP status, e.g. ``HTTP 503: Service Unavailable``.

    :param error: a failed request's error.
    """
    return f"HTTP {error.status}: {first_line(error)}" if error.status is not None else first_line(error)


def poll_until(
    poll: Callable[[V | None], Exchange[V]],
    done: Callable[[V], bool],
    *,
    timeout: float | None,
    poll_interval: float,
    outage: Outage,
    polls: int | None = None,
    previous: V | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange[V | None]:
    """Poll until ``done``, the time or the polls run out, riding out an API outage up to its budget.

    Each poll runs with its requests' retries bounded by what is left of the outage budget and of the wait
    (``Request.retry_for``). A failed poll counts against ``outage`` (which raises once the outage outlasts
    its budget, or at once for an error that is not an outage); the first poll that answers ends the outage.
    Polls are ``poll_interval`` seconds apart, the last one at the deadline.

    :param poll: one poll: an exchange made from the previous poll's result (``None`` at first).
    :param done: whether a poll's result ends the wait.
    :param timeout: seconds to poll at most; ``None`` for no limit.
    :param poll_interval: seconds between polls.
    :param outage: the wait's outage record (it may continue one under way).
    :param polls: poll at most this many times (a sensor's poke: 1).
    :param previous: the result of a poll before this wait (an earlier poke).
    :param clock: the wait's monotonic clock.
    :return: the last result (``done`` or not), or ``previous`` when no poll answered.
    """
    end = None if timeout is None else clock() + timeout
    last = previous
    count = 0
    while True:
        began, retries_end = outage.clock(), clock() + outage.left()
        try:
            result = yield from retry_within(poll(last), retries_end if end is None else min(retries_end, end), clock)
        except FlinkError as error:
            outage.failed(error, since=began)  # raises unless the outage is within its budget
        else:
            outage.recovered()
            last = result
            if done(result):
                return result
        count += 1
        left = None if end is None else end - clock()
        if (polls is not None and count >= polls) or (left is not None and left <= 0):
            return last
        yield Sleep(poll_interval if left is None else min(poll_interval, left))
