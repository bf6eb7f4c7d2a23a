"""The stack's smoke pipeline: events -> Kafka -> Flink SQL (submitted over the SQL Gateway REST API) -> Kafka.

Talks to the gateway directly, so it checks the stack independently of the provider. Used by the smoke test.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

GATEWAY = "http://127.0.0.1:8083/v1"
FLINK = "http://127.0.0.1:8081"
BOOTSTRAP = "127.0.0.1:9092"


def gateway(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the SQL Gateway; fail with its error text.

    :param method: HTTP method
    :param path: path below /v1
    :param body: JSON body
    """
    resp = requests.request(method, f"{GATEWAY}{path}", json=body, timeout=30)
    if not resp.ok:
        raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:2000]}")
    return resp.json()


def run_statement(session: str, sql: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Execute one statement and read every result page.

    :param session: session handle
    :param sql: the statement
    :param timeout: seconds to wait for the last page
    :return: the result rows
    """
    op = gateway("POST", f"/sessions/{session}/statements", {"statement": sql})["operationHandle"]
    uri: str | None = f"/sessions/{session}/operations/{op}/result/0?rowFormat=JSON"
    rows: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while uri and time.monotonic() < deadline:
        page = gateway("GET", uri.removeprefix("/v1"))
        if page["resultType"] == "NOT_READY":
            time.sleep(0.2)
            continue
        rows += page.get("results", {}).get("data", [])
        uri = page.get("nextResultUri") if page["resultType"] != "EOS" else None
    if uri is not None:
        raise TimeoutError(f"statement did not finish in {timeout}s: {sql}")
    return rows


def wait_job_done(job_id: str, timeout: float = 120) -> str:
    """Poll a job until it reaches a terminal state.

    :param job_id: the Flink job id
    :param timeout: seconds
    :return: the last state seen
    """
    deadline = time.monotonic() + timeout
    state = "UNKNOWN"
    while time.monotonic() < deadline:
        state = requests.get(f"{FLINK}/jobs/{job_id}", timeout=10).json()["state"]
        if state in {"FINISHED", "FAILED", "CANCELED"}:
            break
        time.sleep(0.5)
    return state


def run_pipeline(events: int) -> tuple[list[dict[str, Any]], str]:
    """Produce ``events`` JSON events, run a bounded INSERT through the gateway, and consume the sink.

    :param events: how many events to produce
    :return: the sink's rows sorted by id, and the job's final state
    """
    suffix = uuid.uuid4().hex[:8]
    source, sink = f"smoke-in-{suffix}", f"smoke-out-{suffix}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in (source, sink)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for i in range(events):
        event = {"id": i, "user": f"u{i % 7}", "amount": i * 0.5}
        producer.produce(source, key=str(i).encode(), value=json.dumps(event).encode())
    if producer.flush(30) != 0:
        raise RuntimeError("not every event reached Kafka within 30 s")

    session = gateway("POST", "/sessions", {"sessionName": f"smoke-{suffix}"})["sessionHandle"]
    try:
        run_statement(session, f"""
            CREATE TABLE src (id BIGINT, `user` STRING, amount DOUBLE) WITH (
              'connector' = 'kafka', 'topic' = '{source}', 'properties.bootstrap.servers' = '{BOOTSTRAP}',
              'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
              'format' = 'json')""")
        run_statement(session, f"""
            CREATE TABLE dst (id BIGINT, `user` STRING, doubled DOUBLE) WITH (
              'connector' = 'kafka', 'topic' = '{sink}', 'properties.bootstrap.servers' = '{BOOTSTRAP}',
              'format' = 'json')""")
        rows = run_statement(
            session, "INSERT INTO dst SELECT id, UPPER(`user`), amount * 2 FROM src WHERE MOD(id, 2) = 0"
        )
        state = wait_job_done(rows[0]["fields"][0])
    finally:
        requests.delete(f"{GATEWAY}/sessions/{session}", timeout=10)

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"smoke-{suffix}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([sink])
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(got) < events // 2 and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        value = msg.value() if msg is not None and msg.error() is None else None
        if value is not None:
            got.append(json.loads(value))
    consumer.close()
    return sorted(got, key=lambda r: r["id"]), state
