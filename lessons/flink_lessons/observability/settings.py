"""The Variable ``flink_observability``: which jobs to watch, the limits alerts fire on, where alerts go."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_flink_provider.protocol.metrics import HealthLimits
from flink_lessons.rules import CONN_ID, Boolean, Choice, DurationRule, Integer, JsonObject, Name, Number
from flink_lessons.settings import Family, Key, Settings, layers, resolve

VARIABLE = "flink_observability"


@dataclass(frozen=True)
class Pattern:
    """A Python regular expression a job name must match (``re.search``)."""

    rule = "a regular expression (Python syntax) matched against job names"

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"must be a non-empty regular expression, got {value!r}")
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"is not a valid regular expression ({err}): {value!r}") from None
        return value


@dataclass(frozen=True)
class GroupMap:
    """``{job name: Kafka consumer group id}`` for the broker-side lag."""

    rule = "a JSON object of job name -> consumer group id"

    def __call__(self, value: Any) -> dict[str, str]:
        groups = JsonObject()(value)
        bad = [name for name, group in groups.items() if not isinstance(group, str) or not group]
        if bad:
            raise ValueError(f"needs a non-empty group id string for {bad}")
        return groups


ABSOLUTE_DIR = Name("an absolute directory path", r"/[^\0]*")
EMAIL = Name("an e-mail address", r"[^@\s,;]+@[^@\s,;]+")

OBSERVABILITY = Family(
    variable=VARIABLE,
    title="Observability: what flink_observability watches and when it alerts",
    keys=(
        Key("job_name_pattern", None, Pattern(),
            "Watch only RUNNING (or RESTARTING) jobs whose name matches; null: every one.", nullable=True),
        Key("flink_conn_id", "flink_default", CONN_ID, "The Flink REST connection."),
        Key("kafka_conn_id", "kafka_default", CONN_ID, "Kafka connection for the broker-side consumer group lag."),
        Key("consumer_groups", {}, GroupMap(),
            "Job name -> the group.id its Kafka source commits under; jobs not listed get no broker-side lag "
            "(Flink's REST API does not tell a source's group id)."),
        Key("window", "10 min", DurationRule(10_000), "Restarts and failed checkpoints count within this window."),
        Key("limits.max_pending_records", 100_000, Number(0),
            "Source lag limit: Flink's pendingRecords summed over the job's sources.", nullable=True),
        Key("limits.checkpoint_age_intervals", 3, Number(1),
            "Checkpoint age limit, in checkpoint intervals since the last completed one.", nullable=True),
        Key("limits.max_failed_checkpoints", 0, Integer(0), "Failed checkpoints allowed within the window.",
            nullable=True),
        Key("limits.max_restarts", 0, Integer(0), "Restarts allowed within the window.", nullable=True),
        Key("limits.max_backpressure", "low", Choice("ok", "low"), "Worst acceptable backpressure level.",
            nullable=True),
        Key("limits.max_watermark_delay", None, DurationRule(1000),
            "How far the lowest watermark may trail the wall clock; null: not checked (replays trail on purpose).",
            nullable=True),
        Key("history_points", 60, Integer(2), "Observations kept per job for the report and the plot."),
        Key("state_dir", None, ABSOLUTE_DIR,
            "Directory of the history, the incidents and the reports; null: observability/ under the stack's "
            "state ($FLINK_STACK_DIR/state, default .stack/state).", nullable=True),
        Key("alerts.enabled", True, Boolean(), "Send alerts; false: only the report."),
        Key("alerts.smtp_conn_id", "smtp_alerts", CONN_ID, "SMTP connection the alerts are sent through."),
        Key("alerts.to", "flink-oncall@localhost", EMAIL, "Recipient of the alerts."),
    ),
)  # fmt: skip


def resolve_settings(conf: dict[str, Any] | None) -> Settings:
    """This run's settings: defaults < Variable ``flink_observability`` < run conf (run time only).

    :param conf: the DAG run's conf.
    :raises VariableError: naming every bad key.
    """
    return resolve(OBSERVABILITY, *layers(VARIABLE, conf))


def limits_of(values: dict[str, Any]) -> HealthLimits:
    """The provider's :class:`HealthLimits` from the settings' values (``Settings.to_json()["values"]``).

    :param values: dotted key -> value, durations as text or :class:`~flink_lessons.rules.Duration`.
    """
    delay = values["limits.max_watermark_delay"]
    delay_s = None if delay is None else DurationRule()(delay).ms / 1000
    return HealthLimits(
        max_pending_records=values["limits.max_pending_records"],
        checkpoint_age_intervals=values["limits.checkpoint_age_intervals"],
        max_failed_checkpoints=values["limits.max_failed_checkpoints"],
        max_restarts=values["limits.max_restarts"],
        max_backpressure=values["limits.max_backpressure"],
        max_watermark_delay_s=delay_s,
    )
