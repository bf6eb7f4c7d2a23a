"""Lesson 1, partitioning and key selection: a hot key makes a hot subtask; local-global aggregation fixes it.

Three topics with the same partition count get the same number of events from the load command: uniform
keys, Zipf-skewed keys, and Zipf keys sent without a Kafka key. One job aggregates the first two per key
(``GROUP BY customer``) at parallelism >= 2; a second job aggregates the skewed topic again with mini-batches
and a two-phase (local-global) aggregation. Every source is bounded (``scan.bounded.mode = latest-offset``),
so each job FINISHES and its per-subtask figures are final (``GET /jobs/{id}/vertices/{vid}``: records in,
accumulated busy/idle/back-pressured time).

Expected (documented relations):

- uniform keys: the busiest keyed subtask gets at most 1.25x the median's records;
- Zipf keys: the hot subtask gets every event of the hottest key, so its max/median is at least what that
  key's share alone forces (:func:`hot_subtask_floor`: 3.1 for the default zipf:2 at parallelism 4, where
  the hottest key has 61 % of the events);
- two-phase: max/median at most 1.5 on the global aggregation, which receives fewer records than events;
- keyed records land on the partitions Kafka's murmur2 partitioner predicts (exact counts); null keys are
  spread by the client's sticky partitioner (every partition gets some).

The DAG ``flink_phase3_partitioning`` runs the steps as tasks: :func:`prepare` (topics and load), the scripts
from :func:`scripts` through ``FlinkSqlGatewayOperator`` (waiting for FINISHED), then :func:`measure` and
:func:`judge` (see :mod:`flink_lessons.phase3.operators`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from flink_lessons.job_names import JobName
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import Skew, parse_skew
from flink_lessons.load.run import LoadSpec, LoadSummary, load
from flink_lessons.phase3 import sql
from flink_lessons.phase3.report import LessonReport, check, max_over_median
from flink_lessons.phase3.settings import PARTITIONING, TOPIC_ROLES, FromSettings, seconds, topic_names

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

LESSON = "partitioning"
JOB = "phase3_partitioning"
ROLES = TOPIC_ROLES[PARTITIONING.variable]
UNIFORM_MAX = 1.25
TWO_PHASE_MAX = 1.5


@dataclass(frozen=True)
class Params(FromSettings):
    """The lesson's settings.

    :param partitions: partitions of each topic.
    :param parallelism: parallelism of the aggregations (>= 2).
    :param events: events per topic.
    :param keys: distinct keys.
    :param skew: the skewed topic's key distribution, e.g. ``zipf:1.5``.
    :param seed: the key sequences' seed.
    :param null_key_rate: events/s for the topic without keys (sticky partitioning moves on with time).
    :param mini_batch_latency: ``table.exec.mini-batch.allow-latency`` of the fix.
    :param mini_batch_size: ``table.exec.mini-batch.size`` of the fix.
    :param topic_prefix: topics are ``<prefix>-<role>-<tag>``.
    """

    partitions: int = 4
    parallelism: int = 4
    events: int = 200_000
    keys: int = 10_000
    skew: str = "zipf:2"
    seed: int = 42
    null_key_rate: float = 5_000
    mini_batch_latency: str = "1 s"
    mini_batch_size: int = 1_000
    topic_prefix: str = "phase3-partitioning"

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``mini_batch_latency`` as Flink reads it."""
        return {"mini_batch_latency": f"{seconds(values['mini_batch_latency'])} s"}


def hot_subtask_floor(top_share: float, parallelism: int) -> float:
    """The smallest max/median records-in a keyed aggregation can show when one key has ``top_share`` of the
    events: that key's subtask gets at least ``top_share``; the median is largest when the rest of the events
    fill the subtasks that make up the median evenly (capped at the hot subtask's load). Exact, whatever
    subtasks the keys land on.

    :param top_share: the hottest key's share of the events (0..1).
    :param parallelism: subtasks.
    """
    p, t = parallelism, top_share
    upper = p // 2 + 1 if p % 2 == 0 else (p + 1) // 2  # the median is made of sorted positions <= upper
    fill = min(t, (1 - t) / (upper - 1)) if upper > 1 else 0.0
    loads = sorted([t] + [fill] * (upper - 1) + [0.0] * (p - upper), reverse=True)
    middle = statistics.median(loads)
    return float("inf") if middle <= 0 else t / middle


# ---------------------------------------------------------------------------------------------- steps


