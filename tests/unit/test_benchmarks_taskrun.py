"""The benchmarks' task harness (run an operator like the task runner, deferral, worker slots) and the
counting proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests
from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

from benchmarks.proxy import CountingProxy
from benchmarks.taskrun import SlotLog, bench_dag, run_task
from tests.support.loopback import LoopbackHandler, LoopbackServer

pytestmark = pytest.mark.unit

SLOTS = SlotLog()
"""The slot log the test trigger looks at while it waits."""


class WaitTrigger(BaseTrigger):
    """Waits, records whether a worker slot was held meanwhile, then fires."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.WaitTrigger", {"seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"slot_held_while_deferred": SLOTS.held_now(), "value": 42})


class Templated(BaseOperator):
    """Returns its rendered field; refuses to run outside the task runner's safeguard."""

    template_fields = ("text",)

    def __init__(self, *, text: str, **kwargs: Any) -> None:
        super().__init__(allow_nested_operators=False, **kwargs)
        self.text = text

    def execute(self, context: Any) -> str:
        return self.text


class Deferring(BaseOperator):
    """Defers once, then returns what the trigger and the defer kwargs said."""

    def execute(self, context: Any) -> None:
        self.defer(trigger=WaitTrigger(0.3), method_name="done", kwargs={"extra": "kept"})

    def done(self, context: Any, event: dict[str, Any], extra: str) -> dict[str, Any]:
        return {**event, "extra": extra}


class Failing(BaseOperator):
    def execute(self, context: Any) -> None:
        raise ValueError("bad input")


def test_templates_render_and_execute_runs_inside_the_safeguard() -> None:
    with bench_dag("bench_unit"):
        task = Templated(task_id="t", text="run {{ run_id }} of {{ ti.task_id }}")
    slots = SlotLog()
    outcome = run_task(task, run_id="r1", slots=slots)
    assert outcome.error is None, outcome.error
    assert outcome.result == "run r1 of t"
    assert outcome.deferrals == 0 and len(slots.intervals) == 1
    assert slots.held_now() == 0
    assert outcome.seconds >= slots.held_seconds() > 0


def test_a_deferred_task_holds_no_slot_while_its_trigger_waits() -> None:
    with bench_dag("bench_unit"):
        task = Deferring(task_id="d")
    outcome = run_task(task, slots=SLOTS)
    assert outcome.error is None, outcome.error
    assert outcome.result == {"slot_held_while_deferred": 0, "value": 42, "extra": "kept"}
    assert outcome.deferrals == 1 and outcome.trigger_seconds >= 0.3
    assert len(SLOTS.intervals) == 2  # execute, then the resumed method
    assert SLOTS.held_seconds() <= outcome.seconds - outcome.trigger_seconds + 1e-6


def test_errors_are_returned_in_the_outcome() -> None:
    with bench_dag("bench_unit"):
        task = Failing(task_id="f")
    slots = SlotLog()
    outcome = run_task(task, slots=slots)
    assert isinstance(outcome.error, ValueError) and outcome.result is None
    assert slots.held_now() == 0 and len(slots.intervals) == 1


def test_slot_seconds_within_a_window() -> None:
    slots = SlotLog()
    slots.intervals = [(0.0, 2.0), (5.0, 6.0)]
    assert slots.held_seconds() == 3.0
    assert slots.held_seconds(1.0, 5.5) == 1.5


# ---------------------------------------------------------------------------------------------- proxy


class Upstream(LoopbackHandler):
    def _answer(self) -> None:
        body = self.read_body().decode()
        status = 404 if "missing" in self.path else 200
        data = json.dumps({"method": self.command, "path": self.path, "body": body}).encode()
        self.answer(status, {"Content-Type": "application/json"}, data)

    do_GET = do_POST = do_PATCH = _answer


@pytest.fixture
def upstream() -> Iterator[str]:
    with LoopbackServer(Upstream, name="upstream") as server:
        yield server.url


def test_proxy_forwards_and_counts_requests_and_connections(upstream: str) -> None:
    with CountingProxy(upstream) as proxy:
        base = f"http://127.0.0.1:{proxy.port}"
        with requests.Session() as session:  # one keep-alive connection
            first = session.get(f"{base}/jobs/0123456789abcdef0123456789abcdef")
            session.get(f"{base}/jobs/0123456789abcdef0123456789abcdef")
            posted = session.post(f"{base}/jars/x.jar/run", json={"a": 1})
            missing = session.get(f"{base}/jobs/missing")
        requests.patch(f"{base}/jobs/0123456789abcdef0123456789abcdef?mode=cancel")  # a second connection
        counts, connections = proxy.snapshot()
    assert first.status_code == 200 and first.json()["path"] == "/jobs/0123456789abcdef0123456789abcdef"
    assert posted.json() == {"method": "POST", "path": "/jars/x.jar/run", "body": '{"a": 1}'}
    assert missing.status_code == 404
    assert counts == {"GET /jobs/{id}": 2, "POST /jars/x.jar/run": 1, "GET /jobs/missing": 1, "PATCH /jobs/{id}": 1}
    assert connections == 2


def test_proxy_reset_starts_from_zero(upstream: str) -> None:
    with CountingProxy(upstream) as proxy:
        requests.get(f"http://127.0.0.1:{proxy.port}/overview")
        proxy.reset()
        assert proxy.snapshot() == ({}, 0)
