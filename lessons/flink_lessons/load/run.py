"""One load run: a validated :class:`LoadSpec`, the topic checked (or created) first, then the rate-controlled
producer, then a :class:`LoadSummary` of what reached Kafka.

Library entry point of the load command (``python -m flink_lessons.load``) and of every lesson that writes
events: ``load(LoadSpec(topic="t", rate=50_000, keys=10_000, skew=parse_skew("zipf:1.2"), seconds=60),
Kafka.from_bootstrap("127.0.0.1:9092"))``.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import KeyChooser, Skew
from flink_lessons.load.partitioner import partition_for
from flink_lessons.load.producer import Progress, RateProducer
from flink_lessons.load.schemas import schema_named
from flink_lessons.rules import check_topic


class LoadError(ValueError):
    """The load cannot start: a bad setting, or a topic that does not fit it. Nothing was produced."""


@dataclass(frozen=True)
class LoadSpec:
    """What to produce. Checked when made: a bad value raises :class:`LoadError` naming it.

    :param topic: the topic (created when missing).
    :param rate: events per second; ``None`` for as fast as possible.
    :param keys: distinct keys.
    :param skew: how keys are drawn (:func:`~flink_lessons.load.keys.parse_skew`).
    :param partitions: partitions the topic must have (``None``: any; a new topic gets 1).
    :param seconds: stop after this long (``None``: only ``count`` limits the run).
    :param count: stop after this many events (``None``: only ``seconds`` limits the run).
    :param schema: the event schema (:data:`~flink_lessons.load.schemas.SCHEMAS`).
    :param seed: the key sequence's seed; ``None`` picks one (the summary names it, for a rerun).
    :param null_key_share: share of events sent without a Kafka key.
    :param first_id: the first event's id (``order_id``).
    """

    topic: str
    rate: float | None
    keys: int = 1000
    skew: Skew = field(default_factory=Skew)
    partitions: int | None = None
    seconds: float | None = None
    count: int | None = None
    schema: str = "orders"
    seed: int | None = None
    null_key_share: float = 0.0
    first_id: int = 0

    def __post_init__(self) -> None:
        problems = []
        try:
            check_topic(self.topic)
        except ValueError as error:
            problems.append(f"topic {error}")
        if self.rate is not None and not self.rate > 0:
            problems.append(f"rate must be > 0 events/s (or 'max'), got {self.rate}")
        if self.keys < 1:
            problems.append(f"keys must be at least 1, got {self.keys}")
        if self.partitions is not None and self.partitions < 1:
            problems.append(f"partitions must be at least 1, got {self.partitions}")
        if self.seconds is None and self.count is None:
            problems.append("give a duration or a count: the run needs an end")
        if self.seconds is not None and not self.seconds > 0:
            problems.append(f"duration must be > 0 s, got {self.seconds}")
        if self.count is not None and self.count < 1:
            problems.append(f"count must be at least 1, got {self.count}")
        if not 0.0 <= self.null_key_share <= 1.0:
            problems.append(f"null-key share must be within 0..1, got {self.null_key_share}")
        if self.first_id < 0:
            problems.append(f"first id must be >= 0, got {self.first_id}")
        try:
            schema_named(self.schema)
        except ValueError as error:
            problems.append(str(error))
        if problems:
            raise LoadError("; ".join(problems))

    def with_seed(self) -> LoadSpec:
        """This spec with a seed picked when it has none."""
        if self.seed is not None:
            return self
        return replace(self, seed=random.SystemRandom().randrange(1, 2**31))


@dataclass
class LoadSummary:
    """What one load run produced.

    :param topic: the topic.
    :param partitions: its partition count.
    :param spec: the settings (seed included).
    :param produced: events handed to the client.
    :param failed: events not delivered.
    :param seconds: seconds producing took.
    :param rate: events/s achieved (handed to the client).
    :param acked_rate: events/s from the start until the broker acknowledged the last one.
    :param first_id: the first event id.
    :param end_id: one past the last.
    :param per_partition: records each partition gained during the run (end offsets after - before).
    :param keyed_predicted: records per partition the keyed events should give (Kafka's murmur2 partitioner).
    :param null_keys: events sent without a key.
    :param distinct_keys: distinct keys drawn.
    :param hottest: the most frequent key, its events and its share of the run.
    :param expected_hottest_share: that share as the skew predicts it.
    :param errors: the first delivery errors.
    """

    topic: str
    partitions: int
    spec: dict[str, Any]
    produced: int
    failed: int
    seconds: float
    rate: float
    acked_rate: float
    first_id: int
    end_id: int
    per_partition: dict[int, int]
    keyed_predicted: dict[int, int]
    null_keys: int
    distinct_keys: int
    hottest: dict[str, Any]
    expected_hottest_share: float
    errors: list[str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (partition numbers as string keys)."""
        data = asdict(self)
        data["per_partition"] = {str(p): n for p, n in self.per_partition.items()}
        data["keyed_predicted"] = {str(p): n for p, n in self.keyed_predicted.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadSummary:
        """The summary back from :meth:`to_json` (e.g. out of an XCom).

        :param data: the JSON form.
        """
        fields = dict(data)
        for name in ("per_partition", "keyed_predicted"):
            fields[name] = {int(p): int(n) for p, n in fields[name].items()}
        return cls(**fields)

    def lines(self) -> list[str]:
        """The summary as text lines."""
        spec = self.spec
        target = "as fast as possible" if spec["rate"] is None else f"{spec['rate']:,.0f}/s asked"
        parts = ", ".join(f"p{p}: {n:,}" for p, n in sorted(self.per_partition.items()))
        return [
            f"topic {self.topic} ({self.partitions} partition(s)), schema {spec['schema']}",
            f"produced {self.produced:,} events (ids {self.first_id}..{self.end_id - 1}) in {self.seconds:.1f}s: "
            f"{self.rate:,.0f} events/s ({target}), {self.acked_rate:,.0f}/s until acknowledged; {self.failed} failed",
            f"keys: {spec['keys']:,} ({spec['skew']}), {self.distinct_keys:,} drawn; hottest {self.hottest['key']} "
            f"with {self.hottest['share']:.1%} of events (expected {self.expected_hottest_share:.1%}); "
            f"{self.null_keys:,} without a key",
            f"records per partition: {parts}",
            f"seed {spec['seed']} (rerun with --seed {spec['seed']} for the same keys)",
        ]


def load(
    spec: LoadSpec,
    kafka: Kafka,
    *,
    progress: Callable[[Progress], None] | None = None,
    producer_config: dict[str, Any] | None = None,
) -> LoadSummary:
    """Check the topic (create it when missing), then produce as ``spec`` says and summarize.

    :param spec: what to produce.
    :param kafka: the cluster.
    :param progress: called about once a second while producing.
    :param producer_config: librdkafka settings over the defaults (e.g. ``acks``).
    :raises LoadError: the topic exists with another partition count; nothing is produced.
    """
    spec = spec.with_seed()
    assert spec.seed is not None
    schema = schema_named(spec.schema)
    partitions = kafka.partitions(spec.topic)
    if partitions is None:
        partitions = spec.partitions or 1
        kafka.create_topic(spec.topic, partitions)
    elif spec.partitions is not None and partitions != spec.partitions:
        raise LoadError(
            f"topic {spec.topic} has {partitions} partition(s), not the {spec.partitions} asked for: use another "
            f"topic, or --partitions {partitions} (Kafka cannot take partitions away; adding some moves keys)"
        )
    before = kafka.end_offsets(spec.topic, partitions)
    chooser = KeyChooser(spec.keys, spec.skew, spec.seed, spec.null_key_share)
    drawn: collections.Counter[bytes] = collections.Counter()
    sent_keys: collections.Counter[bytes | None] = collections.Counter()

    def events(first_id: int, count: int, ts_ms: int) -> tuple[list[bytes | None], list[bytes]]:
        keys, message_keys = chooser.take(count)
        drawn.update(keys)
        sent_keys.update(message_keys)
        return message_keys, schema.values(first_id, keys, ts_ms)

    producer = RateProducer(spec.topic, events, config={**kafka.config, **(producer_config or {})},
                            first_id=spec.first_id)  # fmt: skip
    stats = producer.run(spec.rate, seconds=spec.seconds, count=spec.count, progress=progress)
    after = kafka.end_offsets(spec.topic, partitions)
    predicted = dict.fromkeys(range(partitions), 0)
    for key, n in sent_keys.items():
        if key is not None:
            predicted[partition_for(key, partitions)] += n
    top_key, top_count = drawn.most_common(1)[0] if drawn else (b"", 0)
    spec_json = {**asdict(spec), "skew": spec.skew.text}
    return LoadSummary(
        topic=spec.topic,
        partitions=partitions,
        spec=spec_json,
        produced=stats.count,
        failed=stats.failed,
        seconds=round(stats.seconds, 3),
        rate=round(stats.rate, 1),
        acked_rate=round(stats.acked_rate, 1),
        first_id=stats.first_id,
        end_id=stats.end_id,
        per_partition={p: after[p] - before.get(p, 0) for p in sorted(after)},
        keyed_predicted=predicted,
        null_keys=sent_keys.get(None, 0),
        distinct_keys=len(drawn),
        hottest={"key": top_key.decode(), "events": top_count, "share": top_count / stats.count if stats.count else 0},
        expected_hottest_share=spec.skew.shares(spec.keys)[0],
        errors=stats.errors,
    )
