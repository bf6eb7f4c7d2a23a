"""The shared overview poll of the job-state triggers: registry, reference counting, deadlines, cancellation,
failures reaching every trigger, per-trigger outage budgets (a fake JobManager behind ``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from airflow_flink_provider.hooks.transport import AsyncTransport, TransportConfig
from airflow_flink_provider.protocol.http import RetryPolicy
from airflow_flink_provider.triggers import shared_poll
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger

pytestmark = pytest.mark.unit

ROOT_CAUSE = "java.lang.RuntimeException: boom"


class FakeFlink:
    """Jobs by id with a state each; counts requests by path; answers 503 while ``down``."""

    def __init__(self, jobs: dict[str, str]) -> None:
        self.jobs = dict(jobs)
        self.down = False
        self.requests: Counter[str] = Counter()

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests[path] += 1
        if self.down:
            return httpx.Response(503, text="Service Unavailable")
        if path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": [self.entry(jid) for jid in self.jobs]})
        jid = path.split("/")[2]
        if jid not in self.jobs:
            return httpx.Response(404, json={"errors": [f"Job {jid} not found"]})
        if path.endswith("/exceptions"):
            entry = {"stacktrace": ROOT_CAUSE, "timestamp": 1}
            return httpx.Response(200, json={"exceptionHistory": {"entries": [entry]}, "root-exception": ROOT_CAUSE})
        return httpx.Response(200, json={**self.entry(jid), "vertices": []})

    def entry(self, jid: str) -> dict[str, Any]:
        return {"jid": jid, "name": jid, "state": self.jobs[jid], "tasks": {"total": 1, "running": 1}}


def transports(fake: FakeFlink) -> tuple[list[AsyncTransport], Callable[[], Awaitable[AsyncTransport]]]:
    """A transport factory over the fake, and the transports it made (one per poller)."""
    made: list[AsyncTransport] = []

    async def make() -> AsyncTransport:
        config = TransportConfig(base_url="http://flink:8081", retry=RetryPolicy(attempts=1), outage_budget=30)
        made.append(AsyncTransport(config, transport=httpx.MockTransport(fake.handle)))
        return made[-1]

    return made, make


def trigger(job_id: str, make: Callable[[], Awaitable[AsyncTransport]], **kwargs: Any) -> FlinkJobStateTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    made = FlinkJobStateTrigger(job_id=job_id, **kwargs)
    made._transport = make  # type: ignore[method-assign]
    return made


async def first_event(made: FlinkJobStateTrigger) -> dict[str, Any]:
    async for event in made.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition`` holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


def test_triggers_of_one_connection_share_one_poller_and_one_client_released_by_the_last() -> None:
    jobs = {f"job{i}": "CREATED" for i in range(20)}
    fake = FakeFlink(jobs)
    made, make = transports(fake)

    async def scenario() -> list[dict[str, Any]]:
        tasks = [asyncio.ensure_future(first_event(trigger(jid, make))) for jid in jobs]
        await until(lambda: fake.requests["/jobs/overview"] >= 3)
        [(key, poller)] = shared_poll._REGISTRY.items()
        assert key[0] == "flink_default" and poller.refs == 20
        for jid in list(jobs)[:10]:
            fake.jobs[jid] = "RUNNING"
        await until(lambda: poller.refs == 10)
        assert len(shared_poll._REGISTRY) == 1  # the other ten still watch
        for jid in list(jobs)[10:]:
            fake.jobs[jid] = "RUNNING"
        events = await asyncio.gather(*tasks)
        assert shared_poll._REGISTRY == {}
        return events

    events = run(scenario())
    assert [event["status"] for event in events] == ["success"] * 20
    assert len(made) == 1 and not made[0].is_open  # one client for all, closed by the last trigger
    polls = fake.requests["/jobs/overview"]
    assert set(fake.requests) == {"/jobs/overview"}  # nothing per job: every state came from the overview
    assert polls < 20 * 3  # alone, each trigger would poll at least three times


def test_each_connection_and_event_loop_has_its_own_poller() -> None:
    fake = FakeFlink({"a": "RUNNING"})
    made, make = transports(fake)

    async def both() -> list[dict[str, Any]]:
        first = trigger("a", make, flink_conn_id="flink_one")
        second = trigger("a", make, flink_conn_id="flink_two")
        return list(await asyncio.gather(first_event(first), first_event(second)))

    assert [event["status"] for event in run(both())] == ["success", "success"]
    assert [event["status"] for event in run(both())] == ["success", "success"]  # a new loop: new pollers
    assert len(made) == 4 and not any(transport.is_open for transport in made)
    assert shared_poll._REGISTRY == {}


def test_each_trigger_keeps_its_own_deadline() -> None:
    fake = FakeFlink({"a": "CREATED", "b": "CREATED"})
    _, make = transports(fake)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], float]:
        began = time.monotonic()
        short = asyncio.ensure_future(first_event(trigger("a", make, deadline=time.time() + 0.3)))
        long = asyncio.ensure_future(first_event(trigger("b", make, deadline=time.time() + 10)))
        timed_out = await short
        elapsed = time.monotonic() - began
        assert not long.done()
        fake.jobs["b"] = "RUNNING"
        return timed_out, await long, elapsed

    timed_out, reached, elapsed = run(scenario())
    assert timed_out["status"] == "timeout" and timed_out["state"] == "CREATED"
    assert 0.25 <= elapsed < 2.0
    assert reached["status"] == "success"


def test_a_cancelled_trigger_leaves_and_the_others_go_on() -> None:
    fake = FakeFlink({"a": "CREATED", "b": "CREATED"})
    made, make = transports(fake)

    async def scenario() -> dict[str, Any]:
        cancelled = asyncio.ensure_future(first_event(trigger("a", make)))
        going_on = asyncio.ensure_future(first_event(trigger("b", make)))
        await until(lambda: fake.requests["/jobs/overview"] >= 2)
        [poller] = shared_poll._REGISTRY.values()
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert poller.refs == 1 and made[0].is_open
        seen = fake.requests["/jobs/overview"]
        await until(lambda: fake.requests["/jobs/overview"] >= seen + 2)  # still polling for the other one
        fake.jobs["b"] = "RUNNING"
        return await going_on

    assert run(scenario())["status"] == "success"
    assert shared_poll._REGISTRY == {} and not made[0].is_open


def test_cancelling_every_trigger_closes_the_poller() -> None:
    fake = FakeFlink({f"j{i}": "CREATED" for i in range(5)})
    made, make = transports(fake)

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(first_event(trigger(jid, make))) for jid in fake.jobs]
        await until(lambda: fake.requests["/jobs/overview"] >= 1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert shared_poll._REGISTRY == {}
        polls = fake.requests["/jobs/overview"]
        await asyncio.sleep(0.2)
        assert fake.requests["/jobs/overview"] == polls  # nobody polls any more

    run(scenario())
    assert not made[0].is_open


def test_a_failing_poll_reaches_every_waiting_trigger_and_costs_one_request_per_round() -> None:
    fake = FakeFlink({f"j{i}": "CREATED" for i in range(10)})
    fake.down = True
    _, make = transports(fake)

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(first_event(trigger(jid, make, outage_budget=0.3)) for jid in fake.jobs)))

    events = run(scenario())
    assert [event["status"] for event in events] == ["error"] * 10
    assert {event["error_type"] for event in events} == {"FlinkConnectionError"}
    assert all(event["http_status"] == 503 and "outage budget" in event["message"] for event in events)
    # one overview per 50 ms round for all ten triggers, over the 0.3 s budget (no per-trigger polls)
    assert fake.requests["/jobs/overview"] <= 12


def test_each_trigger_has_its_own_outage_budget() -> None:
    fake = FakeFlink({"a": "CREATED", "b": "CREATED"})
    _, make = transports(fake)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        short = asyncio.ensure_future(first_event(trigger("a", make, outage_budget=0.2)))
        patient = asyncio.ensure_future(first_event(trigger("b", make, outage_budget=30)))
        await until(lambda: fake.requests["/jobs/overview"] >= 1)
        fake.down = True
        failed = await short
        assert not patient.done()  # the same failed polls, within the other trigger's budget
        fake.down = False
        fake.jobs["b"] = "RUNNING"
        return failed, await patient

    failed, rode_out = run(scenario())
    assert failed["status"] == "error" and failed["error_type"] == "FlinkConnectionError"
    assert rode_out["status"] == "success"


def test_a_connection_that_cannot_be_read_fails_every_trigger_and_the_next_one_tries_again() -> None:
    fake = FakeFlink({"a": "RUNNING"})
    made, make = transports(fake)
    reads = [0]

    async def broken() -> AsyncTransport:
        reads[0] += 1
        await asyncio.sleep(0.05)
        raise LookupError("The conn_id `flink_default` isn't defined")

    async def scenario() -> dict[str, Any]:
        results = await asyncio.gather(*(first_event(trigger("a", broken)) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(result, LookupError) for result in results)
        assert reads[0] == 1 and shared_poll._REGISTRY == {}
        return await first_event(trigger("a", make))

    assert run(scenario())["status"] == "success"
    assert not made[0].is_open


def test_triggers_of_one_failed_job_read_its_root_cause_once_per_round() -> None:
    fake = FakeFlink({"a": "FAILED"})
    _, make = transports(fake)

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(first_event(trigger("a", make)) for _ in range(10))))

    events = run(scenario())
    assert [event["status"] for event in events] == ["failed"] * 10
    assert all("RuntimeException: boom" in str(event["root_cause"]) for event in events)
    assert fake.requests["/jobs/a/exceptions"] == 1 and fake.requests["/jobs/overview"] == 1


def test_an_unknown_job_is_an_error_event_read_once_from_its_details() -> None:
    fake = FakeFlink({"a": "RUNNING"})
    _, make = transports(fake)

    async def scenario() -> list[dict[str, Any]]:
        return list(await asyncio.gather(first_event(trigger("nope", make)), first_event(trigger("a", make))))

    missing, found = run(scenario())
    assert missing["status"] == "error" and missing["error_type"] == "FlinkNotFoundError"
    assert found["status"] == "success"
    assert fake.requests["/jobs/nope"] == 1


def test_a_longer_interval_is_served_by_a_shorter_ones_polls() -> None:
    fake = FakeFlink({"fast": "CREATED", "slow": "CREATED"})
    _, make = transports(fake)

    async def scenario() -> int:
        slow = asyncio.ensure_future(first_event(trigger("slow", make, poll_interval=0.5)))
        fast = asyncio.ensure_future(first_event(trigger("fast", make, poll_interval=0.05)))
        await asyncio.sleep(1.0)
        fake.jobs["fast"] = fake.jobs["slow"] = "RUNNING"
        await asyncio.gather(slow, fast)
        return fake.requests["/jobs/overview"]

    polls = run(scenario())
    assert 5 <= polls <= 40  # the 50 ms cadence (not one poll per trigger and interval), with loop slack


def test_a_snapshot_wakes_many_triggers_in_slices() -> None:
    fake = FakeFlink({f"j{i}": "CREATED" for i in range(3 * shared_poll.WAKE_SLICE)})
    _, make = transports(fake)
    turns: list[int] = []

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(first_event(trigger(jid, make, poll_interval=0.2))) for jid in fake.jobs]
        await until(lambda: fake.requests["/jobs/overview"] >= 1)
        for jid in fake.jobs:
            fake.jobs[jid] = "RUNNING"
        while not all(task.done() for task in tasks):  # how many triggers finish per event-loop turn
            before = sum(task.done() for task in tasks)
            await asyncio.sleep(0)
            turns.append(sum(task.done() for task in tasks) - before)
        await asyncio.gather(*tasks)

    run(scenario())
    assert max(turns) <= shared_poll.WAKE_SLICE


def test_a_pause_within_a_poll_really_waits_and_reads_again() -> None:
    fake = FakeFlink({"a": "FAILED"})
    _, make = transports(fake)
    empty_first = fake.handle

    def handle(request: httpx.Request) -> httpx.Response:  # no exception recorded yet at the first read
        if request.url.path.endswith("/exceptions") and fake.requests[request.url.path] == 0:
            fake.requests[request.url.path] += 1
            return httpx.Response(200, json={"exceptionHistory": {"entries": []}})
        return empty_first(request)

    fake.handle = handle  # type: ignore[method-assign]

    async def scenario() -> tuple[dict[str, Any], float]:
        began = time.monotonic()
        return await first_event(trigger("a", make)), time.monotonic() - began

    event, elapsed = run(scenario())
    assert event["status"] == "failed" and "RuntimeException: boom" in str(event["root_cause"])
    assert fake.requests["/jobs/a/exceptions"] == 2 and elapsed >= 0.9
