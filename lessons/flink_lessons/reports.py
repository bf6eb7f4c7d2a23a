"""What a scenario run reports: rows per sink, and the scenario's own accounting, checked.

Each scenario that can account for its events has a summary: given the number of events produced and the
rows of each sink, it returns the report's lines and raises :class:`ScenarioCheckError` when the books do
not balance (e.g. clean rows + dead letters != events produced).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flink_lessons.scenarios import Scenario
    from flink_lessons.settings import Settings

Summary = Callable[[int, Mapping[str, list[Any]]], list[str]]
"""Given the number of produced events and the rows of each sink, report lines (raise ScenarioCheckError)."""


class ScenarioCheckError(AssertionError):
    """A scenario's own invariant does not hold (e.g. clean + DLQ rows != produced events)."""


def malformed_summary(produced: int, rows: Mapping[str, list[Any]]) -> list[str]:
    """malformed_json: (a) what json.ignore-parse-errors dropped; (b) clean + dead letters = produced.

    :param produced: events produced.
    :param rows: sink name -> rows.
    """
    lines = []
    if "parsed" in rows:
        parsed = len(rows["parsed"])
        lines.append(
            f"(a) json.ignore-parse-errors: {produced} events produced, {parsed} rows parsed, "
            f"{produced - parsed} dropped silently"
        )
    if "clean" in rows and "dlq" in rows:
        clean, dlq = len(rows["clean"]), len(rows["dlq"])
        lines.append(f"(b) dead letters: {clean} clean + {dlq} in the DLQ = {clean + dlq} of {produced} produced")
        if clean + dlq != produced:
            raise ScenarioCheckError(f"clean ({clean}) + DLQ ({dlq}) != produced ({produced}): events were lost")
    return lines


def late_summary(produced: int, rows: Mapping[str, list[Any]]) -> list[str]:
    """late_events: events counted in windows + events captured as late = produced.

    :param produced: events produced.
    :param rows: sink name -> rows.
    """
    in_windows = sum(int(row["events"]) for row in rows["windows"])
    late = len(rows["late"])
    if in_windows + late != produced:
        raise ScenarioCheckError(
            f"events counted in windows ({in_windows}) + late events ({late}) != produced ({produced})"
        )
    return [f"{in_windows} events counted in windows + {late} captured as late = {produced} produced"]


def dedup_summary(produced: int, rows: Mapping[str, list[Any]]) -> list[str]:
    """dedup: orders kept by keep-first and keep-last, and which keep-first missed.

    :param produced: events produced.
    :param rows: sink name -> rows.
    """
    first = {row["order_id"] for row in rows["first"]}
    last = {row["order_id"] for row in rows["last"]}
    lines = [f"{produced} events; keep-first kept {len(first)} orders, keep-last {len(last)}"]
    if last - first:
        lines.append(
            f"orders missing from keep-first (their first event was late for the watermark): {sorted(last - first)}"
        )
    return lines


def report_lines(scenario: Scenario, settings: Settings, produced: int, rows: Mapping[str, list[Any]]) -> list[str]:
    """The report of a run: topics, rows per sink, then the scenario's summary (which may raise).

    :param scenario: the scenario.
    :param settings: the run's settings.
    :param produced: events produced.
    :param rows: sink name -> rows.
    :raises ScenarioCheckError: the scenario's accounting does not balance (the message has the report).
    """
    lines = [f"{scenario.dag_id}, run tag {settings.tag}: {produced} events produced to "
             f"{settings.topics[scenario.input_topic]}"]  # fmt: skip
    for sink in scenario.sinks:
        where = settings.topics[sink.topic] if sink.topic else "TaskManager stdout"
        lines.append(f"  {sink.name:<8} {len(rows.get(sink.name, [])):>3} rows  {where}")
    if scenario.summary is not None:
        try:
            lines += [f"  {line}" for line in scenario.summary(produced, rows)]
        except ScenarioCheckError as err:
            raise ScenarioCheckError("\n".join([*lines, f"  {err}"])) from None
    return lines
