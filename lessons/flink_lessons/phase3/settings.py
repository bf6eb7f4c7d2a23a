"""The Variable families of the phase-3 lessons (see :mod:`flink_lessons.settings`), one JSON Variable each.

``flink_phase3_partitioning``: how much load, how skewed, at what parallelism, and how the fix batches.
``flink_phase3_offsets``: how many events per batch, and where specific-offsets and the group reset start.
``flink_phase3_backpressure``: the backlog, the tail's rate, how slow the slow operator is, which variants run.
``flink_phase3_checkpoints``: which checkpoint settings run side by side and for how long; the failure drill's
kills, rate, and the local stack whose TaskManagers it kills.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from flink_lessons.load.keys import parse_skew
from flink_lessons.rules import CONN_ID, Bootstrap, DurationRule, Integer, Name, Number, Topic, parse_duration
from flink_lessons.settings import Family, Key, Problem

P = TypeVar("P")

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


def _family(variable: str, title: str, keys: tuple[Key, ...], kafka_use: str,
            checks: tuple[Any, ...] = ()) -> Family:  # fmt: skip
    """A phase-3 lesson's family: its own keys, then the Kafka keys every lesson has (:func:`_kafka_keys`).

    :param variable: the Variable.
    :param title: the lesson, for the docs.
    :param keys: its own keys.
    :param kafka_use: what the lesson does through the Kafka connection.
    :param checks: checks across keys.
    """
    return Family(variable=variable, title=title, keys=(*keys, *_kafka_keys(kafka_use)), checks=checks,
                  bootstrap_key="flink_bootstrap_servers")  # fmt: skip


def _enough_keys(values: Mapping[str, Any]) -> Iterator[Problem]:
    keys, parallelism = values.get("keys"), values.get("parallelism")
    if keys is not None and parallelism is not None and keys < 4 * parallelism:
        yield Problem(("keys", "parallelism"), f"keys ({keys}) must be at least 4x the parallelism ({parallelism}) "
                      "for the uniform topic to spread evenly")  # fmt: skip


PARTITIONING = _family(
    "flink_phase3_partitioning",
    "Phase 3, lesson 1: partitioning and key selection",
    (
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
    ),
    "the load command writes through it",
    checks=(_enough_keys,),
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
)  # fmt: skip

OFFSETS = _family(
    "flink_phase3_offsets",
    "Phase 3, lesson 2: consumer groups and offset resets",
    _OFFSETS_KEYS,
    "load, admin API, reading back",
    checks=(_offsets_inside_first_batch,),
)


def params_of(cls: type[P], values: Mapping[str, Any], **given: Any) -> P:
    """A lesson's params (a dataclass) from its validated values: each field the value of the same name when
    there is one (else its default), unless ``given`` gives it (a value converted, or a key of another name).

    :param cls: the params class.
    :param values: the settings' values (JSON form).
    :param given: fields given as they are.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.name in values and f.name not in given]  # type: ignore[arg-type]
    return cls(**{name: values[name] for name in names}, **given)


class FromSettings:
    """A lesson's params (a dataclass) built from its validated Variable values by :func:`params_of`; a lesson
    overrides :meth:`given` for the fields that are not the value of the same name as it is."""

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> Self:
        """The params of validated values (JSON form: durations as text).

        :param values: the settings' values.
        """
        return params_of(cls, values, **cls.given(values))

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Fields converted from the values (none by default).

        :param values: the settings' values.
        """
        return {}


def seconds(value: Any) -> float:
    """A validated duration setting (``"5 min"``) in seconds.

    :param value: the setting.
    """
    return parse_duration(value).seconds


def parse_names(value: Any, known: Sequence[str]) -> list[str]:
    """``"a,b"`` (or a list) -> names, each among ``known``, no repeats, at least one.

    :param value: the setting.
    :param known: the names a lesson knows.
    :raises ValueError: naming the unknown ones.
    """
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value or [])
    if any(n not in known for n in names) or not names or len(set(names)) != len(names):
        raise ValueError(f"must be {NameList(tuple(known)).rule}, got {value!r}")
    return names


@dataclass(frozen=True)
class NameList:
    """Names among a lesson's known ones, comma-separated (``baseline,unchained``).

    :param known: the names the lesson knows.
    """

    known: tuple[str, ...]

    @property
    def rule(self) -> str:
        """What a value must be, for messages and the docs."""
        return f"distinct names among {', '.join(self.known)}"

    def __call__(self, value: Any) -> str:
        return ",".join(parse_names(value, self.known))


VARIANT_NAMES = ("baseline", "unchained", "buffer_timeout_0", "buffer_timeout_1s", "object_reuse", "parallelism_2")
"""The backpressure lesson's variants (``flink_lessons.phase3.backpressure.VARIANTS`` defines them)."""


