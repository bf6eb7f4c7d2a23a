"""The dead-letter alert: what the AssetWatcher's trigger keeps of a message, and the report of a run.

``flink_dlq_alerts`` is scheduled on an Asset watched by the Kafka provider's ``KafkaMessageQueueTrigger`` on
the malformed-JSON scenario's dead-letter topics (``phase1-malformed-dlq-<run tag>``, one per run, matched by a
regex). The trigger runs in the triggerer: each dead letter it reads becomes an asset event carrying
:func:`dead_letter_event`'s summary; the DAG run then reports how many dead letters arrived and a sample with
their parse errors, and sends one alert through the ``flink_observability`` Variable's ``alerts.*`` settings.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_flink_provider.notifications.flink_alert import FIRING, Alert, alert_to_json, playbook_section

log = logging.getLogger(__name__)

DLQ_TOPICS = "^phase1-malformed-dlq.*"
"""The dead-letter topics of every phase 1 malformed-JSON run (a regex subscription)."""

WATCHER_CONN_ID = "kafka_dlq_watcher"
"""The Kafka connection the trigger reads with: needs ``group.id``, ``auto.offset.reset`` and a short
``topic.metadata.refresh.interval.ms`` so a new run's topic is found quickly (see docs/observability.md)."""

SAMPLE_SIZE = 5


def dead_letter_event(message: Any) -> dict[str, Any] | None:
    """What the trigger keeps of a dead letter (called in the triggerer with a confluent-kafka ``Message``).

    :param message: the Kafka message.
    :return: topic, partition, offset, the parse error (``reason``) and the original payload; ``None`` (skip)
        for a tombstone.
    """
    raw = message.value()
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {"reason": "dead letter is not JSON", "payload": text}
    if not isinstance(body, dict):
        body = {"reason": "dead letter is not a JSON object", "payload": text}
    return {
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "reason": body.get("reason"),
        "payload": body.get("payload"),
    }


def summarize(events: Iterable[Mapping[str, Any]], sample_size: int = SAMPLE_SIZE) -> dict[str, Any]:
    """How many dead letters, per topic and per parse error, and a sample.

    :param events: dead-letter summaries (:func:`dead_letter_event`).
    :param sample_size: how many to quote.
    """
    letters = [dict(event) for event in events]
    by_reason: dict[str, int] = {}
    by_topic: dict[str, int] = {}
    for letter in letters:
        by_reason[str(letter.get("reason"))] = by_reason.get(str(letter.get("reason")), 0) + 1
        by_topic[str(letter.get("topic"))] = by_topic.get(str(letter.get("topic")), 0) + 1
    return {"count": len(letters), "by_reason": by_reason, "by_topic": by_topic, "sample": letters[:sample_size]}


def report_task(**context: Any) -> dict[str, Any]:
    """The ``report_dead_letters`` task: summarize the dead letters that triggered this run (XCom: the summary).

    :raises ValueError: when the run was not triggered by dead letters (e.g. triggered by hand).
    """
    triggering = context.get("triggering_asset_events") or {}
    events = [
        event.extra.get("payload")
        for asset_events in triggering.values()
        for event in asset_events
        if isinstance(event.extra, Mapping) and isinstance(event.extra.get("payload"), Mapping)
    ]
    if not events:
        raise ValueError("no dead-letter asset event triggered this run; it runs when the watcher sees dead letters")
    summary = summarize(events)
    log.warning("%d dead letter(s) by parse error: %s", summary["count"], summary["by_reason"])
    for letter in summary["sample"]:
        log.warning("%s[%s]@%s: %s -- payload %r", letter["topic"], letter["partition"], letter["offset"],
                    letter["reason"], letter["payload"])  # fmt: skip
    return summary


def dead_letter_alert(summary: Mapping[str, Any], now_ms: int) -> Alert:
    """The alert for one run's dead letters: names the topic(s), the count by parse error and the playbook section.

    :param summary: :func:`summarize`'s output.
    :param now_ms: the current time, epoch ms.
    """
    reasons = ", ".join(f"{count} {reason!r}" for reason, count in sorted(summary["by_reason"].items()))
    return Alert(
        status=FIRING,
        job=", ".join(sorted(summary["by_topic"])),
        job_id="",
        metric="dead_letters",
        threshold="0 dead letters",
        value=f"{summary['count']} ({reasons})",
        since_ms=now_ms,
        at_ms=now_ms,
        section=playbook_section("dead_letters"),
    )


def alert_task(summary: dict[str, Any], **context: Any) -> int:
    """The ``send_alert`` task: one alert for this run's dead letters, sent as ``flink_observability`` sends its
    alerts (its Variable's ``alerts.enabled``, ``alerts.to`` and ``alerts.smtp_conn_id``).

    :param summary: XCom of ``report_dead_letters``.
    :return: how many alerts were sent (0 or 1).
    """
    from flink_lessons.observability.settings import resolve_settings
    from flink_lessons.observability.tasks import send_alerts

    settings = resolve_settings(None).to_json()
    alert = dead_letter_alert(summary, int(time.time() * 1000))
    return send_alerts(settings, {"alerts": [alert_to_json(alert)]}, context)
