"""Kafka steps of the lessons: create topics, and note where a topic's next output will start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class CreateTopicsOperator(BaseOperator):
    """Create topics that do not exist yet, one partition each (the scenarios' event order depends on it).

    :param kafka_config_id: the Kafka connection (templated).
    :param topics: the topic names (templated).
    :param enabled: create them; ``False`` (templated, e.g. a setting) only logs that they must exist.
    """

    template_fields: Sequence[str] = ("kafka_config_id", "topics", "enabled")

    def __init__(self, *, kafka_config_id: Any, topics: Any, enabled: Any = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka_config_id = kafka_config_id
        self.topics = topics
        self.enabled = enabled

    def execute(self, context: Context) -> list[str]:
        """Create the topics through the Kafka provider's admin hook."""
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        names = list(self.topics)
        if not self.enabled:
            self.log.info("Creating topics is turned off (create_topics): %s must exist already", names)
            return []
        KafkaAdminClientHook(kafka_config_id=self.kafka_config_id).create_topic([(name, 1, 1) for name in names])
        return names


def end_offsets(kafka_config_id: str, topics: Sequence[str]) -> dict[str, dict[str, int]]:
    """Where each partition of each topic ends now: the offset its next record will get.

    :param kafka_config_id: a Kafka consumer connection.
    :param topics: the topics.
    :return: topic -> partition (as text, like JSON keys) -> offset.
    """
    from airflow.providers.apache.kafka.hooks.consume import KafkaConsumerHook
    from confluent_kafka import TopicPartition

    consumer = KafkaConsumerHook(topics=[], kafka_config_id=kafka_config_id).get_conn
    try:
        ends: dict[str, dict[str, int]] = {}
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            ends[topic] = {str(p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                           for p in partitions}  # fmt: skip
        return ends
    finally:
        consumer.close()


def starts_of(ends: Mapping[str, Mapping[str, int]] | None, topic: str) -> dict[str, int]:
    """The partition -> first offset map of one topic, from :func:`end_offsets` (empty: from the start).

    :param ends: what :func:`end_offsets` returned before the output was written.
    :param topic: the topic.
    """
    return dict((ends or {}).get(topic, {}))
