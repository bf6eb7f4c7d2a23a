"""Alerts: one per incident (fired, then resolved), delivered by Airflow's SMTP notifier to a real SMTP receiver
on loopback (aiosmtpd), and read back from what the receiver got."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from airflow_flink_provider.notifications.flink_alert import (
    FIRING,
    RESOLVED,
    Alert,
    FlinkAlertNotifier,
    IncidentBook,
    alert_from_json,
    alert_to_json,
)
from airflow_flink_provider.protocol.metrics import Breach
from tests.unit._alert_inbox import Inbox, smtp_inbox

pytestmark = pytest.mark.unit

LAG = Breach("source_lag", "1000 records", "191700 records")


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 and the Airflow connection ``smtp_alerts`` pointing at it."""
    with smtp_inbox(monkeypatch) as handler:
        yield handler


def test_one_alert_per_incident_fired_then_resolved() -> None:
    book = IncidentBook()
    scope = ["orders"]
    fired = book.update({"orders": "j1"}, {"orders": [LAG]}, 1_000, scope=scope)
    assert [(a.status, a.job, a.metric, a.threshold, a.value) for a in fired] == [
        (FIRING, "orders", "source_lag", "1000 records", "191700 records")
    ]
    assert fired[0].section == "docs/observability.md#source-lag"
    # The same breach again, with another value: no new alert, the incident's value follows.
    stored = json.loads(json.dumps(book.to_json()))
    book = IncidentBook.from_json(stored)
    again = Breach("source_lag", "1000 records", "5000 records")
    assert book.update({"orders": "j1"}, {"orders": [again]}, 61_000, scope=scope) == []
    assert book.open["orders|source_lag"]["value"] == "5000 records"
    resolved = book.update({"orders": "j1"}, {}, 121_000, scope=scope)
    assert [(a.status, a.metric, a.value, a.since_ms) for a in resolved] == [
        (RESOLVED, "source_lag", "within the limit", 1_000)
    ]
    assert "after 120 s" in resolved[0].text
    assert book.open == {}
    # A new breach later is a new incident.
    assert [a.status for a in book.update({"orders": "j2"}, {"orders": [LAG]}, 200_000, scope=scope)] == [FIRING]


def test_incidents_of_jobs_out_of_scope_stay_open_and_a_stopped_job_resolves() -> None:
    book = IncidentBook()
    book.update({"a": "1", "b": "2"}, {"a": [LAG], "b": [LAG]}, 0, scope=["a", "b"])
    # A run watching only "a" must not resolve "b"'s incident.
    assert book.update({"a": "1"}, {"a": [LAG]}, 10, scope=["a"]) == []
    assert set(book.open) == {"a|source_lag", "b|source_lag"}
    gone = book.update({}, {}, 20, scope=["a", "b"])
    assert [(a.job, a.status, a.value) for a in gone] == [
        ("a", RESOLVED, "job no longer running"),
        ("b", RESOLVED, "job no longer running"),
    ]


def test_alert_round_trips_as_json() -> None:
    alert = IncidentBook().update({"x": "id"}, {"x": [LAG]}, 5, scope=["x"])[0]
    assert alert_from_json(json.loads(json.dumps(alert_to_json(alert)))) == alert


def test_notifier_delivers_to_a_real_smtp_receiver(inbox: Inbox) -> None:
    alert = Alert(FIRING, "orders {{ not jinja }}", "abc", "backpressure", "low", "high (ratio 0.93)", 1, 2,
                  "docs/observability.md#backpressure")  # fmt: skip
    notifier = FlinkAlertNotifier(alert, to="oncall@example.org", smtp_conn_id="smtp_alerts")
    notifier({"dag": None})  # what Airflow calls: render the template fields, then notify
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "oncall@example.org"
    assert message["X-Flink-Alert-Status"] == FIRING
    assert message["X-Flink-Metric"] == "backpressure"
    subject = "[FIRING] Flink job orders {{ not jinja }}: backpressure = high (ratio 0.93) (limit low)"
    assert message["Subject"] == subject
    body = next(part for part in message.walk() if part.get_content_type() == "text/html").get_payload(decode=True)
    text = body.decode()
    for expected in ("job: orders {{ not jinja }} (abc)", "metric: backpressure", "threshold: low",
                     "value: high (ratio 0.93)", "read: docs/observability.md#backpressure"):  # fmt: skip
        assert expected in text, text
    assert os.environ["AIRFLOW_CONN_SMTP_ALERTS"]
