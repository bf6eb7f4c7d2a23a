"""Lesson 3, backpressure and throughput tuning: a deliberately slow operator, where Flink shows it, and what
each tuning knob does to throughput and end-to-end latency, measured side by side.

One input topic (one partition) holds a backlog of ``backlog_events`` orders of about 1 KB (the load
command's ``orders_wide`` schema). One bounded job per variant (:data:`VARIANTS`: chaining, buffer timeout,
object reuse, parallelism) starts at the same time, each reading the whole topic up to ``backlog_events +
tail_events`` through a CPU-heavy expression (a regular expression over the event's 1 KB ``note`` repeated
``work`` times: the same work per event on any machine) into its own output topic (broker append time). The
variants run side by side, so they share the same (busy) machine:

- **throughput**: backlog events per second, from the output's append times (first to last backlog event);
- **latency**: once every variant has drained the backlog, the load command writes ``tail_events`` more at
  ``tail_rate`` (below every variant's throughput); latency is output append time - the event's time.

While they drain the backlog the ``unchained`` variant (chaining off: source, slow Calc and sink are three
tasks) shows the backpressure: the provider's ``get_backpressure`` samples a ``high`` level on the source,
and after the job finished, ``GET /jobs/{id}/vertices/{vid}`` gives each task's accumulated busy,
back-pressured and idle time: the source is back-pressured, the slow Calc busy, the sink idle.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flink_lessons.job_names import JobName
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import Skew
from flink_lessons.load.run import LoadSpec, load
from flink_lessons.phase3 import sql
from flink_lessons.phase3.partitioning import subtask_loads
from flink_lessons.phase3.report import LessonReport, check
from flink_lessons.phase3.settings import BACKPRESSURE, FromSettings, parse_names, seconds, topic_names
from flink_lessons.waiting import wait_for

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

LESSON = "backpressure"
JOB = "phase3_backpressure"
SCHEMA = "orders_wide"
"""Events of about 1 KB (a ``note`` the slow Calc works on): the ~20 network buffers of 32 KB between the
source and the Calc then hold a few hundred events, so a backlog of thousands back-pressures the source for
most of its run (with 100-byte events they held ~16 000: the whole backlog, and the source barely waited)."""


@dataclass(frozen=True)
class Variant:
    """One setting of the sweep.

    :param name: its name (a job-name version, a topic role).
    :param what: what it changes, in words.
    :param options: the ``SET`` options it adds.
    :param slots: task slots it takes (its parallelism).
    """

    name: str
    what: str
    options: Mapping[str, str]
    slots: int = 1


UNCHAINED = {"pipeline.operator-chaining.enabled": "false"}
VARIANTS = {
    v.name: v
    for v in (
        Variant("baseline", "defaults: one chained task, buffer timeout 100 ms", {}),
        Variant("unchained", "operator chaining off: source, slow Calc, sink are 3 tasks (backpressure shows)",
                UNCHAINED),
        Variant("buffer_timeout_0", "unchained, execution.buffer-timeout.interval 0 ms (flush every record)",
                {**UNCHAINED, "execution.buffer-timeout.interval": "0 ms"}),
        Variant("buffer_timeout_1s", "unchained, buffer timeout 1 s (fuller buffers, later flushes)",
                {**UNCHAINED, "execution.buffer-timeout.interval": "1 s"}),
        Variant("object_reuse", "chained, pipeline.object-reuse true (no record copies between chained operators)",
                {"pipeline.object-reuse": "true"}),
        Variant("parallelism_2", "slow Calc and sink at parallelism 2 behind a rebalance (source stays at 1)",
                {"parallelism.default": "2"}, slots=2),
    )
}  # fmt: skip
"""Every variant the sweep knows, by name."""


@dataclass(frozen=True)
class Params(FromSettings):
    """The lesson's settings.

    :param topic_prefix: topics are ``<prefix>-<role>-<tag>``.
    :param backlog_events: events in the topic before the jobs start.
    :param tail_events: events written at ``tail_rate`` once every variant drained the backlog.
    :param tail_rate: events/s of the tail (below every variant's throughput: latency without queueing).
    :param work: times the slow operator runs its regular expression over the event's 1 KB note.
    :param variants: which :data:`VARIANTS` run.
    :param timeout: seconds a step waits.
    """

    topic_prefix: str = "phase3-backpressure"
    backlog_events: int = 5_000
    tail_events: int = 500
    tail_rate: float = 50.0
    work: int = 6
    variants: tuple[str, ...] = ("baseline", "unchained", "buffer_timeout_0", "object_reuse", "parallelism_2")
    timeout: float = 300.0

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``variants`` as names, ``timeout`` in seconds."""
        variants = tuple(parse_names(values["variants"], tuple(VARIANTS)))
        return {"variants": variants, "timeout": seconds(values["timeout"])}

    @property
    def total(self) -> int:
        """Events each job reads (it FINISHES there)."""
        return self.backlog_events + self.tail_events


def topics(params: Params, tag: str) -> dict[str, str]:
    """The run's topics: ``input`` and the output of each variant that runs.

    :param params: the settings.
    :param tag: the run tag.
    """
    names = topic_names(BACKPRESSURE.variable, params.topic_prefix, tag)
    return {role: topic for role, topic in names.items() if role == "input" or role in params.variants}


def prepare(params: Params, kafka: Kafka, tag: str) -> dict[str, Any]:
    """Create the topics (outputs stamped with the broker's append time) and write the backlog.

    :param params: the settings.
    :param kafka: the cluster.
    :param tag: the run tag.
    """
    names = topics(params, tag)
    for role, topic in names.items():
        if role != "input":
            kafka.create_topic(topic, 1, {"message.timestamp.type": "LogAppendTime"})
    summary = load(LoadSpec(topic=names["input"], rate=None, keys=1000, skew=Skew(), partitions=1,
                            count=params.backlog_events, schema=SCHEMA, seed=3), kafka)  # fmt: skip
    return {"topics": names, "backlog": summary.to_json()}


def scripts(params: Params, names: Mapping[str, str], bootstrap: str, tag: str) -> list[str]:
    """One script per variant, in ``params.variants`` order.

    :param params: the settings.
    :param names: role -> topic.
    :param bootstrap: Kafka's brokers as Flink reaches them.
    :param tag: the run tag.
    """
    out = []
    for name in params.variants:
        variant = VARIANTS[name]
        options = sql.kafka_source_options(names["input"], bootstrap, f"{params.topic_prefix}-{name}-{tag}",
                                           **{"scan.bounded.mode": "specific-offsets",
                                              "scan.bounded.specific-offsets": f"partition:0,offset:{params.total}",
                                              "scan.parallelism": "1"})  # fmt: skip
        out.append(sql.render(LESSON, "slow.sql.j2", job_name=str(JobName(JOB, name, tag)),
                              settings=variant.options, source=options, sink_topic=names[name],
                              bootstrap=bootstrap, work=params.work))  # fmt: skip
    return out


def _drained(kafka: Kafka, names: Mapping[str, str], variants: Sequence[str], count: int) -> bool:
    return all(kafka.end_offsets(names[v], 1)[0] >= count for v in variants)


def sample_backpressure(flink: FlinkRestHook, job_id: str) -> dict[str, dict[str, Any]]:
    """The backpressure level and highest ratios of each vertex of a running job (``get_backpressure``).

    :param flink: the REST hook.
    :param job_id: the job.
    """
    out = {}
    for vertex in flink.get_job(job_id).get("vertices") or []:
        sample = flink.get_backpressure(job_id, vertex["id"])
        out[_short(vertex["name"])] = {"level": sample.level, "backpressured": sample.ratio, "busy": sample.busy_ratio}
    return out


def run_sweep(params: Params, kafka: Kafka, flink: FlinkRestHook, names: Mapping[str, str],
              jobs: Mapping[str, str]) -> dict[str, Any]:  # fmt: skip
    """While the variants drain the backlog, sample the ``unchained`` job's backpressure until its source
    shows ``high`` (when it runs); once all drained, write the tail at ``tail_rate``; wait for every output.

    :param params: the settings.
    :param kafka: the cluster.
    :param flink: the REST hook.
    :param names: role -> topic.
    :param jobs: variant -> its job id (submitted, running).
    :return: ``{"samples": [...], "tail": load summary}``.
    """
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + params.timeout
    while not _drained(kafka, names, params.variants, params.backlog_events):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the variants did not drain {params.backlog_events} events in {params.timeout:.0f}s")
        if "unchained" in jobs and not any(_source_level(s) == "high" for s in samples):
            samples.append(sample_backpressure(flink, jobs["unchained"]))
        time.sleep(1)
    tail = load(LoadSpec(topic=names["input"], rate=params.tail_rate, keys=1000, skew=Skew(), partitions=1,
                         count=params.tail_events, schema=SCHEMA, seed=4, first_id=params.backlog_events),
                kafka)  # fmt: skip
    wait_for("every variant's output of the tail", lambda: _drained(kafka, names, params.variants, params.total),
             params.timeout)  # fmt: skip
    return {"samples": samples, "tail": tail.to_json()}


def _source_level(sample: Mapping[str, Any]) -> str | None:
    return next((v["level"] for name, v in sample.items() if name.startswith("Source")), None)


def _source_ratio(sample: Mapping[str, Any]) -> float:
    return next((v["backpressured"] or 0.0 for name, v in sample.items() if name.startswith("Source")), 0.0)


def _short(name: str) -> str:
    return name.split("[")[0].strip()[:60]


def output_figures(params: Params, values: Sequence[tuple[bytes, int]]) -> dict[str, Any]:
    """Throughput and latency of one variant from its output: ``(value, append time)`` in offset order.

    :param params: the settings.
    :param values: its output records.
    """
    backlog_times, latencies, ids = [], [], []
    for value, appended in values:
        row = json.loads(value)
        ids.append(int(row["order_id"]))
        if row["order_id"] < params.backlog_events:
            backlog_times.append(appended)
        else:
            latencies.append(appended - int(row["ts_ms"]))
    span = (max(backlog_times) - min(backlog_times)) / 1000 if len(backlog_times) > 1 else 0
    latencies.sort()
    return {
        "records": len(ids), "distinct": len(set(ids)),
        "throughput": round((len(backlog_times) - 1) / span) if span > 0 else None,
        "latency_p50_ms": round(statistics.median(latencies)) if latencies else None,
        "latency_p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
    }  # fmt: skip


def task_shares(flink: FlinkRestHook, job_id: str) -> list[dict[str, Any]]:
    """Per task (vertex) of a FINISHED job: its share of time busy, back-pressured and idle over the run.

    :param flink: the REST hook.
    :param job_id: the job.
    """
    rows = []
    for vertex in flink.get_job(job_id).get("vertices") or []:
        loads = subtask_loads(flink, job_id, vertex["id"])
        rows.append({"task": _short(vertex["name"]), "records in": sum(r["records_in"] for r in loads),
                     **{k: max(r[k] for r in loads) for k in ("busy", "backpressured", "idle")}})  # fmt: skip
    return rows


def working_share(row: Mapping[str, Any]) -> float | None:
    """A task's back-pressured share of the time it was not idle: ``backpressured / (backpressured + busy)``
    (idle time, e.g. waiting for the tail, would dilute the plain share).

    :param row: a :func:`task_shares` row.
    """
    working = (row.get("backpressured") or 0) + (row.get("busy") or 0)
    return round(row["backpressured"] / working, 3) if working else None


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> str | None:
    """Bar chart of throughput (left) and latency p50/p99 (right) per variant; ``None`` without matplotlib.

    :param rows: the sweep table.
    :param path: the PNG.
    """
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["variant"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(names, [r["throughput (events/s)"] or 0 for r in rows], color="#4c72b0")
    left.set_title("throughput draining the backlog (events/s)")
    x = range(len(names))
    right.bar([i - 0.2 for i in x], [r["latency p50 (ms)"] or 0 for r in rows], width=0.4, label="p50")
    right.bar([i + 0.2 for i in x], [r["latency p99 (ms)"] or 0 for r in rows], width=0.4, label="p99")
    right.set_xticks(list(x), names)
    right.set_title("end-to-end latency at the tail rate (ms)")
    right.legend()
    for axis in (left, right):
        axis.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def judge(params: Params, sweep: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]],
          shares: Sequence[Mapping[str, Any]], plot_path: str | None) -> LessonReport:  # fmt: skip
    """The table, and the documented relations.

    :param params: the settings.
    :param sweep: :func:`run_sweep`'s output.
    :param outputs: variant -> :func:`output_figures`.
    :param shares: :func:`task_shares` of the ``unchained`` job (empty when it did not run).
    :param plot_path: the PNG, if drawn.
    """
    report = LessonReport(LESSON, "backpressure and throughput tuning: a slow operator, and each knob side by side",
                          settings={**asdict(params), "plot": plot_path})  # fmt: skip
    rows = [{"variant": name, "what": VARIANTS[name].what,
             "throughput (events/s)": outputs[name]["throughput"], "latency p50 (ms)": outputs[name]["latency_p50_ms"],
             "latency p99 (ms)": outputs[name]["latency_p99_ms"], "records out": outputs[name]["records"]}
            for name in params.variants]  # fmt: skip
    report.tables["sweep (all variants ran at once, on the same machine)"] = rows
    checks = [check(f"{name}: records out (distinct)", outputs[name]["distinct"], "==", params.total,
                    "a bounded job reads every event once") for name in params.variants]  # fmt: skip
    notes: list[str] = []
    if "unchained" in params.variants:
        report.tables["unchained job: share of time per task over its run (max over subtasks)"] = [
            dict(r) for r in shares
        ]
        samples = sweep["samples"]
        peak = max(samples, key=_source_ratio) if samples else {}
        notes.append(
            f"The source's backpressure level at its peak sample: {_source_level(peak) or 'not sampled'} "
            "(low or high while it drains the backlog). It is a snapshot of metrics the JobManager fetches "
            "every 10 s (metrics.fetcher.update-interval), so a short drain can end unsampled: the judged "
            "figure is the share of time from the accumulated counters, which every second adds to."
        )
        report.tables["unchained job: backpressure sampled while it drained the backlog (its source's peak)"] = [
            {"task": task, **values} for task, values in peak.items()
        ]
        by_task = {row["task"]: row for row in shares}
        source = next((row for task, row in by_task.items() if task.startswith("Source")), {})
        slow = next((row for task, row in by_task.items() if task.startswith("Calc")), {})
        checks += [
            check("unchained: source's back-pressured share of its working time", working_share(source), ">=", 0.5,
                  "while it had records to read, the source mostly waited for the Calc's buffers"),
            check("unchained: slow Calc's back-pressured share of time", slow.get("backpressured"), "<=", 0.1,
                  "the bottleneck is the first task after a back-pressured one that is not back-pressured itself"),
        ]  # fmt: skip
    if {"buffer_timeout_0", "buffer_timeout_1s"} <= set(params.variants):
        flushed, late = outputs["buffer_timeout_0"]["latency_p50_ms"], outputs["buffer_timeout_1s"]["latency_p50_ms"]
        why = "at a light rate a buffer never fills: it leaves when the timeout fires (up to 1 s) or at once (0 ms)"
        checks.append(check("buffer timeout 1 s: latency p50 (ms)", late, ">", flushed, why))
    report.checks = checks
    report.notes = [
        *notes,
        "Flink UI: the unchained job's graph colours the source dark red (back-pressured), the Calc red (busy); "
        "tab BackPressure per subtask. In a chained job the same slowness shows only as a busy task: disable "
        "chaining (or split with a rebalance) to see which operator is slow.",
        "Throughputs are measured side by side on a shared 2-core machine: compare the variants of one run, not "
        "runs with each other. The full sweep (more events, every variant) is in make bench "
        "(benchmarks/phase3_backpressure.py).",
        "Mini-batch applies to aggregations: lesson 1 (partitioning) measures it with local-global aggregation.",
    ]
    return report
