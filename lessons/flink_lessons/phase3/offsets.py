"""Lesson 2, consumer groups and offset resets: which records a Kafka source reads, by startup mode and by
what it restores.

One source topic gets three batches of events from the load command: A, then (after a remembered instant T)
B, and C later while the streaming job is stopped. Order ids are consecutive over the batches, so every
expectation is an exact set of order ids:

- a streaming job (group ``<prefix>-group-<tag>``, ``group-offsets`` falling back to earliest, checkpoints
  only when triggered) reads A and B. Its group has **no** committed offsets until a checkpoint completes;
  after one, the group's offsets are the topic's end offsets (Flink commits on checkpoints, never while it
  reads);
- the job is stopped with a savepoint, C is produced, and the group is reset through the admin API to
  ``reset_offset`` on every partition. The job restored from the savepoint reads **exactly C**: a restored
  Kafka source resumes from the offsets in its state and ignores the group's (the classic gotcha), and its
  next checkpoint overwrites the reset;
- the group is reset again, and one bounded job reads the topic with each startup mode: ``earliest-offset``
  (all), ``latest-offset`` (nothing: bounded at the end offsets it found at start), ``group-offsets`` (the
  records at or after the reset, what a restart *without* a savepoint re-reads), ``timestamp`` (records
  stamped at or after T: B and C) and ``specific-offsets`` (the records at or after ``specific_offset``).

Every job writes what it read (mode, order id, source partition and offset) to the ``read`` topic, which
:func:`judge` reads back. The DAG ``flink_phase3_offsets`` runs the steps as tasks (see
:mod:`flink_lessons.phase3.operators`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from flink_lessons.job_names import JobName
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import Skew
from flink_lessons.load.run import LoadSpec, LoadSummary, load
from flink_lessons.phase3 import sql
from flink_lessons.phase3.report import LessonReport, check
from flink_lessons.phase3.settings import OFFSETS, FromSettings, seconds, topic_names
from flink_lessons.waiting import wait_for

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

LESSON = "offsets"
JOB = "phase3_offsets"
MODES = ("earliest", "latest", "group", "timestamp", "specific")
STREAM = "stream"
FIRST, RESTORED = "stream (first job)", "stream (restored from savepoint)"
NONE_OFF = {"missing": "-", "unexpected": "-"}
"""An exact read: no expected order id missing, none unexpected."""


@dataclass(frozen=True)
class Params(FromSettings):
    """The lesson's settings.

    :param topic_prefix: topics are ``<prefix>-source|read-<tag>``.
    :param partitions: partitions of the source topic.
    :param batch_events: events per batch (A, B, C).
    :param keys: distinct keys.
    :param seed: the key sequence's seed.
    :param specific_offset: where ``specific-offsets`` starts on every partition.
    :param reset_offset: what the admin API resets the group to on every partition.
    :param parallelism: the jobs' parallelism.
    :param timeout: seconds a step waits for the job to read or commit.
    """

    topic_prefix: str = "phase3-offsets"
    partitions: int = 2
    batch_events: int = 1000
    keys: int = 100
    seed: int = 7
    specific_offset: int = 100
    reset_offset: int = 150
    parallelism: int = 1
    timeout: float = 180.0

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``timeout`` in seconds."""
        return {"timeout": seconds(values["timeout"])}

    def group(self, tag: str, mode: str = "group") -> str:
        """The consumer group of a source: ``<prefix>-<mode>-<tag>`` (the streaming job and the
        ``group-offsets`` source share ``group``).

        :param tag: the run tag.
        :param mode: a startup mode of :data:`MODES`.
        """
        return f"{self.topic_prefix}-{mode}-{tag}"


# ---------------------------------------------------------------------------------------------- steps


def load_batch(params: Params, kafka: Kafka, topic: str, batch: int) -> LoadSummary:
    """Produce batch ``batch`` (0: A, 1: B, 2: C): ``batch_events`` events with consecutive order ids.

    :param params: the settings.
    :param kafka: the cluster.
    :param topic: the source topic (created with ``partitions`` when missing).
    :param batch: which batch.
    """
    spec = LoadSpec(topic=topic, rate=None, keys=params.keys, skew=Skew(), partitions=params.partitions,
                    count=params.batch_events, seed=params.seed + batch,
                    first_id=batch * params.batch_events)  # fmt: skip
    return load(spec, kafka)


