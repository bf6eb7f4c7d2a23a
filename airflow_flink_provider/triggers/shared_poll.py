"""One poll of ``GET /jobs/overview`` per Flink connection and interval, shared by every trigger of a triggerer.

Each deferred :class:`~airflow_flink_provider.triggers.job_state.FlinkJobStateTrigger` runs the one wait exchange
(:func:`~airflow_flink_provider.protocol.job_state.wait_for_job_state`) with its own deadline, outage budget and
event. Polling alone, 1,000 of them at a 30 s poll made 33 requests/s against one JobManager and kept a core
busy. Here the triggers of one connection (in one event loop, i.e. one triggerer) share a :class:`SharedPoller`:

* **One overview per interval.** The poller asks ``GET /jobs/overview`` (:func:`~airflow_flink_provider.protocol.
  rest.list_jobs`) at most once per interval (the shortest ``poll_interval`` among its triggers, counted from
  the previous answer) and only while a trigger waits for an answer. A trigger's overview request is answered
  with its job's entry of the latest snapshot; a trigger that sleeps ``s`` seconds takes the first snapshot
  taken at most one interval before ``s`` is up, so it never waits longer than its own interval (nor sees a
  state older than that). A trigger's first look takes the latest snapshot when it is at most an interval old.
* **Detail only when needed.** Everything else a wait asks (the root cause of a failed job, the details of a
  job missing from the overview or whose tasks do not move) is sent on the shared client; identical GETs of one
  snapshot's round (several triggers watching one job) are sent once.
* **One client.** One :class:`~airflow_flink_provider.hooks.transport.AsyncTransport` (one keep-alive
  ``httpx`` client, one TLS context per process) per connection, made when the first trigger joins and closed
  when the last one leaves; the connection is read once.
* **No herds.** The first poll of a poller starts at a random moment within its first ~second, later polls keep
  their own cadence whatever number of triggers joins; triggers are woken in slices of :data:`WAKE_SLICE`, so a
  thousand of them answered by one snapshot do not stall the event loop in one go.
* **Failures reach everyone.** A failed overview is thrown into every waiting trigger's wait, where the
  trigger's own outage budget decides (ride it out, or fail); an error reading the connection ends every
  waiting trigger and the poller, and the next trigger to join builds a new one.

The registry is keyed by ``(connection id, event loop)``, reference-counted, and a key is present only while
its poller accepts triggers (the rule of Airflow's own ``SharedStreamManager``): the last trigger to leave
removes it before closing the client, so a trigger joining meanwhile builds a new poller. Triggers keep
plain-value serialization and work alone (``airflow dags test`` runs one per event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.http import Exchange, Request, Response

if TYPE_CHECKING:  # the transport (requests, urllib3) is imported when a trigger runs, not when a DAG file is parsed
    from airflow_flink_provider.hooks.transport import AsyncTransport, TransportConfig

T = TypeVar("T")

log = logging.getLogger(__name__)

WAKE_SLICE = 25
"""Triggers woken per event-loop turn when a snapshot arrives (bounds the loop's stall per turn)."""

FIRST_POLL_SPREAD = 1.0
"""Seconds over which a new poller's first poll is spread (pollers of many connections start together)."""

JITTER = 0.25
"""Seconds of random delay added to each later poll at most (also capped at 2 % of the interval)."""

TransportFactory = Callable[[], Awaitable["AsyncTransport"]]


def _overview_request() -> Request:
    """The request of :func:`rest.list_jobs` (the overview), so a wait's overview request is recognised."""
    exchange = rest.list_jobs()
    request = next(exchange)
    exchange.close()
    assert isinstance(request, Request)
    return request


_OVERVIEW = _overview_request()


@dataclass(frozen=True)
class Snapshot:
    """One answer of the shared poll: the jobs by id, or the error the poll ended with.

    :param taken: when the poll began (``time.monotonic``).
    :param answered: when it ended: the next poll starts an interval later, so the server never sees two
        overview requests within one interval, however long an answer took.
    :param jobs: each job's overview entry, by id.
    :param error: what the poll raised (after the transport's retries), instead of ``jobs``.
    """

    taken: float
    answered: float
    jobs: Mapping[str, Mapping[str, Any]]
    error: BaseException | None = None


@dataclass
class _Waiter:
    """A trigger waiting for a snapshot taken at or after ``want``, newer than ``seen``."""

    want: float
    seen: float
    future: asyncio.Future[Snapshot]


class SharedPoller:
    """The shared poll of one connection in one event loop (see the module).

    :param conn_id: the connection (for messages).
    :param make_transport: builds the connection's transport (reads the connection once).
    :param clock: monotonic seconds (tests).
    """

    def __init__(
        self, conn_id: str, make_transport: TransportFactory, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.conn_id = conn_id
        self.key = (conn_id, asyncio.get_running_loop())
        self.clock = clock
        self.refs = 0
        self.polls = 0
        self.latest: Snapshot | None = None
        self._intervals: Counter[float] = Counter()
        self._waiters: list[_Waiter] = []
        self._starting: list[asyncio.Future[Any]] = []
        self._details: dict[tuple[str, str, tuple[tuple[str, Any], ...]], tuple[float, asyncio.Task[Response]]] = {}
        self._changed = asyncio.Event()
        self._planned = float("inf")
        self._transport_task: asyncio.Future[AsyncTransport] = asyncio.ensure_future(make_transport())
        self._task = asyncio.ensure_future(self._loop())
        self._task.add_done_callback(self._stopped)

    @property
    def interval(self) -> float:
        """Seconds between polls: the shortest ``poll_interval`` among the triggers."""
        return min(self._intervals) if self._intervals else 0.0

    async def transport(self) -> AsyncTransport:
        """The connection's transport (its client is shared by every trigger)."""
        return await asyncio.shield(self._transport_task)

    async def ready(self) -> TransportConfig:
        """The connection's settings, once its transport is made (the triggers that waited for it are woken
        in slices, so a herd joining a new poller does not resume in one event-loop turn)."""
        if self._transport_task.done():
            return self._transport_task.result().config
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._starting.append(future)
        return (await future).config

    def join(self, poll_interval: float) -> None:
        """A trigger that polls every ``poll_interval`` seconds starts using the poller.

        :param poll_interval: its interval.
        """
        self.refs += 1
        self._intervals[poll_interval] += 1
        self._changed.set()

    def leave(self, poll_interval: float) -> None:
        """A trigger stops using the poller (the registry closes it with the last one).

        :param poll_interval: the interval it joined with.
        """
        self.refs -= 1
        self._intervals[poll_interval] -= 1
        if self._intervals[poll_interval] <= 0:
            del self._intervals[poll_interval]

    async def snapshot(self, *, after: float, seen: float, limit: float | None = None) -> Snapshot:
        """The latest snapshot taken at or after ``after`` and after ``seen``; waits for the next poll if needed.

        :param after: the earliest acceptable poll start (``clock``).
        :param seen: the poll start of the snapshot the trigger had last (a newer one is needed).
        :param limit: seconds to wait at most; then the latest snapshot, whatever its age (a wait at its deadline).
        """
        latest = self.latest
        if latest is not None and latest.taken >= after and latest.taken > seen:
            return latest
        if self._task.done():
            raise RuntimeError(f"the shared poll of Flink connection {self.conn_id!r} has stopped")
        future: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(after, seen, future))
        if after < self._planned:
            self._changed.set()
        if limit is None:
            return await future
        try:
            return await asyncio.wait_for(future, max(0.0, limit))
        except TimeoutError:
            if self.latest is None:
                raise
            return self.latest

    async def detail(self, request: Request, *, since: float | None = None) -> Response:
        """Send a request that is not the overview on the shared client; identical GETs of one round once.

        :param request: e.g. ``GET /jobs/{id}/exceptions``.
        :param since: only an answer to a request sent at or after this time will do (a wait reads a failed
            job's cause again after a pause); triggers that paused together still share one request.
        """
        transport = await self.transport()
        if request.method.upper() != "GET":
            return await transport.send(request)
        key = (request.path, str(sorted(request.accept)), tuple(sorted((request.params or {}).items())))
        sent, task = self._details.get(key, (float("-inf"), None))
        if task is None or sent < (since if since is not None else sent) or _failed(task):
            task = asyncio.ensure_future(transport.send(request))
            self._details[key] = (self.clock(), task)
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Stop polling and close the client (the registry calls it when the last trigger left)."""
        self._task.cancel()
        for _, task in self._details.values():
            task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if not self._transport_task.done():
            self._transport_task.cancel()
        elif not self._transport_task.cancelled() and self._transport_task.exception() is None:
            await self._transport_task.result().aclose()

    def _next_poll(self) -> float:
        """When to poll next: not before the earliest waiter wants, nor within an interval of the last poll."""
        earliest = min(waiter.want for waiter in self._waiters)
        if self.latest is None:
            return earliest
        interval = self.interval
        jitter = random.uniform(0, min(JITTER, 0.02 * interval))
        return max(earliest, self.latest.answered + interval + jitter)

    async def _loop(self) -> None:
        """Poll while triggers wait; hand each snapshot to the waiters it satisfies."""
        transport = await self._transport_task
        starting, self._starting = self._starting, []
        await _wake(starting, transport)
        spread = min(FIRST_POLL_SPREAD, 0.1 * self.interval)
        await asyncio.sleep(random.uniform(0, spread))
        while True:
            self._waiters = [waiter for waiter in self._waiters if not waiter.future.done()]
            if not self._waiters:
                self._planned = float("inf")
                self._changed.clear()
                await self._changed.wait()
                continue
            self._planned = self._next_poll()
            delay = self._planned - self.clock()
            if delay > 0:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), delay)
                continue
            await self._publish(await self._poll(transport))

    async def _poll(self, transport: AsyncTransport) -> Snapshot:
        """One ``GET /jobs/overview``; its error becomes the snapshot (retries end within the outage budget)."""
        taken = self.clock()
        self.polls += 1
        from airflow_flink_provider.hooks.transport import drive

        bound = transport.config.outage_budget  # as a trigger alone: a server's Retry-After is honoured
        try:
            jobs = await drive(rest.list_jobs(), lambda request: transport.send(_bounded(request, bound)))
        except Exception as error:  # every trigger's outage budget judges it (a non-Flink error ends them)
            log.debug("Shared poll of Flink connection %r failed: %s", self.conn_id, error)
            return Snapshot(taken, self.clock(), {}, error)
        return Snapshot(taken, self.clock(), {str(job.get("jid")): job for job in jobs})

    async def _publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` the latest and wake the waiters it satisfies, a slice per event-loop turn."""
        self.latest = snapshot
        self._details = {key: entry for key, entry in self._details.items() if not entry[1].done()}
        ready = [w for w in self._waiters if snapshot.taken >= w.want and snapshot.taken > w.seen]
        self._waiters = [w for w in self._waiters if not (snapshot.taken >= w.want and snapshot.taken > w.seen)]
        await _wake([waiter.future for waiter in ready], snapshot)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """The poll ended (a connection that could not be read, or a bug): fail every waiter, leave the registry."""
        error: BaseException = asyncio.CancelledError() if task.cancelled() else (task.exception() or RuntimeError())
        for future in [*self._starting, *(waiter.future for waiter in self._waiters)]:
            if not future.done():
                if isinstance(error, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(error)
        self._waiters, self._starting = [], []
        if _REGISTRY.get(self.key) is self:
            del _REGISTRY[self.key]


async def _wake(futures: list[asyncio.Future[Any]], value: Any) -> None:
    """Resolve ``futures`` with ``value``, :data:`WAKE_SLICE` per event-loop turn.

    :param futures: the waiting triggers' futures (cancelled ones are skipped).
    :param value: what they get.
    """
    for start in range(0, len(futures), WAKE_SLICE):
        for future in futures[start : start + WAKE_SLICE]:
            if not future.done():
                future.set_result(value)
        await asyncio.sleep(0)


def _failed(task: asyncio.Task[Response]) -> bool:
    """Whether a detail request ended without an answer (the next trigger asking sends it again)."""
    return task.done() and (task.cancelled() or task.exception() is not None)


def _bounded(request: Request, seconds: float) -> Request:
    """``request`` with no retry starting after ``seconds``."""
    return replace(request, retry_for=seconds)


_REGISTRY: dict[tuple[str, asyncio.AbstractEventLoop], SharedPoller] = {}
"""The pollers of this process, by connection id and event loop."""


class JobView:
    """What one trigger sees of its connection's shared poll: runs its exchanges against the shared snapshot.

    :param poller: the shared poller.
    :param job_id: the trigger's job: its overview request is answered with that job's entry alone.
    :param config: the connection's transport settings (base URL, outage budget).
    """

    def __init__(self, poller: SharedPoller, job_id: str, config: TransportConfig) -> None:
        self.poller = poller
        self.job_id = job_id
        self.config = config
        self._seen = float("-inf")
        self._after = float("-inf")
        self._limit: float | None = None
        self._paused: float | None = None

    async def run(self, exchange: Exchange[T]) -> T:
        """Drive an exchange: overview requests from the shared snapshot, others on the shared client.

        :param exchange: e.g. ``wait_for_job_state(...)``.
        """
        from airflow_flink_provider.hooks.transport import drive

        return await drive(exchange, self._send, self._sleep)

    async def _sleep(self, seconds: float) -> None:
        """A wait's pause: the next overview is a snapshot taken at most one shared interval before it ends.

        A pause shorter than the interval (the last poll, at the deadline) takes a newer snapshot if one comes
        in time, else the latest.
        """
        now = self.poller.clock()
        self._after = now + seconds - self.poller.interval
        self._limit = seconds if seconds < self.poller.interval else None
        self._paused = seconds

    async def _send(self, request: Request) -> Response:
        paused, self._paused = self._paused, None
        if (request.method, request.path, request.params) != (_OVERVIEW.method, _OVERVIEW.path, _OVERVIEW.params):
            if paused is None:
                return await self.poller.detail(request)
            since = self.poller.clock()
            await asyncio.sleep(paused)  # a pause within a poll (a failed job's cause read again): really wait
            self._after, self._limit = float("-inf"), None
            return await self.poller.detail(request, since=since)
        after, limit = self._after, self._limit
        if self._seen == float("-inf"):  # a trigger's first look: a snapshot at most one interval old will do
            after = self.poller.clock() - self.poller.interval
        snapshot = await self.poller.snapshot(after=after, seen=self._seen, limit=limit)
        self._seen, self._after, self._limit = snapshot.taken, float("-inf"), None
        if snapshot.error is not None:
            raise snapshot.error
        entry = snapshot.jobs.get(self.job_id)
        return Response(200, {"jobs": [] if entry is None else [entry]}, "")


@contextlib.asynccontextmanager
async def shared_view(
    conn_id: str, job_id: str, poll_interval: float, make_transport: TransportFactory
) -> AsyncIterator[JobView]:
    """Join the shared poll of ``conn_id`` in this event loop for the duration of the block.

    :param conn_id: the Flink connection.
    :param job_id: the job the trigger watches.
    :param poll_interval: the trigger's seconds between polls.
    :param make_transport: builds the connection's transport, used when this trigger is the first to join.
    :raises Exception: whatever reading the connection raised (the next trigger to join tries again).
    """
    key = (conn_id, asyncio.get_running_loop())
    poller = _REGISTRY.get(key)
    if poller is None:
        poller = _REGISTRY[key] = SharedPoller(conn_id, make_transport)
    poller.join(poll_interval)
    try:
        yield JobView(poller, job_id, await poller.ready())
    finally:
        poller.leave(poll_interval)
        if poller.refs <= 0:
            if _REGISTRY.get(key) is poller:
                del _REGISTRY[key]
            await poller.close()
