"""The Variable families of the phase-3 lessons (see :mod:`flink_lessons.settings`), one JSON Variable each.

``flink_phase3_partitioning``: how much load, how skewed, at what parallelism, and how the fix batches.
``flink_phase3_offsets``: how many events per batch, and where specific-offsets and the group reset start.
``flink_phase3_backpressure``: the backlog, the tail's rate, how slow the slow operator is, which variants run.
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


def _kafka_keys(use: str) -> tuple[Key, Key]:
    """The two Kafka keys of every phase-3 family: the Airflow connection and the brokers as Flink reaches them.

    :param use: what the lesson does through the connection.
    """
    return (
        Key("kafka_conn_id", "kafka_default", CONN_ID, f"Airflow Kafka connection ({use})."),
        Key("flink_bootstrap_servers", None, Bootstrap(),
            "Kafka bootstrap servers as Flink reaches them; null: the Kafka connection's bootstrap.servers.",
            nullable=True),
    )  # fmt: skip


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
        *_kafka_keys("the load command writes through it"),
    ),
    checks=(_enough_keys,),
    bootstrap_key="flink_bootstrap_servers",
)


def _offsets_inside_first_batch(values: Mapping[str, Any]) -> Iterator[Problem]:
    batch, partitions = values.get("batch_events"), values.get("partitions")
    if batch is None or partitions is None:
        return
    limit = batch // (2 * partitions)
    for key in ("specific_offset", "reset_offset"):
        value = values.get(key)
        if value is not None and value >= limit:
            yield Problem((key, "batch_events", "partitions"), f"{key} ({value}) must be below batch_events / (2 x "
                          f"partitions) = {limit}, so it lies inside the first batch on every partition")  # fmt: skip


_OFFSETS_KEYS = (
    Key("topic_prefix", "phase3-offsets", Topic(reserve=TOPIC_SUFFIX),
        "Topics are <prefix>-source|read-<run tag>; consumer groups <prefix>-<mode>-<run tag>."),
    Key("partitions", 2, Integer(1), "Partitions of the source topic."),
    Key("batch_events", 1000, Integer(20),
        "Events in each of the three batches (A before the timestamp, B after it, C while the job is stopped)."),
    Key("keys", 100, Integer(1), "Distinct keys (customers) of the events; they spread them over the partitions."),
    Key("seed", 7, Integer(0), "Seed of the key sequence: the same seed, the same records on the same offsets."),
    Key("specific_offset", 100, Integer(0), "scan.startup.mode specific-offsets starts every partition here."),
    Key("reset_offset", 150, Integer(0),
        "The consumer group's offsets are reset to this offset on every partition through the admin API."),
    Key("parallelism", 1, Integer(1), "Parallelism of the jobs."),
    Key("timeout", "3 min", DurationRule(1000), "How long a step waits for the job to read or commit."),
    *_kafka_keys("load, admin API, reading back"),
)  # fmt: skip

OFFSETS = Family(
    variable="flink_phase3_offsets",
    title="Phase 3, lesson 2: consumer groups and offset resets",
    keys=_OFFSETS_KEYS,
    checks=(_offsets_inside_first_batch,),
    bootstrap_key="flink_bootstrap_servers",
)


VARIANT_NAMES = ("baseline", "unchained", "buffer_timeout_0", "buffer_timeout_1s", "object_reuse", "parallelism_2")
"""The backpressure lesson's variants (``flink_lessons.phase3.backpressure.VARIANTS`` defines them)."""


@dataclass(frozen=True)
class Variants:
    """Names of the backpressure lesson's variants, comma-separated (``baseline,unchained``)."""

    rule = f"distinct names among {', '.join(VARIANT_NAMES)}"

    def __call__(self, value: Any) -> str:
        from flink_lessons.phase3.backpressure import parse_variants

        return ",".join(parse_variants(value))


_BACKPRESSURE_KEYS = (
    Key("topic_prefix", "phase3-backpressure", Topic(reserve=2 + max(map(len, VARIANT_NAMES)) + 8),
        "Topics are <prefix>-input-<run tag> and <prefix>-<variant>-<run tag>."),
    Key("backlog_events", 20_000, Integer(100), "Events in the input topic before the jobs start."),
    Key("tail_events", 1_000, Integer(10), "Events written at tail_rate once every variant drained the backlog."),
    Key("tail_rate", 200.0, Number(1), "Events/s of the tail (latency is measured on it, below saturation)."),
    Key("work", 160, Integer(1), "Regular-expression repetitions per event in the slow operator."),
    Key("variants", "baseline,unchained,buffer_timeout_0,object_reuse,parallelism_2", Variants(),
        "The variants that run side by side (each takes one slot; parallelism_2 two)."),
    Key("timeout", "5 min", DurationRule(1000), "How long a step waits for the jobs."),
    *_kafka_keys("load, reading back"),
)  # fmt: skip

BACKPRESSURE = Family(
    variable="flink_phase3_backpressure",
    title="Phase 3, lesson 3: backpressure and throughput tuning",
    keys=_BACKPRESSURE_KEYS,
    bootstrap_key="flink_bootstrap_servers",
)

FAMILIES = {family.variable: family for family in (PARTITIONING, OFFSETS, BACKPRESSURE)}
"""The phase-3 families by Variable name."""

TOPIC_ROLES = {PARTITIONING.variable: ("uniform", "zipf", "nullkeys"), OFFSETS.variable: ("source", "read"),
               BACKPRESSURE.variable: ("input", *VARIANT_NAMES)}  # fmt: skip
"""The topics each lesson creates, by role (the backpressure lesson's depend on its variants)."""


def topic_names(variable: str, prefix: str, tag: str) -> dict[str, str]:
    """A run's topics: ``<prefix>-<role>-<run tag>`` for each of the lesson's roles.

    :param variable: the lesson's Variable.
    :param prefix: the ``topic_prefix`` setting.
    :param tag: the run tag.
    """
    return {role: f"{prefix}-{role}-{tag}" for role in TOPIC_ROLES[variable]}