def prepare(params: Params, kafka: Kafka, tag: str) -> dict[str, Any]:
    """Create the three topics and load them with the load command's producer.

    :param params: the settings.
    :param kafka: the cluster.
    :param tag: the run tag.
    :return: ``{"topics": {role: topic}, "loads": {role: LoadSummary as JSON}}``.
    """
    topics = topic_names(PARTITIONING.variable, params.topic_prefix, tag)
    skew = parse_skew(params.skew)
    specs = {
        "uniform": LoadSpec(topic=topics["uniform"], rate=None, keys=params.keys, skew=Skew(),
                            partitions=params.partitions, count=params.events, seed=params.seed),
        "zipf": LoadSpec(topic=topics["zipf"], rate=None, keys=params.keys, skew=skew,
                         partitions=params.partitions, count=params.events, seed=params.seed),
        "nullkeys": LoadSpec(topic=topics["nullkeys"], rate=params.null_key_rate, keys=params.keys, skew=skew,
                             partitions=params.partitions, count=params.events, seed=params.seed, null_key_share=1.0),
    }  # fmt: skip
    loads = {role: load(spec, kafka).to_json() for role, spec in specs.items()}
    return {"topics": topics, "loads": loads}


def scripts(params: Params, topics: Mapping[str, str], bootstrap: str, tag: str) -> dict[str, str]:
    """The two jobs: ``skewed`` (uniform and Zipf topics, one phase) and ``fixed`` (Zipf, two-phase).

    :param params: the settings.
    :param topics: role -> topic.
    :param bootstrap: Kafka's brokers as Flink reaches them.
    :param tag: unique to the run (job names, group ids).
    """

    def source(role: str) -> dict[str, Any]:
        options = sql.kafka_source_options(topics[role], bootstrap, f"{params.topic_prefix}-{tag}",
                                           **{"scan.bounded.mode": "latest-offset"})  # fmt: skip
        return {"table": f"orders_{role}", "sink": f"per_customer_{role}", "options": options}

    common = {"parallelism": params.parallelism, "mini_batch_latency": params.mini_batch_latency,
              "mini_batch_size": params.mini_batch_size}  # fmt: skip
    return {
        "skewed": sql.render(LESSON, "aggregate.sql.j2", job_name=str(JobName(JOB, "skewed", tag)),
                             two_phase=False, sources=[source("uniform"), source("zipf")], **common),
        "fixed": sql.render(LESSON, "aggregate.sql.j2", job_name=str(JobName(JOB, "fixed", tag)),
                            two_phase=True, sources=[source("zipf")], **common),
    }  # fmt: skip


def subtask_loads(flink: FlinkRestHook, job_id: str, vertex_id: str) -> list[dict[str, Any]]:
    """Per subtask: records in, and the share of time busy / back-pressured / idle (over its whole run).

    :param flink: the REST hook.
    :param job_id: a job (finished: the figures are final).
    :param vertex_id: the vertex.
    """
    rows = []
    for sub in flink.get_vertex(job_id, vertex_id)["subtasks"]:
        m = sub["metrics"]
        times = {k: _number(m.get(f"accumulated-{k}-time")) for k in ("busy", "backpressured", "idle")}
        total = sum(times.values()) or 1.0
        rows.append({
            "subtask": sub["subtask"],
            "records_in": int(m.get("read-records") or 0),
            "busy": round(times["busy"] / total, 3),
            "backpressured": round(times["backpressured"] / total, 3),
            "idle": round(times["idle"] / total, 3),
        })  # fmt: skip
    return rows


def measure(flink: FlinkRestHook, jobs: Mapping[str, str]) -> dict[str, Any]:
    """The per-subtask loads of each keyed aggregation, and the records each source read.

    :param flink: the REST hook.
    :param jobs: ``{"skewed": job id, "fixed": job id}``, both FINISHED.
    :return: ``{"aggregations": {variant: [subtask rows]}, "source_records": {variant: records}}``.
    """
    aggregations: dict[str, list[dict[str, Any]]] = {}
    sources: dict[str, int] = {}
    for variant, job_id in jobs.items():
        for vertex in flink.get_job(job_id).get("vertices") or []:
            name = str(vertex["name"])
            if name.startswith("Source:"):
                role = next(r for r in ROLES if f"orders_{r}" in name)
                key = f"{variant}/{role}"
                sources[key] = sum(r["records_in"] for r in subtask_loads(flink, job_id, vertex["id"]))
            elif "GroupAggregate" in name:
                role = next(r for r in ROLES if f"per_customer_{r}" in name)
                aggregations[f"{variant}/{role}"] = subtask_loads(flink, job_id, vertex["id"])
    return {"aggregations": aggregations, "source_records": sources}


