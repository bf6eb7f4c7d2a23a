"""The glue of flink_observability and flink_dlq_alerts: settings, history, report rows and plot, dead letters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.observability import dlq, history, report
from flink_lessons.observability.settings import OBSERVABILITY, limits_of
from flink_lessons.settings import VariableError, resolve

pytestmark = pytest.mark.unit


def test_settings_report_every_bad_key_and_give_provider_limits() -> None:
    with pytest.raises(VariableError) as error:
        resolve(OBSERVABILITY, ("Variable 'flink_observability'", {
            "job_name_pattern": "(", "state_dir": "relative", "alerts": {"to": "nobody"},
            "limits": {"max_backpressure": "high", "max_restarts": -1}, "consumer_groups": {"job": ""},
        }))  # fmt: skip
    text = str(error.value)
    for key in ("job_name_pattern", "state_dir", "alerts.to", "limits.max_backpressure", "limits.max_restarts",
                "consumer_groups"):  # fmt: skip
        assert f"{key} (from Variable 'flink_observability')" in text, text
    values = resolve(OBSERVABILITY, ("x", {"limits": {"max_watermark_delay": "2 min"}})).to_json()["values"]
    limits = limits_of(values)
    assert limits.max_watermark_delay_s == 120 and limits.max_backpressure == "low"
    assert limits.max_pending_records == 100_000 and limits.checkpoint_age_intervals == 3


def test_history_keeps_the_newest_points_and_drops_stale_jobs(tmp_path: Path) -> None:
    jobs = {"old": [{"at_ms": 0}], "a": [{"at_ms": i} for i in range(5)]}
    kept = history.append(jobs, {"a": {"at_ms": 100}, "b": {"at_ms": 100}}, keep=3, now_ms=100, stale_ms=50)
    assert kept == {"a": [{"at_ms": 3}, {"at_ms": 4}, {"at_ms": 100}], "b": [{"at_ms": 100}]}
    path = history.save(tmp_path, {"jobs": kept, "incidents": {"open": {}}})
    assert json.loads(path.read_text())["jobs"] == kept and history.load(tmp_path)["jobs"] == kept
    assert history.load(tmp_path / "none") == {"jobs": {}, "incidents": {}}
    assert history.state_dir("/x/y") == Path("/x/y")


def test_report_row_markdown_and_plot(tmp_path: Path) -> None:
    point = {"at_ms": 1_000, "pending_records": 191700.0, "broker_lag": None, "checkpoint_interval_ms": 2000,
             "checkpoint_age_ms": 9000, "checkpoint_durations_ms": [100, 100, 300], "checkpoint_duration_ms": 300,
             "failed_checkpoints": 2, "failed_checkpoints_total": 14, "restarts": 0, "backpressure": "high",
             "backpressure_ratio": 0.93, "watermark_delay_ms": None}  # fmt: skip
    row = report.row("orders", point, ["source_lag", "backpressure"])
    assert row["verdict"] == "ALERT: source_lag, backpressure"
    assert row["pending records"] == "191,700" and row["broker lag"] == "n/a"
    assert row["checkpoint age / interval"] == "9 s / 2 s"
    assert row["checkpoint duration (trend)"] == "300 ms (x3.0 of median)"
    assert row["backpressure"] == "high (0.93)"
    table = report.markdown([row], "t")
    assert "| orders | ALERT: source_lag, backpressure | 191,700 |" in table
    png = report.plot({"orders": [point, {**point, "at_ms": 2_000, "pending_records": 0.0}]}, tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"




@pytest.mark.parametrize(("delay_ms", "shown"), [(None, "n/a"), (2_500, "2.5 s"), (5_400_000, "1.5 h"),
                                                 (86_939_606_200, "1,006.2 days")])  # fmt: skip
def test_watermark_delay_is_shown_in_a_unit_people_read(delay_ms: float | None, shown: str) -> None:
    """The phase 5 dataset's event time is years old: 86939606.2 s said nothing at a glance."""
    assert report.row("j", {"watermark_delay_ms": delay_ms}, [])["watermark delay"] == shown

def test_plot_draws_only_the_lag_a_job_reports_and_says_when_it_reports_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib.pyplot as plt

    drawn: list[Any] = []
    monkeypatch.setattr(plt, "close", drawn.append)
    report.plot({"datagen": [{"at_ms": 1_000, "checkpoint_duration_ms": 5}],
                 "kafka": [{"at_ms": 1_000, "pending_records": 3.0, "checkpoint_duration_ms": 5}]}, tmp_path / "p.png")
    datagen_lag, kafka_lag = drawn[0].axes[:2]  # the top row, one column per job in name order
    assert not datagen_lag.lines and "no lag metric" in datagen_lag.texts[0].get_text()
    assert [line.get_label() for line in kafka_lag.lines] == ["pendingRecords"] and not kafka_lag.texts


class Message:
    """The parts of a confluent-kafka Message the trigger's function reads."""

    def __init__(self, value: bytes | None) -> None:
        self._value = value

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str:
        return "phase1-malformed-dlq-0a1b2c3d"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def test_dead_letters_are_summarized_with_their_parse_error() -> None:
    # A dead letter as include/sql/phase1_malformed_json/dead_letter.sql.j2 writes it.
    letter = {"reason": "not valid JSON", "payload": "{order_id: 1", "source_offset": 3}
    event = dlq.dead_letter_event(Message(json.dumps(letter).encode()))
    assert event == {"topic": "phase1-malformed-dlq-0a1b2c3d", "partition": 0, "offset": 7,
                     "reason": "not valid JSON", "payload": "{order_id: 1"}  # fmt: skip
    assert dlq.dead_letter_event(Message(None)) is None
    assert dlq.dead_letter_event(Message(b"oops"))["reason"] == "dead letter is not JSON"  # type: ignore[index]
    summary = dlq.summarize([event, {**event, "reason": "order_id missing"}, event], sample_size=2)
    assert summary["count"] == 3 and summary["by_reason"] == {"not valid JSON": 2, "order_id missing": 1}
    assert len(summary["sample"]) == 2


def test_dead_letter_alert_names_topic_count_reasons_and_playbook() -> None:
    summary = dlq.summarize([
        {"topic": "phase1-malformed-dlq-0a1b2c3d", "reason": "not valid JSON"},
        {"topic": "phase1-malformed-dlq-0a1b2c3d", "reason": "order_id missing"},
        {"topic": "phase1-malformed-dlq-0a1b2c3d", "reason": "not valid JSON"},
    ])  # fmt: skip
    alert = dlq.dead_letter_alert(summary, now_ms=5_000)
    assert alert.subject == ("[FIRING] Flink job phase1-malformed-dlq-0a1b2c3d: dead_letters = "
                             "3 (2 'not valid JSON', 1 'order_id missing') (limit 0 dead letters)")  # fmt: skip
    assert alert.section == "docs/observability.md#dead-letter-events" and alert.metric == "dead_letters"
