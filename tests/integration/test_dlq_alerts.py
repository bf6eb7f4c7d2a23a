"""The dead-letter watcher on the real Kafka: the Kafka provider's KafkaMessageQueueTrigger, as flink_dlq_alerts
configures it (regex subscription, flink_lessons.observability.dlq.dead_letter_event), fires on a dead letter
written the way the malformed-JSON scenario writes them, well within 30 s, and the DAG's task reports it.

The scheduler/triggerer path (asset event -> DAG run) is Airflow's; docs/observability.md shows it under
``make airflow-ui``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import SimpleNamespace

import pytest
from airflow.providers.apache.kafka.triggers.msg_queue import KafkaMessageQueueTrigger
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from flink_lessons.observability import dlq

from tests.conftest import HOST, PORTS

pytestmark = pytest.mark.integration


def test_a_dead_letter_fires_the_watcher_within_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex[:8]
    topic = f"phase1-malformed-dlq-{tag}"
    bootstrap = f"{HOST}:{PORTS['kafka']}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_DLQ_WATCHER",
        json.dumps({"conn_type": "kafka", "extra": {
            "bootstrap.servers": bootstrap, "group.id": f"it-dlq-{tag}", "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": "2000"}}),
    )  # fmt: skip
    admin = AdminClient({"bootstrap.servers": bootstrap})
    trigger = KafkaMessageQueueTrigger(
        topics=[f"^phase1-malformed-dlq-{tag}.*"],  # the DAG's regex, narrowed to this test's topic
        kafka_config_id=dlq.WATCHER_CONN_ID,
        apply_function="flink_lessons.observability.dlq.dead_letter_event",
        poll_interval=1,
    )
    letter = {"reason": "not valid JSON", "payload": '{"order_id": 7, "amount": ', "source_offset": 3}

    async def watch() -> tuple[object, float]:
        events = trigger.run()
        produced_at = 0.0

        async def produce() -> None:
            nonlocal produced_at
            await asyncio.sleep(2)  # the watcher subscribes first, as the triggerer's does before events arrive
            producer = Producer({"bootstrap.servers": bootstrap})
            produced_at = time.monotonic()
            producer.produce(topic, json.dumps(letter).encode())
            assert producer.flush(10) == 0

        task = asyncio.create_task(produce())
        event = await asyncio.wait_for(anext(events), timeout=90)
        await task
        await events.aclose()
        return event, time.monotonic() - produced_at

    # The topic exists before the watcher starts: the provider's trigger fails on a subscription that matches
    # no topic yet (UNKNOWN_TOPIC_OR_PART, "Subscribed topic not available"); see docs/observability.md.
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    try:
        event, seconds = asyncio.run(watch())
    finally:
        admin.delete_topics([topic])
    payload = event.payload  # type: ignore[attr-defined]
    assert payload["topic"] == topic and payload["offset"] == 0
    assert payload["reason"] == "not valid JSON" and payload["payload"] == letter["payload"]
    assert seconds < 30, f"the watcher took {seconds:.1f}s after the dead letter was written"
    print(f"dead letter -> trigger event: {seconds:.1f}s")
    # What the DAG run does with the asset event Airflow records for it ({"from_trigger": True, "payload": ...}).
    asset_event = SimpleNamespace(extra={"from_trigger": True, "payload": payload})
    summary = dlq.report_task(triggering_asset_events={"phase1_malformed_dead_letters": [asset_event]})
    assert summary["count"] == 1 and summary["by_reason"] == {"not valid JSON": 1}
    assert summary["sample"][0]["payload"] == letter["payload"]
