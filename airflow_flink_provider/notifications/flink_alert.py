"""Alerts on a Flink job's health signals, sent once per incident through Airflow's notifier mechanism.

An *incident* is one (job name, metric) pair over its limit. :class:`IncidentBook` keeps the open incidents
between runs (as JSON the caller stores): a breach opens an incident and yields a ``FIRING`` alert; the same
breach on later runs yields nothing; the first run without it (or without the job) yields one ``RESOLVED``
alert and closes the incident. :class:`FlinkAlertNotifier` sends an alert as an e-mail with Airflow's SMTP
notifier (the SMTP provider ships with Airflow).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from airflow_flink_provider.protocol.metrics import Breach

PLAYBOOK = "docs/observability.md"
"""Where the alert playbook lives; each metric has a section there."""

SECTIONS = {
    "source_lag": "source-lag",
    "checkpoint_age": "checkpoint-age-and-failed-checkpoints",
    "failed_checkpoints": "checkpoint-age-and-failed-checkpoints",
    "restarts": "restarts",
    "backpressure": "backpressure",
    "watermark_delay": "watermark-delay",
    "dead_letters": "dead-letter-events",
}
"""The playbook section (anchor in :data:`PLAYBOOK`) to read for each metric."""

FIRING = "FIRING"
RESOLVED = "RESOLVED"


def playbook_section(metric: str) -> str:
    """``docs/observability.md#<section>`` for a metric.

    :param metric: e.g. ``source_lag``.
    """
    return f"{PLAYBOOK}#{SECTIONS.get(metric, 'alerts')}"


@dataclass(frozen=True)
class Alert:
    """One alert about one incident.

    :param status: ``FIRING`` or ``RESOLVED``.
    :param job: the job's name.
    :param job_id: the job id it was seen on.
    :param metric: the signal (see ``protocol.metrics.METRICS``).
    :param threshold: the limit, with its unit.
    :param value: the value that breached it (for ``RESOLVED``: the value now).
    :param since_ms: when the incident opened, epoch ms.
    :param at_ms: when this alert was raised, epoch ms.
    :param section: the playbook section to read.
    """

    status: str
    job: str
    job_id: str
    metric: str
    threshold: str
    value: str
    since_ms: int
    at_ms: int
    section: str

    @property
    def subject(self) -> str:
        """A one-line summary naming status, job, metric, value and threshold."""
        return f"[{self.status}] Flink job {self.job}: {self.metric} = {self.value} (limit {self.threshold})"

    @property
    def text(self) -> str:
        """The alert as plain text lines."""
        lasted = f" after {(self.at_ms - self.since_ms) / 1000:.0f} s" if self.status == RESOLVED else ""
        return "\n".join(
            (
                f"status: {self.status}{lasted}",
                f"job: {self.job} ({self.job_id})",
                f"metric: {self.metric}",
                f"threshold: {self.threshold}",
                f"value: {self.value}",
                f"read: {self.section}",
            )
        )

    @property
    def html(self) -> str:
        """The alert as a small HTML document (e-mail body)."""
        return f"<pre>{html.escape(self.text)}</pre>"


@dataclass
class IncidentBook:
    """Open incidents, keyed ``<job name>|<metric>``; stored as JSON between runs (see :meth:`to_json`).

    :param open: ``{key: {"job_id", "threshold", "value", "since_ms"}}``.
    """

    open: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> IncidentBook:
        """Load from :meth:`to_json`'s output (``None``: no incidents).

        :param data: the stored JSON value.
        """
        return cls(open={str(key): dict(value) for key, value in ((data or {}).get("open") or {}).items()})

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready value to store."""
        return {"open": self.open}

    def update(
        self,
        observed: Mapping[str, str],
        breaches: Mapping[str, Sequence[Breach]],
        now_ms: int,
        *,
        scope: Iterable[str],
    ) -> list[Alert]:
        """Open incidents for new breaches and resolve those no longer breached; returns the alerts to send.

        :param observed: ``{job name: job id}`` of the jobs looked at in this run.
        :param breaches: ``{job name: breaches}`` found in this run.
        :param now_ms: the current time, epoch ms.
        :param scope: job names this run is responsible for: open incidents of these jobs that were not
            breached (or whose job was not observed, e.g. it stopped) resolve; others are left alone.
        """
        alerts: list[Alert] = []
        seen: set[str] = set()
        for job, found in breaches.items():
            for breach in found:
                key = f"{job}|{breach.metric}"
                seen.add(key)
                if key in self.open:
                    self.open[key]["value"] = breach.value
                    continue
                self.open[key] = {
                    "job_id": observed.get(job, ""),
                    "threshold": breach.threshold,
                    "value": breach.value,
                    "since_ms": now_ms,
                }
                alerts.append(self._alert(FIRING, key, self.open[key], now_ms))
        responsible = set(scope)
        for key in sorted(self.open):
            job = key.rpartition("|")[0]
            if key in seen or job not in responsible:
                continue
            incident = self.open.pop(key)
            value = "within the limit" if job in observed else "job no longer running"
            alerts.append(self._alert(RESOLVED, key, {**incident, "value": value}, now_ms))
        return alerts

    @staticmethod
    def _alert(status: str, key: str, incident: Mapping[str, Any], now_ms: int) -> Alert:
        job, _, metric = key.rpartition("|")
        return Alert(
            status=status,
            job=job,
            job_id=str(incident.get("job_id", "")),
            metric=metric,
            threshold=str(incident["threshold"]),
            value=str(incident["value"]),
            since_ms=int(incident["since_ms"]),
            at_ms=now_ms,
            section=playbook_section(metric),
        )


def alert_from_json(data: Mapping[str, Any]) -> Alert:
    """An :class:`Alert` from :func:`dataclasses.asdict` output (alerts travel between tasks as XCom JSON).

    :param data: the alert's fields.
    """
    return Alert(**{name: data[name] for name in Alert.__dataclass_fields__})


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """An alert as JSON-ready fields.

    :param alert: the alert.
    """
    return asdict(alert)


class FlinkAlertNotifier(SmtpNotifier):
    """Send one :class:`Alert` as an e-mail through an SMTP connection (Airflow's ``SmtpNotifier``).

    The subject names status, job, metric, value and threshold; the body adds the job id and the playbook
    section; headers ``X-Flink-Alert-Status``, ``X-Flink-Job`` and ``X-Flink-Metric`` let a mail rule sort them.

    :param alert: the alert to send.
    :param to: recipients.
    :param from_email: sender (or ``from_email`` in the connection's extras).
    :param smtp_conn_id: the SMTP connection.
    """

    # The alert text is data, never a Jinja template (a job name may hold "{{").
    template_fields = ("to", "from_email", "smtp_conn_id")  # type: ignore[assignment]

    def __init__(
        self,
        alert: Alert,
        to: str | Iterable[str],
        from_email: str | None = None,
        smtp_conn_id: str = "smtp_default",
    ) -> None:
        super().__init__(
            to=to,
            from_email=from_email,
            subject=alert.subject,
            html_content=alert.html,
            smtp_conn_id=smtp_conn_id,
            custom_headers={
                "X-Flink-Alert-Status": alert.status,
                "X-Flink-Job": alert.job,
                "X-Flink-Metric": alert.metric,
            },
        )
        self.alert = alert
