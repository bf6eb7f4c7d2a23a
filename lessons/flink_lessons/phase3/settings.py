"""The Variable families of the phase-3 lessons (see :mod:`flink_lessons.settings`), one JSON Variable each.

``flink_phase3_partitioning``: how much load, how skewed, at what parallelism, and how the fix batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flink_lessons.load.keys import parse_skew
from flink_lessons.rules import CONN_ID, Bootstrap, DurationRule, Integer, Number, Topic
from flink_lessons.settings import Family, Key, Problem

TOPIC_SUFFIX = 18
"""Each run appends ``-<role>-<run tag>`` (at most 18 characters) to the topic prefix."""


@dataclass(frozen=True)
class ZipfSkew:
    """A Zipf key skew, ``zipf:<exponent>`` (the lesson compares it with uniform keys)."""

    rule = "'zipf:<exponent>' with an exponent > 0, e.g. 'zipf:2'"

    def __call__(self, value: Any) -> str:
        skew = parse_skew(value)
        if skew.exponent == 0:
            raise ValueError(f"must be zipf:<exponent> (the lesson compares it with uniform keys), got {value!r}")
        return skew.text


def _enough_keys(values: Mapping[str, Any]) -> Iterator[Problem]:
    keys, parallelism = values.get("keys"), values.get("parallelism")
    if keys is not None and parallelism is not None and keys < 4 * parallelism:
        yield Problem(("keys", "parallelism"), f"keys ({keys}) must be at least 4x the parallelism ({parallelism}) "
                      "for the uniform topic to spread evenly")  # fmt: skip


PARTITIONING = Family(
    variable="flink_phase3_partitioning",
    title="Phase 3, lesson 1: partitioning and key selection",
    keys=(
        Key(
            "topic_prefix",
            "phase3-partitioning",
            Topic(reserve=TOPIC_SUFFIX),
            "Topics are <prefix>-uniform|zipf|nullkeys-<run tag>.",
        ),
        Key("partitions", 4, Integer(1), "Partitions of each topic."),
        Key("parallelism", 4, Integer(2), "Parallelism of the keyed aggregations (2 or more: one subtask can be hot)."),
        Key("events", 200_000, Integer(1000), "Events the load command writes to each topic."),
        Key("keys", 10_000, Integer(8), "Distinct keys (customer c1..cN; c1 is the hottest under Zipf)."),
        Key("skew", "zipf:2", ZipfSkew(), "Key distribution of the skewed topics."),
        Key("seed", 42, Integer(0), "Seed of the key sequences: the same seed, the same records."),
        Key(
            "null_key_rate",
            5000.0,
            Number(1),
            "Events/s of the topic written without keys (the sticky partitioner moves on with time).",
        ),
        Key("mini_batch_latency", "1s", DurationRule(1000), "table.exec.mini-batch.allow-latency of the fix."),
        Key("mini_batch_size", 1000, Integer(1), "table.exec.mini-batch.size of the fix."),
        Key("kafka_conn_id", "kafka_default", CONN_ID, "Airflow Kafka connection the load command writes through."),
        Key(
            "flink_bootstrap_servers",
            None,
            Bootstrap(),
            "Kafka bootstrap servers as Flink reaches them; null: the Kafka connection's bootstrap.servers.",
            nullable=True,
        ),
    ),
    checks=(_enough_keys,),
    bootstrap_key="flink_bootstrap_servers",
)

FAMILIES = {family.variable: family for family in (PARTITIONING,)}
"""The phase-3 families by Variable name."""

TOPIC_ROLES = {PARTITIONING.variable: ("uniform", "zipf", "nullkeys")}
"""The topics each lesson creates, by role."""


def topic_names(variable: str, prefix: str, tag: str) -> dict[str, str]:
    """A run's topics: ``<prefix>-<role>-<run tag>`` for each of the lesson's roles.

    :param variable: the lesson's Variable.
    :param prefix: the ``topic_prefix`` setting.
    :param tag: the run tag.
    """
    return {role: f"{prefix}-{role}-{tag}" for role in TOPIC_ROLES[variable]}
