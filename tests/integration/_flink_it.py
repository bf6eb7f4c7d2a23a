"""Helpers for the operator/sensor/trigger integration tests: a minimal task context, a tiny jar, cleanup.

Each test gets a unique DAG run id, so its deterministic job ids are new; every job a test starts is
cancelled when it ends (other people share the cluster).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger
from flink_lessons.waiting import wait_for

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from tests.conftest import HOST, PORTS
from tests.unit._flink_fakes import FakeTI

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
FLINK_HOME = ROOT / ".stack" / "flink"
TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


class ItTI(FakeTI):
    """A task instance for running operators outside the task runner (reschedule needs the first date)."""

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


def context_for(task_id: str, run_id: str | None = None) -> dict[str, Any]:
    """A minimal execution context with a unique run id (so deterministic job ids are fresh)."""
    return {"ti": ItTI(dag_id="it_flink_provider", task_id=task_id, run_id=run_id or f"it-{uuid.uuid4().hex}")}


def python_jar() -> str:
    """The flink-python jar of the local stack's Flink."""
    jars = sorted((FLINK_HOME / "opt").glob("flink-python*.jar"))
    assert jars, f"no flink-python jar in {FLINK_HOME / 'opt'}"
    return str(jars[-1])


def build_throttled_jar(directory: Path) -> Path:
    """Compile tests/integration/data/ThrottledSequenceJob.java against the stack's Flink into a jar."""
    classes = directory / "classes"
    classes.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["javac", "-d", str(classes), "-cp", str(FLINK_HOME / "lib" / "*"), str(DATA / "ThrottledSequenceJob.java")],
        check=True,
    )
    jar = directory / "throttled-sequence-job.jar"
    subprocess.run(
        ["jar", "--create", "--file", str(jar), "--main-class", "ThrottledSequenceJob", "-C", str(classes), "."],
        check=True,
    )
    return jar


def throttled_submit(jar: Path, name: str, **kwargs: Any) -> FlinkJobSubmitOperator:
    """A submit task (parallelism 1 unless given) of the throttled sequence job of :func:`build_throttled_jar`.

    :param jar: the built jar.
    :param name: the job's name.
    :param kwargs: more operator arguments.
    """
    kwargs.setdefault("parallelism", 1)
    return FlinkJobSubmitOperator(
        task_id="submit", jar=str(jar), entry_class="ThrottledSequenceJob", job_name=name, **kwargs
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy (the lessons' wait); fail the test after ``timeout`` s."""
    try:
        return wait_for("condition", predicate, timeout, interval)
    except TimeoutError as err:
        pytest.fail(str(err))


def wait_for_state(rest: FlinkRestHook, job_id: str, states: set[str], timeout: float = 90) -> str:
    """Poll the job's state until it is one of ``states`` or ``timeout`` seconds passed; returns the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = rest.get_job_state(job_id)
        if state in states or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def start_sql_job(
    prefix: str,
    select: str = "SELECT n FROM {src}",
    *,
    source_options: str = "'rows-per-second' = '5'",
    properties: Mapping[str, str] | None = None,
) -> str:
    """Submit a datagen -> blackhole job through the SQL Gateway operator without waiting; returns its job id.

    :param prefix: start of the tables' unique name.
    :param select: the query that feeds the sink; ``{src}`` names the datagen table.
    :param source_options: the datagen table's WITH options.
    :param properties: session properties (default: parallelism 1).
    """
    table = f"{prefix}_{uuid.uuid4().hex[:8]}"
    script = (
        f"CREATE TABLE {table}_src (n BIGINT) WITH ('connector' = 'datagen', {source_options});\n"
        f"CREATE TABLE {table} (n BIGINT) WITH ('connector' = 'blackhole');\n"
        f"INSERT INTO {table} {select.format(src=table + '_src')};\n"
    )
    op = FlinkSqlGatewayOperator(
        task_id="start", sql=script, session_properties=dict(properties or {"parallelism.default": "1"})
    )
    (job_id,) = op.execute(context_for("start"))["job_ids"]
    return str(job_id)


async def next_event(trigger: BaseTrigger) -> dict[str, Any]:
    """Run a trigger until its first event; returns the event's payload."""
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def rebuilt(trigger: BaseTrigger) -> BaseTrigger:
    """The trigger as the triggerer rebuilds it: its class by path, from kwargs that survive JSON."""
    classpath, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs, kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt_trigger: BaseTrigger = getattr(importlib.import_module(module), name)(**kwargs)
    return rebuilt_trigger


def first_event(trigger: BaseTrigger, timeout: float = 120) -> dict[str, Any]:
    """Rebuild the trigger from its serialized form and run it to its first event; returns the payload."""
    return asyncio.run(asyncio.wait_for(next_event(rebuilt(trigger)), timeout=timeout))


def job_state(hook: FlinkRestHook, job_id: str) -> str | None:
    job = hook.find_job(job_id)
    return None if job is None else str(job["state"])


def cancel_all(hook: FlinkRestHook, job_ids: list[str]) -> None:
    """Cancel the jobs that are still alive and wait until they are gone (slots freed)."""
    for job_id in job_ids:
        if job_state(hook, job_id) not in TERMINAL | {None}:
            hook.cancel_job(job_id)
    for job_id in job_ids:
        wait_until(lambda job_id=job_id: job_state(hook, job_id) in TERMINAL | {None}, timeout=60)


KAFKA = f"{HOST}:{PORTS['kafka']}"


def produce(topic: str, records: list[dict[str, Any]] | list[bytes]) -> None:
    """Write records to a topic (dicts as JSON, bytes as they are) and wait until Kafka has them all."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": KAFKA})
    for record in records:
        producer.produce(topic, record if isinstance(record, bytes) else json.dumps(record).encode())
    assert producer.flush(30) == 0


def consume(topic: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Read ``count`` JSON records from the start of a topic."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"it-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                records.append(json.loads(message.value()))
    finally:
        consumer.close()
    return records