def prepare(params: Params, kafka: Kafka, tag: str) -> dict[str, Any]:
    """Create the topics, produce A, remember the instant T, produce B.

    Kafka stamps a record when the producer hands it over (CreateTime): every record of A is acknowledged
    before T is read, and B starts a few milliseconds after T, so ``timestamp`` mode at T starts at B.

    :param params: the settings.
    :param kafka: the cluster.
    :param tag: the run tag.
    :return: ``{"topics", "timestamp_ms", "loads": {"A": summary, "B": summary}}``.
    """
    topics = topic_names(OFFSETS.variable, params.topic_prefix, tag)
    kafka.create_topic(topics["read"], 1)
    first = load_batch(params, kafka, topics["source"], 0)
    time.sleep(0.01)
    instant = int(time.time() * 1000)
    time.sleep(0.01)
    second = load_batch(params, kafka, topics["source"], 1)
    return {"topics": topics, "timestamp_ms": instant, "loads": {"A": first.to_json(), "B": second.to_json()}}


def scripts(params: Params, topics: Mapping[str, str], bootstrap: str, tag: str, timestamp_ms: int) -> dict[str, str]:
    """The two scripts: ``stream`` (one unbounded source on the group, checkpoints on demand) and ``modes``
    (one bounded source per startup mode, one statement set).

    :param params: the settings.
    :param topics: role -> topic.
    :param bootstrap: Kafka's brokers as Flink reaches them.
    :param tag: the run tag.
    :param timestamp_ms: the instant T between batches A and B.
    """
    specific = ";".join(f"partition:{p},offset:{params.specific_offset}" for p in range(params.partitions))
    startup = {
        "earliest": {"scan.startup.mode": "earliest-offset"},
        "latest": {"scan.startup.mode": "latest-offset"},
        "group": {"scan.startup.mode": "group-offsets", "properties.auto.offset.reset": "earliest"},
        "timestamp": {"scan.startup.mode": "timestamp", "scan.startup.timestamp-millis": str(timestamp_ms)},
        "specific": {"scan.startup.mode": "specific-offsets", "scan.startup.specific-offsets": specific},
    }

    def source(mode: str, bounded: bool) -> dict[str, Any]:
        options = sql.kafka_source_options(topics["source"], bootstrap, params.group(tag, mode), **startup[mode])
        if bounded:
            options["scan.bounded.mode"] = "latest-offset"
        return {"mode": STREAM if not bounded else mode, "table": f"orders_{mode}", "options": options}

    common = {"parallelism": params.parallelism, "read_topic": topics["read"], "bootstrap": bootstrap}
    return {
        "stream": sql.render(LESSON, "read.sql.j2", job_name=str(JobName(JOB, STREAM, tag)), checkpoints=True,
                             sources=[source("group", bounded=False)], **common),
        "modes": sql.render(LESSON, "read.sql.j2", job_name=str(JobName(JOB, "modes", tag)), checkpoints=False,
                            sources=[source(mode, bounded=True) for mode in MODES], **common),
    }  # fmt: skip


def offsets_json(offsets: Mapping[tuple[str, int], int]) -> dict[str, int]:
    """Group offsets as JSON: ``{"<partition>": offset}`` (one topic).

    :param offsets: ``(topic, partition) -> offset``.
    """
    return {str(p): o for (_, p), o in sorted(offsets.items())}


