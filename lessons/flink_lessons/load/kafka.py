"""Kafka through its admin API and plain clients, for the load command and the lessons (confluent-kafka).

:class:`Kafka` holds one librdkafka configuration: ``bootstrap.servers`` plus whatever a connection needs
(security settings). :meth:`Kafka.from_connection` builds it from an Airflow Kafka connection, the way the
Kafka provider's hooks read it, so a DAG task and the command line reach the same broker alike.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SETTLING = frozenset({6, 5, 3})
"""NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION: a topic that is still being created."""

_CLIENT_ONLY = ("group.id", "auto.offset.reset", "enable.auto.commit", "isolation.level")
"""Consumer settings an Airflow Kafka connection may carry that the admin client and producers refuse."""


@dataclass(frozen=True)
class Record:
    """One record read back from a topic.

    :param partition: its partition.
    :param offset: its offset.
    :param key: its key (``None`` for a null key).
    :param value: its value.
    :param timestamp: its timestamp, epoch ms.
    """

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int


@dataclass(frozen=True)
class Kafka:
    """One Kafka cluster as the clients reach it.

    :param config: librdkafka settings shared by every client (``bootstrap.servers`` at least).
    """

    config: Mapping[str, Any]
    _admin: list[Any] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_bootstrap(cls, bootstrap_servers: str, **config: Any) -> Kafka:
        """A cluster reached at ``bootstrap_servers`` without further settings.

        :param bootstrap_servers: ``host:port[,host:port...]``.
        :param config: more librdkafka settings.
        """
        return cls({"bootstrap.servers": bootstrap_servers, **config})

    @classmethod
    def from_connection(cls, kafka_conn_id: str) -> Kafka:
        """The cluster of an Airflow Kafka connection (its extras are librdkafka settings).

        :param kafka_conn_id: the connection id, e.g. ``kafka_default``.
        :raises ValueError: when the connection has no ``bootstrap.servers``.
        """
        from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook

        extra = dict(KafkaBaseHook.get_connection(kafka_conn_id).extra_dejson)
        if not extra.get("bootstrap.servers"):
            raise ValueError(f"the Kafka connection {kafka_conn_id!r} has no 'bootstrap.servers' in its extras")
        return cls({key: value for key, value in extra.items() if key not in _CLIENT_ONLY})

    @property
    def bootstrap_servers(self) -> str:
        """``bootstrap.servers``."""
        return str(self.config["bootstrap.servers"])

    def admin(self) -> Any:
        """An AdminClient, made once (keep a reference while its futures run: a collected client fails them)."""
        if not self._admin:
            from confluent_kafka.admin import AdminClient

            self._admin.append(AdminClient({"log_level": 3, **self.config}))
        return self._admin[0]

    def consumer(self, **settings: Any) -> Any:
        """A Consumer in a fresh group that commits nothing.

        :param settings: more settings, e.g. ``isolation.level``.
        """
        from confluent_kafka import Consumer

        return Consumer(
            {
                "group.id": f"flink-lessons-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 3,
                **self.config,
                **settings,
            }
        )

    # ------------------------------------------------------------------------------------------ topics

    def partitions(self, topic: str, timeout: float = 15) -> int | None:
        """How many partitions ``topic`` has; ``None`` when it does not exist.

        :param topic: the topic.
        :param timeout: seconds.
        """
        # All topics' metadata: asking for one topic by name makes a broker with auto.create.topics.enable
        # create it (with the broker's default partition count).
        info = self.admin().list_topics(timeout=timeout).topics.get(topic)
        if info is None or info.error is not None:
            return None
        return len(info.partitions)

    def create_topic(self, topic: str, partitions: int = 1, config: Mapping[str, str] | None = None) -> None:
        """Create a topic (replication factor 1) and wait until its metadata shows every partition.

        :param topic: the name.
        :param partitions: how many partitions.
        :param config: topic settings, e.g. ``{"message.timestamp.type": "LogAppendTime"}``.
        """
        from confluent_kafka.admin import NewTopic

        new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
        self.admin().create_topics([new], operation_timeout=30)[topic].result(timeout=60)
        deadline = time.monotonic() + 30
        while not self._led(topic, partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} was created but its {partitions} partitions got no leader in 30s")
            time.sleep(0.1)

    def _led(self, topic: str, partitions: int) -> bool:
        """Whether the topic's metadata shows ``partitions`` partitions, each with a leader."""
        info = self.admin().list_topics(timeout=15).topics.get(topic)
        if info is None or info.error is not None or len(info.partitions) != partitions:
            return False
        return all(part.leader >= 0 and part.error is None for part in info.partitions.values())

    def delete_topics(self, topics: Iterable[str]) -> None:
        """Delete topics; a topic that is already gone is fine.

        :param topics: names.
        """
        names = list(topics)
        if names:
            for future in self.admin().delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):  # best-effort cleanup: a missing topic is the goal
                    future.result(timeout=60)

    def end_offsets(self, topic: str, partitions: int | None = None) -> dict[int, int]:
        """The offset after the last record of each partition (what the next record will get).

        :param topic: the topic.
        :param partitions: its partition count, when known.
        """
        return self._offsets(topic, partitions, "latest")

    def start_offsets(self, topic: str, partitions: int | None = None) -> dict[int, int]:
        """The first offset still held in each partition.

        :param topic: the topic.
        :param partitions: its partition count, when known.
        """
        return self._offsets(topic, partitions, "earliest")

    def _offsets(self, topic: str, partitions: int | None, which: str) -> dict[int, int]:
        from confluent_kafka import KafkaException, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        count = partitions if partitions is not None else self.partitions(topic)
        if count is None:
            raise ValueError(f"topic {topic!r} does not exist")
        spec = OffsetSpec.latest() if which == "latest" else OffsetSpec.earliest()
        deadline = time.monotonic() + 30
        while True:
            futures = self.admin().list_offsets({TopicPartition(topic, p): spec for p in range(count)})
            try:
                return {tp.partition: int(future.result(timeout=30).offset) for tp, future in futures.items()}
            except KafkaException as error:
                # A new topic's leaders reach the client's metadata cache a moment after the broker has them
                # (NOT_LEADER_FOR_PARTITION, not flagged retriable by the client).
                if error.args[0].code() not in _SETTLING or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    # ------------------------------------------------------------------------------------------ groups

    def group_offsets(self, group: str, topic: str | None = None) -> dict[tuple[str, int], int]:
        """The offsets a consumer group committed, ``(topic, partition) -> offset`` (none: ``{}``).

        :param group: the group id.
        :param topic: only this topic's partitions.
        """
        from confluent_kafka import ConsumerGroupTopicPartitions

        future = self.admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
        result = future.result(timeout=30)
        return {
            (tp.topic, tp.partition): int(tp.offset)
            for tp in result.topic_partitions or []
            if tp.offset >= 0 and (topic is None or tp.topic == topic)
        }

    def set_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Reset a consumer group's committed offsets (the group must have no active members).

        :param group: the group id.
        :param offsets: ``(topic, partition) -> offset`` to commit.
        """
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        self.admin().alter_consumer_group_offsets([request])[group].result(timeout=30)

    def groups_on(self, topics: Iterable[str]) -> dict[str, dict[tuple[str, int], int]]:
        """Every consumer group with committed offsets on any of ``topics``, and those offsets.

        Flink's Kafka source assigns partitions itself (it never joins its group), so its group shows in the
        admin API only through the offsets it commits on checkpoints.

        :param topics: topic names.
        """
        wanted = set(topics)
        found: dict[str, dict[tuple[str, int], int]] = {}
        listing = self.admin().list_consumer_groups().result(timeout=30)
        for group in sorted(g.group_id for g in listing.valid):
            offsets = {tp: o for tp, o in self.group_offsets(group).items() if tp[0] in wanted}
            if offsets:
                found[group] = offsets
        return found

    # ------------------------------------------------------------------------------------------ reading

    def read(
        self,
        topic: str,
        *,
        until: Mapping[int, int] | None = None,
        read_committed: bool = False,
        timeout: float = 60,
        on_record: Callable[[Record], None] | None = None,
    ) -> list[Record]:
        """Read a topic from its start up to ``until`` (default: its end offsets now), every partition.

        With ``read_committed`` the end is the last stable offset: a transactional producer's open
        transaction is not read.

        :param topic: the topic.
        :param until: ``partition -> end offset`` to stop at.
        :param read_committed: read only committed transactional records.
        :param timeout: seconds; a read that does not reach the end in time raises.
        :param on_record: also called for each record (instead of keeping nothing else).
        :raises TimeoutError: the end was not reached in time.
        """
        from confluent_kafka import TopicPartition

        ends = dict(until) if until is not None else self.end_offsets(topic)
        consumer = self.consumer(**({"isolation.level": "read_committed"} if read_committed else {}))
        records: list[Record] = []
        position = {p: 0 for p in ends}
        deadline = time.monotonic() + timeout
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in ends])
            if read_committed:  # the stable end: offsets past it belong to open or aborted transactions
                for p in ends:
                    ends[p] = min(ends[p], consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1])
            while any(position[p] < ends[p] for p in ends):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic}: at {position} of {ends} after {timeout:.0f}s")
                for msg in consumer.consume(num_messages=5000, timeout=0.5):
                    if msg.error() is not None:
                        continue
                    p, offset = msg.partition(), msg.offset()
                    position[p] = max(position[p], offset + 1)
                    if offset >= ends.get(p, 0):
                        continue
                    record = Record(p, offset, msg.key(), msg.value() or b"", msg.timestamp()[1])
                    records.append(record)
                    if on_record is not None:
                        on_record(record)
                if read_committed:  # aborted records are skipped: the position moves past them unseen
                    for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                        if tp.offset >= 0:
                            position[tp.partition] = max(position[tp.partition], tp.offset)
        finally:
            consumer.close()
        return records
