"""The task callables of ``flink_observability``: resolve settings, observe, send alerts, render the report.

Every Flink and Kafka call happens here at run time, never when the DAG file is parsed.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.notifications.flink_alert import (
    FlinkAlertNotifier,
    IncidentBook,
    alert_from_json,
    alert_to_json,
)
from airflow_flink_provider.protocol.metrics import check_limits
from flink_lessons.observability import collect, history, report
from flink_lessons.observability.settings import limits_of, resolve_settings

log = logging.getLogger(__name__)


def settings_task(**context: Any) -> dict[str, Any]:
    """Validate the Variable and the run conf before anything is read (XCom: the settings' JSON)."""
    return resolve_settings(context["dag_run"].conf if context.get("dag_run") else None).to_json()


def observe(values: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """Look at the watched jobs, check the limits, update history and incidents; returns what to send and report.

    :param values: the settings' values (``Settings.to_json()["values"]``).
    :param now_ms: the current time, epoch ms (default: now).
    :return: ``{"alerts": [...], "breaches": {job: [metric]}, "jobs": {name: id}, "state_dir": str}``.
    """
    from flink_lessons.rules import parse_duration

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    window_ms = parse_duration(values["window"]).ms
    limits = limits_of(values)
    hook = FlinkRestHook(values["flink_conn_id"])
    jobs = collect.watched_jobs(hook, values["job_name_pattern"])
    groups = {name: group for name, group in values["consumer_groups"].items() if name in jobs}
    admin = None
    if groups:
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        admin = KafkaAdminClientHook(values["kafka_conn_id"]).get_conn
    seen = collect.collect(hook, admin, jobs, groups, now_ms, window_ms)
    breaches = {name: check_limits(signals, limits) for name, (signals, _) in seen.items()}
    directory = history.state_dir(values["state_dir"])
    stored = history.load(directory)
    points = {name: collect.observation(signals, broker) for name, (signals, broker) in seen.items()}
    book = IncidentBook.from_json(stored["incidents"])
    # Responsible for every job it watches now or has an incident open for (a stopped job's incident resolves).
    pattern = values["job_name_pattern"]
    scope = [key.rpartition("|")[0] for key in book.open]
    scope = [name for name in scope if pattern is None or re.search(pattern, name)] + list(jobs)
    alerts = book.update(jobs, {name: found for name, found in breaches.items() if found}, now_ms, scope=scope)
    keep = values["history_points"]
    jobs_history = history.append(stored["jobs"], points, keep, now_ms, stale_ms=keep * 3_600_000)
    path = history.save(directory, {"jobs": jobs_history, "incidents": book.to_json()})
    for name, found in breaches.items():
        log.info("%s (%s): %s", name, jobs[name], "; ".join(map(str, found)) or "within every limit")
    log.info("History and incidents: %s (%d open incident(s))", path, len(book.open))
    return {
        "alerts": [alert_to_json(alert) for alert in alerts],
        "breaches": {name: [b.metric for b in found] for name, found in breaches.items()},
        "jobs": jobs,
        "state_dir": str(directory),
        "at_ms": now_ms,
    }


def observe_task(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``observe`` task.

    :param settings: XCom of ``resolve_settings``.
    """
    return observe(settings["values"])


def send_alerts(settings: dict[str, Any], observed: dict[str, Any], context: Any = None) -> int:
    """Send each alert of this run through :class:`FlinkAlertNotifier`; a delivery failure fails the task
    (its retry sends the run's alerts again).

    :param settings: XCom of ``resolve_settings``.
    :param observed: XCom of ``observe``.
    :param context: the task context.
    :return: how many alerts were sent.
    """
    values = settings["values"]
    alerts = [alert_from_json(a) for a in observed["alerts"]]
    if not values["alerts.enabled"]:
        log.info("Alerts are disabled; %d not sent: %s", len(alerts), [a.subject for a in alerts])
        return 0
    for alert in alerts:
        notifier = FlinkAlertNotifier(alert, to=values["alerts.to"], smtp_conn_id=values["alerts.smtp_conn_id"])
        notifier(context or {})
        log.info("Sent: %s", alert.subject)
    return len(alerts)


def send_alerts_task(settings: dict[str, Any], observed: dict[str, Any], **context: Any) -> int:
    """The ``send_alerts`` task.

    :param settings: XCom of ``resolve_settings``.
    :param observed: XCom of ``observe``.
    """
    return send_alerts(settings, observed, context)


def render_report(observed: dict[str, Any]) -> dict[str, str]:
    """Write ``report.md`` and ``lag_checkpoints.png`` under ``<state_dir>/reports/<time>/`` and log both paths.

    :param observed: XCom of ``observe``.
    :return: ``{"report": path, "plot": path}``.
    """
    from pathlib import Path

    directory = Path(observed["state_dir"])
    stored = history.load(directory)["jobs"]
    watched = {name: stored.get(name, []) for name in observed["jobs"]}
    rows = [
        report.row(name, series[-1], observed["breaches"].get(name, [])) for name, series in watched.items() if series
    ]
    stamp = datetime.fromtimestamp(observed["at_ms"] / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out = directory / "reports" / stamp
    out.mkdir(parents=True, exist_ok=True)
    text = report.markdown(rows, f"Flink jobs at {stamp}")
    (out / "report.md").write_text(text)
    png = report.plot(watched, out / "lag_checkpoints.png")
    log.info("Report:\n%s", text)
    log.info("Report written to %s; plot of lag and checkpoint duration: %s", out / "report.md", png)
    return {"report": str(out / "report.md"), "plot": str(png)}
