"""The load command against the real Kafka: it creates the topic with the partitions asked for, writes exactly
the events asked for, keyed records land where Kafka's murmur2 partitioner says, the same seed gives the same
records, and a topic with another partition count is refused before anything is produced."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import uuid

import pytest
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import parse_skew
from flink_lessons.load.partitioner import partition_for
from flink_lessons.load.run import LoadError, LoadSpec, load

pytestmark = pytest.mark.integration

BOOTSTRAP = "127.0.0.1:9092"


def test_load_command_writes_keyed_events_where_murmur2_says() -> None:
    kafka = Kafka.from_bootstrap(BOOTSTRAP)
    topic = f"it-load-{uuid.uuid4().hex[:8]}"
    try:
        # The command line, as a user runs it: a process of its own, JSON summary on stdout.
        done = subprocess.run(
            [sys.executable, "-m", "flink_lessons.load", "--topic", topic, "--rate", "20000", "--keys", "50",
             "--skew", "zipf:1.5", "--partitions", "4", "--count", "6000", "--seed", "11",
             "--null-key-share", "0.1", "--bootstrap-servers", BOOTSTRAP, "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "[load]" in done.stderr and "rate" in done.stderr  # the progress line
        summary = json.loads(done.stdout)
        assert summary["produced"] == 6000 and summary["failed"] == 0 and summary["partitions"] == 4
        assert summary["spec"]["seed"] == 11
        records = kafka.read(topic, timeout=60)
        assert len(records) == 6000
        assert sorted(json.loads(r.value)["order_id"] for r in records) == list(range(6000))
        per_partition = collections.Counter(r.partition for r in records)
        assert {int(p): n for p, n in summary["per_partition"].items()} == dict(per_partition)
        # Every keyed record is on murmur2's partition; the value names its key also without a message key.
        keyed = [r for r in records if r.key is not None]
        assert all(r.partition == partition_for(r.key, 4) for r in keyed if r.key is not None)
        assert all(json.loads(r.value)["customer"] == r.key.decode() for r in keyed if r.key is not None)
        assert len(records) - len(keyed) == summary["null_keys"] > 0
        hottest = collections.Counter(json.loads(r.value)["customer"] for r in records).most_common(1)[0]
        assert hottest[0] == "c1" == summary["hottest"]["key"]

        # The same seed again (from Python): the same keys, after the first run's ids.
        again = load(LoadSpec(topic=topic, rate=None, keys=50, skew=parse_skew("zipf:1.5"), partitions=4,
                              count=6000, seed=11, null_key_share=0.1, first_id=6000), kafka)  # fmt: skip
        assert again.produced == 6000 and again.keyed_predicted == {int(p): n for p, n in
                                                                     summary["keyed_predicted"].items()}  # fmt: skip
        second = {json.loads(r.value)["order_id"] - 6000: json.loads(r.value)["customer"]
                  for r in kafka.read(topic, timeout=60) if json.loads(r.value)["order_id"] >= 6000}  # fmt: skip
        first = {json.loads(r.value)["order_id"]: json.loads(r.value)["customer"] for r in records}
        assert second == first

        # A topic with another partition count: refused, nothing produced.
        before = kafka.end_offsets(topic)
        with pytest.raises(LoadError, match="has 4 partition"):
            load(LoadSpec(topic=topic, rate=None, partitions=2, count=10), kafka)
        assert kafka.end_offsets(topic) == before
    finally:
        kafka.delete_topics([topic])
