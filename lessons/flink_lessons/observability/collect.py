"""One look at the watched jobs: the provider's :class:`JobSignals` plus the broker-side consumer group lag."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.protocol.metrics import JobSignals


def watched_jobs(hook: FlinkRestHook, pattern: str | None) -> dict[str, str]:
    """``{job name: job id}`` of the RUNNING (or RESTARTING) jobs whose name matches ``pattern`` (all when ``None``).

    A RESTARTING job stays watched, so its open incidents do not resolve as "no longer running" mid-restart.

    :param hook: the Flink REST hook.
    :param pattern: a regular expression searched in job names.
    """
    jobs: dict[str, str] = {}
    for job in hook.list_jobs(states=["RUNNING", "RESTARTING"]):  # newest first: a name's newest job wins
        name = str(job["name"])
        if (pattern is None or re.search(pattern, name)) and name not in jobs:
            jobs[name] = str(job["jid"])
    return jobs


def broker_lag(admin: Any, group: str) -> int | None:
    """Records between the group's committed offsets and the partitions' ends, summed; ``None`` without commits.

    Flink's Kafka source commits on checkpoints, so this moves in checkpoint steps (a coarser signal than
    ``pendingRecords``).

    :param admin: a ``confluent_kafka.admin.AdminClient`` (from the Kafka provider's ``KafkaAdminClientHook``).
    :param group: the consumer group id.
    """
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import OffsetSpec

    answer = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    committed = [tp for tp in answer.topic_partitions if tp.offset >= 0]
    if not committed:
        return None
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in committed})
    return sum(max(0, ends[tp].result().offset - tp.offset) for tp in committed)


def observation(signals: JobSignals, broker: int | None) -> dict[str, Any]:
    """One history point of a job (JSON-ready).

    :param signals: the provider's look at the job.
    :param broker: the broker-side group lag, ``None`` when unknown.
    """
    checkpoints = signals.checkpoints
    return {
        "at_ms": signals.at_ms,
        "job_id": signals.job_id,
        "pending_records": signals.pending_records,
        "broker_lag": broker,
        "checkpoint_interval_ms": checkpoints.interval_ms,
        "checkpoint_age_ms": checkpoints.age_ms,
        "checkpoint_duration_ms": checkpoints.last_duration_ms,
        "checkpoint_durations_ms": list(checkpoints.durations_ms),
        "failed_checkpoints": checkpoints.recent_failed,
        "failed_checkpoints_total": checkpoints.failed,
        "restarts": signals.restarts,
        "backpressure": signals.backpressure,
        "backpressure_ratio": signals.backpressure_ratio,
        "watermark_delay_ms": signals.watermark_delay_ms,
    }


def collect(
    hook: FlinkRestHook, admin: Any, jobs: Mapping[str, str], groups: Mapping[str, str], now_ms: int, window_ms: int
) -> dict[str, tuple[JobSignals, int | None]]:
    """Signals and broker lag of each watched job.

    :param hook: the Flink REST hook.
    :param admin: a Kafka ``AdminClient``, or ``None`` when no job has a consumer group configured.
    :param jobs: ``{job name: job id}``.
    :param groups: ``{job name: consumer group}``.
    :param now_ms: the current time, epoch ms.
    :param window_ms: window for restarts and failed checkpoints.
    """
    found: dict[str, tuple[JobSignals, int | None]] = {}
    for name, job_id in jobs.items():
        signals = hook.get_job_signals(job_id, now_ms, window_ms)
        group = groups.get(name)
        found[name] = (signals, broker_lag(admin, group) if group and admin is not None else None)
    return found