def commit_drill(params: Params, kafka: Kafka, flink: FlinkRestHook, job_id: str, topics: Mapping[str, str],
                 tag: str, expect_read: int) -> dict[str, Any]:  # fmt: skip
    """Wait until the streaming job has written ``expect_read`` records, show the group's committed offsets,
    take a checkpoint, and wait until the group's offsets are the source's end offsets.

    :param params: the settings.
    :param kafka: the cluster.
    :param flink: the REST hook.
    :param job_id: the running streaming job.
    :param topics: role -> topic.
    :param tag: the run tag.
    :param expect_read: records the ``read`` topic must hold before the checkpoint.
    :return: ``{"before", "after", "end_offsets", "checkpoint_id", "read_end"}`` (offsets as JSON).
    """
    group, source = params.group(tag), topics["source"]
    wait_for(f"{expect_read} records in {topics['read']}",
             lambda: kafka.end_offsets(topics["read"], 1)[0] >= expect_read, params.timeout)  # fmt: skip
    before = kafka.group_offsets(group, source)
    checkpoint = flink.wait_for_checkpoint(job_id, flink.trigger_checkpoint(job_id), timeout=params.timeout)
    ends = {(source, p): o for p, o in kafka.end_offsets(source, params.partitions).items()}
    after = wait_for(f"group {group} committing {ends}",
                     lambda: (got := kafka.group_offsets(group, source)) == ends and got, params.timeout)  # fmt: skip
    return {"before": offsets_json(before), "after": offsets_json(after), "end_offsets": offsets_json(ends),
            "checkpoint_id": checkpoint, "read_end": kafka.end_offsets(topics["read"], 1)[0]}  # fmt: skip


def reset_group(params: Params, kafka: Kafka, topic: str, tag: str) -> dict[str, int]:
    """Reset the group's offsets to ``reset_offset`` on every partition (admin API); returns what it shows
    after the reset.

    :param params: the settings.
    :param kafka: the cluster.
    :param topic: the source topic.
    :param tag: the run tag.
    """
    group = params.group(tag)
    kafka.set_group_offsets(group, {(topic, p): params.reset_offset for p in range(params.partitions)})
    return offsets_json(kafka.group_offsets(group, topic))


# ---------------------------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class SourceRecord:
    """One record of the source topic.

    :param order_id: its order id.
    :param partition: its partition.
    :param offset: its offset.
    :param timestamp: its Kafka timestamp, epoch ms.
    """

    order_id: int
    partition: int
    offset: int
    timestamp: int


def expected_sets(params: Params, records: Iterable[SourceRecord], timestamp_ms: int) -> dict[str, set[int]]:
    """The order ids each read must return, from the source topic's records and the documented meaning of
    each startup mode.

    :param params: the settings.
    :param records: every record of the source topic.
    :param timestamp_ms: the instant T.
    """
    rows = list(records)
    a, b = params.batch_events, 2 * params.batch_events
    return {
        "earliest": {r.order_id for r in rows},
        "latest": set(),
        "group": {r.order_id for r in rows if r.offset >= params.reset_offset},
        "timestamp": {r.order_id for r in rows if r.timestamp >= timestamp_ms},
        "specific": {r.order_id for r in rows if r.offset >= params.specific_offset},
        FIRST: {r.order_id for r in rows if r.order_id < b},
        RESTORED: {r.order_id for r in rows if r.order_id >= b},
        "B and C (ids)": set(range(a, a + 2 * params.batch_events)),
    }


def id_ranges(ids: Iterable[int]) -> str:
    """Sorted ids as ranges, ``0..99, 150..299`` (``-`` for none).

    :param ids: order ids.
    """
    ordered = sorted(set(ids))
    if not ordered:
        return "-"
    parts, start, last = [], ordered[0], ordered[0]
    for n in ordered[1:]:
        if n != last + 1:
            parts.append(f"{start}..{last}" if last > start else str(start))
            start = n
        last = n
    parts.append(f"{start}..{last}" if last > start else str(start))
    return ", ".join(parts) if len(parts) <= 6 else f"{', '.join(parts[:6])}, ... ({len(parts)} ranges)"


def reads_by_job(read_values: Iterable[bytes], first_job_end: int) -> dict[str, list[int]]:
    """The order ids each job wrote to the ``read`` topic (in order, duplicates kept).

    :param read_values: the ``read`` topic's values, in offset order (one partition).
    :param first_job_end: the ``read`` topic's end offset when the first streaming job was stopped.
    """
    out: dict[str, list[int]] = {mode: [] for mode in (*MODES, FIRST, RESTORED)}
    for position, value in enumerate(read_values):
        row = json.loads(value)
        mode = row["mode"]
        if mode == STREAM:
            mode = FIRST if position < first_job_end else RESTORED
        out[mode].append(int(row["order_id"]))
    return out


