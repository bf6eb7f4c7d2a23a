"""Run an operator the way Airflow's task runner does, in this process, and record worker-slot use.

What :func:`run_task` does is what ``airflow.sdk.execution_time.task_runner`` does for a task, minus the
process start and the API-server round trips (identical for every operator, so left out of every
comparison): render the template fields, ``pre_execute``, ``execute`` inside the ``ExecutorSafeguard``
context, ``post_execute``. A task that defers (``TaskDeferred``) gives its worker slot back; its trigger
then runs in an asyncio loop, as the triggerer would run it, and the task resumes with
``resume_execution(next_method, next_kwargs + {"event": payload})`` on a worker slot again.

:class:`SlotLog` records when task code held a worker slot: a sensor in poke mode holds one the whole
time, a deferred one holds none while its trigger waits.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG
from airflow.sdk.bases.operator import BaseOperator, ExecutorSafeguard
from airflow.sdk.exceptions import TaskDeferred


class BenchTI:
    """The part of a runtime task instance that operators use: identity and XCom push."""

    def __init__(self, dag_id: str, task_id: str, run_id: str) -> None:
        self.dag_id, self.task_id, self.run_id = dag_id, task_id, run_id
        self.map_index = -1
        self.try_number = 1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        """Keep an XCom in memory.

        :param key: the XCom key.
        :param value: its value.
        """
        self.xcoms[key] = value

    def xcom_pull(self, *args: Any, **kwargs: Any) -> None:
        """No upstream tasks here: always ``None``."""
        return None


@dataclass
class SlotLog:
    """When task code ran on a worker slot: ``(start, end)`` pairs of ``time.monotonic()``."""

    intervals: list[tuple[float, float]] = field(default_factory=list)
    _open: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self) -> None:
        """Task code starts running on a worker slot."""
        with self._lock:
            self._open = time.monotonic()

    def release(self) -> None:
        """Task code gave the slot back."""
        with self._lock:
            if self._open is not None:
                self.intervals.append((self._open, time.monotonic()))
                self._open = None

    def held_now(self) -> int:
        """1 while task code runs on a slot, else 0."""
        with self._lock:
            return int(self._open is not None)

    def held_seconds(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        """Slot-seconds held within ``[start, end]`` (monotonic clock).

        :param start: window start.
        :param end: window end.
        """
        with self._lock:
            spans = list(self.intervals) + ([(self._open, time.monotonic())] if self._open is not None else [])
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


@dataclass
class TaskOutcome:
    """How a task run ended.

    :param result: what execute (or the resumed method) returned.
    :param error: the exception it raised, if any.
    :param deferrals: how many times it deferred.
    :param trigger_seconds: time spent in triggers (no worker slot held).
    :param started: ``time.monotonic()`` when the run started.
    :param ended: ``time.monotonic()`` when it ended.
    """

    result: Any = None
    error: BaseException | None = None
    deferrals: int = 0
    trigger_seconds: float = 0.0
    started: float = 0.0
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        """Wall time of the whole run."""
        return self.ended - self.started


def bench_dag(name: str) -> DAG:
    """A DAG to put a benchmarked operator in (never scheduled).

    :param name: DAG id.
    """
    return DAG(dag_id=name, schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC), catchup=False)


def make_context(task: BaseOperator, run_id: str) -> dict[str, Any]:
    """A task context with what operators read: ti, task, dag, run id, params, dates.

    :param task: the operator.
    :param run_id: the DAG run id.
    """
    now = datetime.now(UTC)
    ti = BenchTI(task.dag_id, task.task_id, run_id)
    return {
        "ti": ti,
        "task_instance": ti,
        "task": task,
        "dag": task.dag,
        "run_id": run_id,
        "params": dict(task.params or {}),
        "logical_date": now,
        "ds": now.strftime("%Y-%m-%d"),
        "ts": now.isoformat(),
        "conf": {},
    }


def _run_on_slot(slots: SlotLog | None, func: Callable[[], Any], task: BaseOperator) -> Any:
    """Run task code on a worker slot, inside the ExecutorSafeguard context like the task runner."""
    ctx = contextvars.copy_context()
    ctx.run(ExecutorSafeguard.tracker.set, task)
    if slots:
        slots.acquire()
    try:
        return ctx.run(func)
    finally:
        if slots:
            slots.release()


async def _first_event(trigger: Any) -> dict[str, Any]:
    """Run a trigger until its first event, as the triggerer does."""
    async for event in trigger.run():
        return dict(event.payload)
    raise RuntimeError(f"trigger {type(trigger).__name__} ended without an event")


def run_trigger(trigger: Any) -> dict[str, Any]:
    """Run a deferred task's trigger in a fresh asyncio loop until it fires; return the event payload.

    :param trigger: the trigger instance from ``TaskDeferred``.
    """
    return asyncio.run(_first_event(trigger))


def run_task(
    task: BaseOperator,
    *,
    run_id: str | None = None,
    slots: SlotLog | None = None,
    triggerer: Callable[[Any], dict[str, Any]] = run_trigger,
    max_deferrals: int = 20,
) -> TaskOutcome:
    """Run one task instance to its end; exceptions are returned in the outcome, not raised.

    :param task: the operator (in a DAG, see :func:`bench_dag`).
    :param run_id: the DAG run id; unique by default, so deterministic job ids never collide.
    :param slots: where to record worker-slot use.
    :param triggerer: runs a trigger until its event (default: :func:`run_trigger`).
    :param max_deferrals: give up after this many deferrals.
    """
    run_id = run_id or f"bench__{uuid.uuid4().hex[:12]}"
    context: Any = make_context(task, run_id)  # a Context for the operator; a plain dict here
    outcome = TaskOutcome(started=time.monotonic())

    def first() -> Any:
        task.render_template_fields(context)
        task.pre_execute(context)
        return task.execute(context)

    step: Callable[[], Any] = first
    try:
        while True:
            try:
                outcome.result = _run_on_slot(slots, step, task)
                task.post_execute(context, outcome.result)
                break
            except TaskDeferred as deferred:
                outcome.deferrals += 1
                if outcome.deferrals > max_deferrals:
                    raise RuntimeError(f"{task.task_id} deferred more than {max_deferrals} times") from None
                began = time.monotonic()
                payload = triggerer(deferred.trigger)
                outcome.trigger_seconds += time.monotonic() - began
                kwargs = {**(deferred.kwargs or {}), "event": payload}
                method = deferred.method_name

                def step(method: str = method, kwargs: dict[str, Any] = kwargs) -> Any:
                    return task.resume_execution(next_method=method, next_kwargs=kwargs, context=context)
    except BaseException as error:  # the caller decides which errors are expected
        if isinstance(error, KeyboardInterrupt):
            raise
        outcome.error = error
    outcome.ended = time.monotonic()
    return outcome