def judge(params: Params, prepared: Mapping[str, Any], measured: Mapping[str, Any]) -> LessonReport:
    """Compare what was measured with what the lesson expects.

    :param params: the settings.
    :param prepared: the output of :func:`prepare`.
    :param measured: the output of :func:`measure`.
    """
    loads = {role: LoadSummary.from_json(summary) for role, summary in prepared["loads"].items()}
    aggs = measured["aggregations"]
    report = LessonReport(LESSON, "partitioning and key selection: hot keys, hot subtasks, and the fix",
                          settings=asdict(params))  # fmt: skip
    labels = {"skewed/uniform": "uniform keys", "skewed/zipf": f"{params.skew} keys",
              "fixed/zipf": f"{params.skew} keys, two-phase + mini-batch"}  # fmt: skip
    rows = []
    for key, label in labels.items():
        subtasks = aggs.get(key, [])
        records = [s["records_in"] for s in subtasks]
        rows.append({
            "job": label,
            "records in per subtask": records,
            "total in": sum(records),
            "max/median": _round(max_over_median(records)),
            "busy per subtask": [s["busy"] for s in subtasks],
        })  # fmt: skip
    report.tables["keyed aggregation: records into each subtask"] = rows
    partitions: list[dict[str, Any]] = []
    per_role: dict[str, list[int]] = {}
    for role in ROLES:
        summary = loads[role]
        per = per_role[role] = [summary.per_partition[p] for p in sorted(summary.per_partition)]
        predicted = (
            None if role == "nullkeys" else [summary.keyed_predicted[p] for p in sorted(summary.keyed_predicted)]
        )
        partitions.append({"topic": role, "records per partition": per, "murmur2 predicts": predicted,
                           "max/min": _round(max(per) / min(per) if min(per) else None)})  # fmt: skip
    report.tables["records per partition (what the Kafka partitioner did)"] = partitions

    produced = loads["zipf"].produced
    ratio = {key: max_over_median([s["records_in"] for s in aggs.get(key, [])]) for key in labels}
    hot = max((s["records_in"] for s in aggs.get("skewed/zipf", [])), default=None)
    global_in = sum(s["records_in"] for s in aggs.get("fixed/zipf", []))
    top = loads["zipf"].hottest
    floor = round(hot_subtask_floor(top["share"], params.parallelism), 2)
    checks = [
        check("uniform keys: max/median records in", _round(ratio["skewed/uniform"]), "<=", UNIFORM_MAX,
              "even keys spread evenly over the subtasks' key groups"),
        check(f"{params.skew} keys: records into the hot subtask", hot, ">=", top["events"],
              f"every event of the hottest key {top['key']} ({top['share']:.0%} of all) goes to one subtask"),
        check(f"{params.skew} keys: max/median records in", _round(ratio["skewed/zipf"]), ">=", floor,
              f"the least a {top['share']:.0%} key can give at parallelism {params.parallelism}, wherever keys land"),
        check("two-phase: max/median records into the global aggregation", _round(ratio["fixed/zipf"]), "<=",
              TWO_PHASE_MAX, "local pre-aggregation sends one partial row per key and mini-batch"),
        check("two-phase: records into the global aggregation", global_in, "<", produced,
              "partial rows, not events, cross the shuffle"),
        check("keyed records per partition (Zipf topic)", per_role["zipf"], "==",
              partitions[1]["murmur2 predicts"], "Kafka's default partitioner: murmur2(key) mod partitions"),
        check("partitions that got null-key records", sum(1 for n in per_role["nullkeys"] if n),
              "==", params.partitions, "no key: the client's sticky partitioner moves from partition to partition"),
    ]  # fmt: skip
    for key, role in (("skewed/uniform", "uniform"), ("skewed/zipf", "zipf"), ("fixed/zipf", "zipf")):
        checks.append(check(f"{labels[key]}: events read by the job", measured["source_records"].get(key), "==",
                            loads[role].produced, "a bounded source reads exactly what the topic held"))  # fmt: skip
    report.checks = checks
    report.notes = [
        "In the Flink UI: the skewed job's GroupAggregate vertex, tab Subtasks: 'Records Received' per subtask; "
        "tab BackPressure/Busy while it runs. The fixed job has LocalGroupAggregate chained to the source and "
        "GlobalGroupAggregate after the shuffle.",
        "Null keys: librdkafka and Java both stick to one partition per batch (sticky.partitioning.linger.ms), so a "
        "burst can fill one partition; keyed records always go where murmur2 says (the load command uses "
        "partitioner=murmur2_random; librdkafka's default consistent_random hashes with CRC32 instead).",
    ]
    return report


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if number != number else number


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