def judge(params: Params, prepared: Mapping[str, Any], source: Iterable[SourceRecord], reads: Mapping[str, list[int]],
          drills: Mapping[str, Any]) -> LessonReport:  # fmt: skip
    """Compare what each job read with what the lesson expects, and the group's offsets at each step.

    :param params: the settings.
    :param prepared: the output of :func:`prepare`.
    :param source: the source topic's records.
    :param reads: :func:`reads_by_job`.
    :param drills: ``{"first": commit_drill, "reset": offsets after the reset, "restored": commit_drill,
        "reset_again": offsets}``.
    """
    expected = expected_sets(params, source, prepared["timestamp_ms"])
    report = LessonReport(LESSON, "consumer groups and offset resets: what each start reads, and what a savepoint "
                          "overrides", settings=asdict(params))  # fmt: skip
    startup = {
        "earliest": "earliest-offset", "latest": "latest-offset (bounded: the end offsets at start)",
        "group": f"group-offsets (after the admin API reset to {params.reset_offset})",
        "timestamp": f"timestamp {prepared['timestamp_ms']} (T, between A and B)",
        "specific": f"specific-offsets {params.specific_offset} on every partition",
        FIRST: "group-offsets, no offsets committed yet: earliest",
        RESTORED: f"the same, restored from the savepoint, group reset to {params.reset_offset}",
    }  # fmt: skip
    rows, checks = [], []
    for name, setting in startup.items():
        got = reads.get(name, [])
        want = expected[name]
        rows.append({"job / mode": name, "start": setting, "records read": len(got), "expected": len(want),
                     "order ids read": id_ranges(got)})  # fmt: skip
        difference = {"missing": id_ranges(want - set(got)), "unexpected": id_ranges(set(got) - want)}
        checks.append(check(f"{name}: order ids read vs expected", difference, "==", NONE_OFF,
                            f"exactly the records {setting} designates"))  # fmt: skip
        checks.append(check(f"{name}: records read", len(got), "==", len(want), "each once (no duplicates)"))
    report.tables["what each start read (order ids; A, B, C are batches of consecutive ids)"] = rows
    first, restored = drills["first"], drills["restored"]
    report.tables["the group's committed offsets (admin API), partition -> offset"] = [
        {"moment": "first job read A+B, no checkpoint yet", "offsets": first["before"]},
        {"moment": f"after checkpoint {first['checkpoint_id']}", "offsets": first["after"]},
        {"moment": "after the admin API reset (job stopped, C produced)", "offsets": drills["reset"]},
        {"moment": f"restored job, after checkpoint {restored['checkpoint_id']}", "offsets": restored["after"]},
        {"moment": "reset again, before the bounded modes job", "offsets": drills["reset_again"]},
    ]
    reset = {str(p): params.reset_offset for p in range(params.partitions)}
    checks += [
        check("committed offsets before any checkpoint", first["before"], "==", {},
              "Flink commits offsets only when a checkpoint completes (never while it reads)"),
        check("committed offsets after the checkpoint", first["after"], "==", first["end_offsets"],
              "the checkpoint's offsets: everything read so far"),
        check("offsets after the reset", drills["reset"], "==", reset, "alter_consumer_group_offsets"),
        check("timestamp mode: order ids", id_ranges(expected["timestamp"]), "==", id_ranges(expected["B and C (ids)"]),
              "T lies between batches A and B"),
        check("restored job's checkpoint commits its own offsets", restored["after"], "==", restored["end_offsets"],
              "the restored source overwrote the reset on its first checkpoint"),
    ]  # fmt: skip
    report.checks = checks
    report.notes = [
        "The gotcha: a Kafka source restored from a savepoint or checkpoint starts from the offsets in its state; "
        "scan.startup.mode and the group's committed offsets apply only to a job started without state. To "
        "re-read after a reset, start the job without the savepoint (as the group-offsets mode here), or with a "
        "new source uid (and allow non-restored state).",
        "Flink's Kafka source assigns partitions itself and never joins its group: kafka-consumer-groups.sh "
        "--describe shows the group's committed offsets and lag, but no members; the offsets move only on "
        "completed checkpoints (commit.offsets.on.checkpoint), so the lag the group shows trails the job by up "
        "to one checkpoint interval.",
        "latest-offset reads what arrives after the job starts; bounded at the end offsets it found at start, it "
        "reads nothing.",
    ]
    return report