_BACKPRESSURE_KEYS = (
    Key("topic_prefix", "phase3-backpressure", Topic(reserve=2 + max(map(len, VARIANT_NAMES)) + 8),
        "Topics are <prefix>-input-<run tag> and <prefix>-<variant>-<run tag>."),
    Key("backlog_events", 5_000, Integer(100), "Events in the input topic before the jobs start."),
    Key("tail_events", 500, Integer(10), "Events written at tail_rate once every variant drained the backlog."),
    Key("tail_rate", 50.0, Number(1), "Events/s of the tail (latency is measured on it, below saturation)."),
    Key("work", 6, Integer(1), "Times the slow operator runs its regular expression over the event's 1 KB note."),
    Key("variants", "baseline,unchained,buffer_timeout_0,object_reuse,parallelism_2", NameList(VARIANT_NAMES),
        "The variants that run side by side (each takes one slot; parallelism_2 two)."),
    Key("timeout", "5 min", DurationRule(1000), "How long a step waits for the jobs."),
)  # fmt: skip

BACKPRESSURE = _family(
    "flink_phase3_backpressure",
    "Phase 3, lesson 3: backpressure and throughput tuning",
    _BACKPRESSURE_KEYS,
    "load, reading back",
)

CHECKPOINT_SETTING_NAMES = ("hashmap_1s", "interval_5s", "min_pause_3s", "rocksdb_incremental", "aligned_backpressure",
                            "unaligned_backpressure", "timeout_1s_backpressure")  # fmt: skip
"""The checkpoint lesson's settings (``flink_lessons.phase3.checkpoints.SETTINGS`` defines them)."""


def _not_the_shared_stack(values: Mapping[str, Any]) -> Iterator[Problem]:
    folder = values.get("stack_dir")
    if folder is not None and Path(folder).name == ".stack":
        yield Problem(("stack_dir",), "must not be .stack, the shared stack: the drill kills its TaskManagers, and "
                      "every job on it fails with them; use a private stack (e.g. .stack-p3)")  # fmt: skip


CHECKPOINTS = _family(
    "flink_phase3_checkpoints",
    "Phase 3, lesson 4: checkpoint tuning and failure recovery",
    (
        Key("topic_prefix", "phase3-checkpoints", Topic(reserve=TOPIC_SUFFIX),
            "The failure drill's topics are <prefix>-input|output-<run tag>."),
        Key("settings", ",".join(CHECKPOINT_SETTING_NAMES), NameList(CHECKPOINT_SETTING_NAMES),
            "The checkpoint settings that run side by side (one slot each)."),
        Key("sweep_seconds", 60, Integer(10), "Seconds the settings run before their checkpoints are read."),
        Key("rate", 500, Integer(1), "Rows/s of each setting's datagen source."),
        Key("backpressure_rate", 5000, Integer(1), "Rows/s of the backpressure settings' source."),
        Key("keys", 20_000, Integer(1), "Distinct keys: the aggregation's state holds one row each."),
        Key("work", 20, Integer(1), "Regular-expression repetitions per update in the backpressure settings."),
        Key("kills", 3, Integer(1), "TaskManager kills of the failure drill, one after the other."),
        Key("drill_rate", 100, Integer(1), "Events/s the load command writes during the drill."),
        Key("stack_dir", ".stack-p3", Name("a stack folder (FLINK_STACK_DIR)", r"[A-Za-z0-9._/-]{1,200}"),
            "The local stack (stack/cli.py) whose TaskManagers the drill kills: never the shared one."),
        Key("stack_port_offset", 4000, Integer(0), "That stack's FLINK_STACK_PORT_OFFSET."),
        Key("flink_conn_id", "flink_default", CONN_ID, "Flink REST connection of that stack."),
        Key("gateway_conn_id", "flink_sql_gateway_default", CONN_ID, "SQL Gateway connection of that stack."),
        Key("timeout", "5 min", DurationRule(1000), "How long any one wait of the drill may take."),
    ),
    "the drill's load and its exactly-once accounting",
    checks=(_not_the_shared_stack,),
)  # fmt: skip

FAMILIES = {family.variable: family for family in (PARTITIONING, OFFSETS, BACKPRESSURE, CHECKPOINTS)}
"""The phase-3 families by Variable name."""

TOPIC_ROLES = {PARTITIONING.variable: ("uniform", "zipf", "nullkeys"), OFFSETS.variable: ("source", "read"),
               BACKPRESSURE.variable: ("input", *VARIANT_NAMES), CHECKPOINTS.variable: ("input", "output")}  # fmt: skip
"""The topics each lesson creates, by role (the backpressure lesson's depend on its variants)."""


def topic_names(variable: str, prefix: str, tag: str) -> dict[str, str]:
    """A run's topics: ``<prefix>-<role>-<run tag>`` for each of the lesson's roles.

    :param variable: the lesson's Variable.
    :param prefix: the ``topic_prefix`` setting.
    :param tag: the run tag.
    """
    return {role: f"{prefix}-{role}-{tag}" for role in TOPIC_ROLES[variable]}
