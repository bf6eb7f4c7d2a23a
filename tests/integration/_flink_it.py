"""Helpers for the operator/sensor/trigger integration tests: a minimal task context, a tiny jar, cleanup.

Each test gets a unique DAG run id, so its deterministic job ids are new; every job a test starts is
cancelled when it ends (other people share the cluster).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
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


def wait_until(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


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


@pytest.fixture
def rest() -> FlinkRestHook:
    return FlinkRestHook()


@pytest.fixture
def started_jobs(rest: FlinkRestHook) -> Iterator[list[str]]:
    """Job ids a test started; all cancelled at teardown."""
    jobs: list[str] = []
    yield jobs
    cancel_all(rest, jobs)


@pytest.fixture(scope="session")
def throttled_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_throttled_jar(tmp_path_factory.mktemp("jar"))


KAFKA = f"{HOST}:{PORTS['kafka']}"


@pytest.fixture
def topics() -> Iterator[Callable[[str], str]]:
    """Make unique Kafka topics (one partition); all deleted at teardown."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": KAFKA})
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
        made.append(name)
        return name

    yield make
    if made:
        for future in admin.delete_topics(made).values():
            future.result(timeout=30)


def produce(topic: str, records: list[dict[str, Any]]) -> None:
    """Write JSON records to a topic and wait until Kafka has them all."""
    import json

    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": KAFKA})
    for record in records:
        producer.produce(topic, json.dumps(record).encode())
    assert producer.flush(30) == 0


def consume(topic: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Read ``count`` JSON records from the start of a topic."""
    import json

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
