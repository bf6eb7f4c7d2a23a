"""Lesson 4, checkpoint tuning: one keyed aggregation per setting, side by side, and what each checkpoint cost.

Every variant is the same job: a datagen source (``rate`` rows/s over ``keys`` keys, each row with a 100-character
string) into ``GROUP BY k`` (its state: one row per key) into a blackhole. The backpressure variants add a slow
step after the aggregation (a regular expression over its output, ``work`` times per update, chained to the
aggregation) and a higher rate: the aggregation is busy, the source back-pressured, and the network buffers
between them full, so a checkpoint barrier queues behind them (aligned) or overtakes them (unaligned).

After ``seconds`` the lesson reads ``GET /jobs/{id}/checkpoints`` of each job (completed and failed counts, the
end-to-end duration, checkpointed and full state size, the in-flight data an unaligned checkpoint persisted, the
trigger times) and, for its latest completed checkpoint, the per-task details (``.../details/{cid}/subtasks/
{vid}``: the longest barrier alignment and start delay), then cancels the jobs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flink_lessons.job_names import JobName
from flink_lessons.phase3 import sql
from flink_lessons.phase3.report import Check, LessonReport, check
from flink_lessons.phase3.settings import FromSettings, parse_names

if TYPE_CHECKING:
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

LESSON = "checkpoints"
JOB = "phase3_checkpoints"
ROCKSDB_INCREMENTAL = {"state.backend.type": "rocksdb", "execution.checkpointing.incremental": "true"}
UNALIGNED = {"execution.checkpointing.unaligned.enabled": "true"}


@dataclass(frozen=True)
class Setting:
    """One checkpoint setting of the sweep.

    :param name: its name (a job-name version).
    :param what: what it sets, in words.
    :param options: its ``SET`` options over :data:`BASE`.
    :param backpressure: whether the job has the slow step (and the higher rate).
    """

    name: str
    what: str
    options: Mapping[str, str]
    backpressure: bool = False


BASE = {"execution.checkpointing.interval": "1 s", "execution.checkpointing.timeout": "10 min",
        "state.backend.type": "hashmap"}  # fmt: skip
"""What every variant sets unless it changes it."""

SETTINGS = {
    s.name: s
    for s in (
        Setting("hashmap_1s", "interval 1 s, hashmap state backend (full snapshots)", {}),
        Setting("interval_5s", "interval 5 s", {"execution.checkpointing.interval": "5 s"}),
        Setting("min_pause_3s", "interval 1 s, min pause 3 s between checkpoints",
                {"execution.checkpointing.min-pause": "3 s"}),
        Setting("rocksdb_incremental", "interval 1 s, RocksDB, incremental checkpoints", ROCKSDB_INCREMENTAL),
        Setting("aligned_backpressure", "interval 2 s, aligned barriers, under backpressure",
                {"execution.checkpointing.interval": "2 s"}, backpressure=True),
        Setting("unaligned_backpressure", "interval 2 s, unaligned barriers, under backpressure",
                {"execution.checkpointing.interval": "2 s", **UNALIGNED}, backpressure=True),
        Setting("timeout_1s_backpressure", "aligned, under backpressure, timeout 1 s",
                {"execution.checkpointing.interval": "2 s", "execution.checkpointing.timeout": "1 s",
                 "execution.checkpointing.tolerable-failed-checkpoints": "1000"}, backpressure=True),
    )
}  # fmt: skip
"""Every setting the sweep knows, by name."""


@dataclass(frozen=True)
class SweepParams(FromSettings):
    """The sweep's settings.

    :param settings: which :data:`SETTINGS` run, side by side.
    :param seconds: how long they run before the lesson reads their checkpoints.
    :param rate: rows/s of the datagen source (without backpressure).
    :param backpressure_rate: rows/s of the backpressure variants' source (more than the slow step takes).
    :param keys: distinct keys (the aggregation's state: one row each).
    :param work: repetitions of the slow step's regular expression per update.
    """

    settings: tuple[str, ...] = tuple(SETTINGS)
    seconds: float = 60.0
    rate: int = 500
    backpressure_rate: int = 5000
    keys: int = 20_000
    work: int = 20

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``settings`` as names, ``seconds`` from ``sweep_seconds``."""
        return {"settings": tuple(parse_names(values["settings"], tuple(SETTINGS))), "seconds": values["sweep_seconds"]}


def scripts(params: SweepParams, tag: str) -> dict[str, str]:
    """One script per setting, in ``params.settings`` order.

    :param params: the sweep.
    :param tag: the run tag.
    """
    out = {}
    for name in params.settings:
        setting = SETTINGS[name]
        out[name] = sql.render(LESSON, "tuning.sql.j2", job_name=str(JobName(JOB, name, tag)),
                               settings={**BASE, **setting.options}, keys=params.keys,
                               rate=params.backpressure_rate if setting.backpressure else params.rate,
                               work=params.work if setting.backpressure else 0)  # fmt: skip
    return out


def _stat(summary: Mapping[str, Any], key: str, which: str) -> float | None:
    value = (summary.get(key) or {}).get(which)
    return None if value in (None, "NaN") else float(value)


def _slowest(flink: FlinkRestHook, job_id: str, checkpoint_id: int, vertices: Sequence[str]) -> dict[str, float]:
    """The longest barrier alignment and start delay (ms) over the tasks of one checkpoint."""
    worst = {"alignment_ms": 0.0, "start_delay_ms": 0.0}
    for vertex in vertices:
        summary = flink.get_checkpoint_subtasks(job_id, checkpoint_id, vertex).get("summary") or {}
        alignment = _stat(summary.get("alignment") or {}, "duration", "max")
        worst["alignment_ms"] = max(worst["alignment_ms"], alignment or 0)
        worst["start_delay_ms"] = max(worst["start_delay_ms"], _stat(summary, "start_delay", "max") or 0)
    return worst


def measure(flink: FlinkRestHook, job_id: str) -> dict[str, Any]:
    """What one running job's checkpoints cost so far.

    :param flink: the REST hook.
    :param job_id: the job.
    """
    stats = flink.get_checkpoints(job_id)
    counts, summary = stats.get("counts") or {}, stats.get("summary") or {}
    history = sorted((c for c in stats.get("history") or [] if c.get("status") == "COMPLETED"), key=lambda c: c["id"])
    gaps = [(b["trigger_timestamp"] - a["latest_ack_timestamp"]) / 1000 for a, b in itertools.pairwise(history)]
    out: dict[str, Any] = {
        "completed": int(counts.get("completed") or 0), "failed": int(counts.get("failed") or 0),
        "duration_p50_ms": _stat(summary, "end_to_end_duration", "p50"),
        "duration_max_ms": _stat(summary, "end_to_end_duration", "max"),
        "checkpointed_kb": _kb(_stat(summary, "checkpointed_size", "avg")),
        "state_kb": _kb(_stat(summary, "state_size", "avg")),
        "persisted_in_flight_kb": _kb(_stat(summary, "persisted_data", "max")),
        "min_pause_seen_s": round(min(gaps), 2) if gaps else None,
        "alignment_max_ms": None, "start_delay_max_ms": None,
    }  # fmt: skip
    latest = ((stats.get("latest") or {}).get("completed") or {}).get("id")
    if latest is not None:
        vertices = [v["id"] for v in flink.get_job(job_id).get("vertices") or []]
        slowest = _slowest(flink, job_id, int(latest), vertices)
        out["alignment_max_ms"], out["start_delay_max_ms"] = slowest["alignment_ms"], slowest["start_delay_ms"]
    return out


def _kb(value: float | None) -> float | None:
    return None if value is None else round(value / 1024, 1)


def run_sweep(params: SweepParams, flink: FlinkRestHook, submit: Callable[[str], str], tag: str,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:  # fmt: skip
    """Submit every setting's job, let them run ``seconds``, measure each, cancel each.

    :param params: the sweep.
    :param flink: the REST hook.
    :param submit: submits a SQL script, returns the job id.
    :param tag: the run tag.
    :param sleep: waits (tests).
    :return: ``{"jobs": {name: job id}, "figures": {name: measure(...)}}``.
    """
    jobs: dict[str, str] = {}
    try:
        for name, text in scripts(params, tag).items():
            jobs[name] = submit(text)
        sleep(params.seconds)
        figures = {name: measure(flink, job_id) for name, job_id in jobs.items()}
    finally:
        for job_id in jobs.values():
            if flink.find_job_state(job_id) not in (None, "CANCELED", "FINISHED", "FAILED"):
                flink.cancel_job(job_id)
    return {"jobs": jobs, "figures": figures}


def table(params: SweepParams, figures: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The lesson's table: one row per setting.

    :param params: the sweep.
    :param figures: setting -> :func:`measure`.
    """
    return [{"setting": name, "what": SETTINGS[name].what, **figures[name]} for name in params.settings]


_SINGLE_CHECKS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any], str, Any, str], ...] = (
    ("rocksdb_incremental", "checkpointed / full state size", lambda r: _ratio(r["checkpointed_kb"], r["state_kb"]),
     "<", 1.0, "an incremental checkpoint uploads only the SST files new since the last"),
    ("hashmap_1s", "checkpointed / full state size", lambda r: _ratio(r["checkpointed_kb"], r["state_kb"]),
     "==", 1.0, "the hashmap backend writes the whole state at every checkpoint"),
    ("timeout_1s_backpressure", "failed (expired) checkpoints", lambda r: r["failed"], ">=", 1,
     "under backpressure the barrier needs longer than 1 s to pass the full buffers: the checkpoint expires"),
    ("min_pause_3s", "shortest gap from a checkpoint's end to the next trigger (s)", lambda r: r["min_pause_seen_s"],
     ">=", 2.9, "the next checkpoint waits for the pause, whatever the interval says"),
)  # fmt: skip
"""The relations each judged on one setting's figures: setting, what, how it is read, relation, expected, why."""


def judge(params: SweepParams, figures: Mapping[str, Mapping[str, Any]]) -> list[Check]:
    """The documented relations between the settings that ran.

    :param params: the sweep.
    :param figures: setting -> :func:`measure`.
    """
    ran, f = set(params.settings), figures
    checks = [check(f"{name}: completed checkpoints", f[name]["completed"], ">=", 1,
                    "every setting completes checkpoints (the short timeout one too, now and then, or not)")
              for name in params.settings if name != "timeout_1s_backpressure"]  # fmt: skip
    for name, what, measured, relation, expected, why in _SINGLE_CHECKS:
        if name in ran:
            checks.append(check(f"{name}: {what}", measured(f[name]), relation, expected, why))
    if {"aligned_backpressure", "unaligned_backpressure"} <= ran:
        aligned, unaligned = f["aligned_backpressure"], f["unaligned_backpressure"]
        checks += [
            check("unaligned_backpressure: checkpoint duration p50 (ms)", unaligned["duration_p50_ms"], "<",
                  aligned["duration_p50_ms"], "an unaligned barrier overtakes the full buffers instead of queueing"),
            check("unaligned_backpressure: in-flight data persisted (kB, max)", unaligned["persisted_in_flight_kb"],
                  ">", 0, "what it overtook is stored with the checkpoint (and replayed on restore)"),
            check("aligned_backpressure: in-flight data persisted (kB, max)", aligned["persisted_in_flight_kb"],
                  "==", 0, "an aligned checkpoint stores no in-flight data: the barrier waited for it"),
        ]  # fmt: skip
    return checks


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


RECOVERY_GOAL_S = 10.0
"""The lesson's goal: a killed TaskManager's job rescheduled (noticed and restarted) within 10 s."""


def drill_rows(drill: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per kill of :func:`~flink_lessons.phase3.failover.run_drill`'s result: seconds after the kill.

    :param drill: the drill's result.
    """
    return [{"kill": n, "taskmanager": kill["taskmanager"], **kill["moments"]}
            for n, kill in enumerate(drill["kills"], 1)]  # fmt: skip


def report(params: SweepParams, figures: Mapping[str, Mapping[str, Any]], drill: Mapping[str, Any]) -> LessonReport:
    """The lesson's report: the sweep's table and relations, the drill's table and its exact counts.

    :param params: the sweep.
    :param figures: setting -> :func:`measure`.
    :param drill: :func:`~flink_lessons.phase3.failover.run_drill`'s result.
    """
    out = LessonReport(LESSON, "checkpoint tuning and failure recovery", settings={"sweep": params.settings,
                       "heartbeats": drill["heartbeats"]})  # fmt: skip
    out.tables["checkpoints per setting (all ran at once, on the same machine)"] = table(params, figures)
    rows = drill_rows(drill)
    out.tables["failure drill: seconds from each TaskManager kill"] = rows
    out.tables["failure drill: events (committed output read with read_committed)"] = [dict(drill["counts"])]
    counts = drill["counts"]
    out.checks = [
        *judge(params, figures),
        check("drill: events lost", counts["lost"], "==", 0, "the source rewinds to the last checkpoint's offsets"),
        check("drill: events duplicated", counts["duplicated"], "==", 0,
              "what was written after that checkpoint was in an open transaction, aborted on restore"),
        check("drill: TaskManager kills the job recovered from", len(rows), "==", drill["kills_asked"],
              "after each kill every task ran again (a kill it did not recover from fails the drill)"),
        check("drill: slowest kill-to-rescheduled (s)", max((r.get("job_rescheduled") or 1e9 for r in rows),
              default=None), "<", RECOVERY_GOAL_S,
              "heartbeats every 1 s notice a killed TaskManager in ~2 s; the restart delay is 1 s; a standby "
              "TaskManager has the free slot"),
    ]  # fmt: skip
    out.notes = [
        "alignment_max_ms stays 0 at parallelism 1: one input channel has nothing to align; under backpressure the "
        "cost shows as start_delay_max_ms (the barrier queued behind the full buffers) and the duration.",
        "running_again (every task RUNNING) adds the tasks' deployment and initialization (Kafka producers, "
        "generated code) to job_rescheduled: seconds on an idle machine, tens of seconds on a loaded one.",
        "Stability traded for speed: heartbeat.interval 1 s costs an RPC per second per TaskManager; the timeout "
        "(for a hung, not killed, TaskManager) stays 20 s, since at a few seconds a GC pause or a starved CPU "
        "would fail healthy jobs. A killed process refuses connections: heartbeat.rpc-failure-threshold (2) "
        "failed RPCs mark it lost without waiting for the timeout.",
    ]
    return out
