"""The steps of the phase 0/1 scenario DAGs that are the lessons' own: validate the settings, render a
script, observe the print sink, compare each sink with its expected rows, report."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from flink_lessons.scenarios import SCENARIOS
from flink_lessons.settings import Settings, VariableError

if TYPE_CHECKING:
    from airflow.sdk import Context

PRINT_SETTLE_SECONDS = 3
"""After the expected print lines appeared, how long to keep watching for unexpected extra lines."""


def check_consumer_connection(conn_id: str) -> None:
    """Fail early when the consumer connection cannot read the sink topics from their start.

    :param conn_id: the ``kafka_consumer_conn_id`` setting.
    :raises VariableError: naming the connection and what it lacks.
    """
    from airflow.sdk import BaseHook

    try:
        extra = dict(BaseHook.get_connection(conn_id).extra_dejson)
    except Exception as err:
        raise VariableError(
            f"kafka_consumer_conn_id: connection '{conn_id}' cannot be read ({err}); create it as shown in "
            "docs/local-setup.md (group.id, auto.offset.reset=earliest)"
        ) from None
    problems = [f"{key} is missing" for key in ("bootstrap.servers", "group.id") if not extra.get(key)]
    if str(extra.get("auto.offset.reset", "")).lower() not in {"earliest", "smallest", "beginning"}:
        problems.append(f"auto.offset.reset must be 'earliest' (got {extra.get('auto.offset.reset')!r}): the sink "
                        "topics are written before they are read")  # fmt: skip
    if problems:
        raise VariableError(f"kafka_consumer_conn_id: connection '{conn_id}': " + "; ".join(problems))


class ValidateSettingsOperator(BaseOperator):
    """Read the scenario's Variable and the run conf, validate every key, and hand the run its settings.

    A bad value fails this first task, naming the key, the rule and where the value came from, before
    anything is created or submitted. Outputs (XCom keys): ``settings`` (:meth:`Settings.to_json`), ``tag``,
    ``kafka_conn_id``, ``consumer_conn_id``, ``topics`` (every topic of the scenario) and ``topic.<role>``.

    :param scenario: the scenario's name.
    """

    ui_color = "#fff7e6"

    def __init__(self, *, scenario: str, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.scenario = scenario

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate; see the class docstring."""
        from flink_lessons.settings import resolve_for_task

        scenario = SCENARIOS[self.scenario]
        settings = resolve_for_task(scenario.family, context)
        consumer = settings.values.get("kafka_consumer_conn_id")
        if consumer and any(sink.topic for sink in scenario.sinks):
            check_consumer_connection(consumer)
        data = settings.to_json()
        width = max(len(name) for name in data["values"])
        self.log.info("Settings of this run (Variable %s, run tag %s):", scenario.family.variable, settings.tag)
        for name, value in data["values"].items():
            shown = data["topics"][name.removeprefix("topics.")] if name.startswith("topics.") else value
            self.log.info("  %s = %s", name.ljust(width), shown)
        topics = {role: settings.topics[role] for role in scenario.topics()}
        return {"settings": data, "tag": settings.tag, "kafka_conn_id": settings["kafka_conn_id"],
                "consumer_conn_id": consumer, "topics": list(topics.values()),
                **{f"topic.{role}": name for role, name in topics.items()}}  # fmt: skip


class RenderSqlOperator(BaseOperator):
    """Render one scenario script with this run's settings, and note where its output will start.

    A setup task of its submit: clearing the submit task (a rerun from the UI) renders again, as the next
    attempt (the render task's try number). The print sink's identifier carries the attempt, and the end
    offsets of the script's sink topics are read now, before its jobs write: the checks then count only
    what this attempt produced. Outputs (XCom keys): ``sql``, ``print_identifier``, ``output_starts``.

    :param scenario: the scenario's name.
    :param variant: the script's name.
    :param settings: the settings task's ``settings`` output (templated).
    :param consumer_conn_id: the Kafka connection that reads the sink topics (templated).
    """

    template_fields: Sequence[str] = ("settings", "consumer_conn_id")
    template_fields_renderers = {"settings": "json"}  # noqa: RUF012 (Airflow's own convention)

    def __init__(self, *, scenario: str, variant: str, settings: Any, consumer_conn_id: Any = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(multiple_outputs=True, **kwargs)
        self.scenario = scenario
        self.variant = variant
        self.settings = settings
        self.consumer_conn_id = consumer_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Render; the ``too_many_slots`` failure check gets the cluster's slot count + 1 as parallelism."""
        from flink_lessons.operators.kafka import end_offsets
        from flink_lessons.scenarios import print_identifier, render

        scenario = SCENARIOS[self.scenario]
        variant = scenario.variant(self.variant)
        settings = Settings.from_json(self.settings)
        attempt = context["ti"].try_number
        overrides: dict[str, Any] = {}
        if self.variant == "too_many_slots":
            from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

            overrides["parallelism"] = int(FlinkRestHook().get_overview()["slots-total"]) + 1
        sql = render(scenario, variant, settings, attempt, **overrides)
        self.log.info("Rendered %s/%s (attempt %d):\n%s", self.scenario, variant.template, attempt, sql)
        topics = [settings.topics[sink.topic] for sink in variant.sinks if sink.topic]
        starts = end_offsets(self.consumer_conn_id, topics) if topics and self.consumer_conn_id else {}
        return {"sql": sql, "print_identifier": print_identifier(scenario, settings.tag, attempt),
                "output_starts": starts}  # fmt: skip


class ObservePrintOperator(BaseOperator):
    """Read this attempt's print-sink lines from the TaskManagers' stdout (Flink REST) into the task log.

    The print sink prefixes every line with its 'print-identifier', so only this attempt's lines are
    kept. Waits until the expected number of lines appeared (at most the ``observe_timeout`` setting),
    then a few seconds more to catch unexpected extra lines. The XCom is the rows without their prefix,
    e.g. ``+I[1, ALICE, 12.50, ...]``.

    :param scenario: the scenario's name.
    :param settings: the settings task's ``settings`` output (templated).
    :param print_identifier: the render task's ``print_identifier`` output (templated).
    """

    template_fields: Sequence[str] = ("settings", "print_identifier")

    def __init__(self, *, scenario: str, settings: Any, print_identifier: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.settings = settings
        self.print_identifier = print_identifier

    def execute(self, context: Context) -> list[str]:
        """Poll ``/taskmanagers`` and ``/taskmanagers/<id>/stdout``."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from flink_lessons.compare import load_expected

        scenario = SCENARIOS[self.scenario]
        settings = Settings.from_json(self.settings)
        expected = len(load_expected(scenario.expected_path(scenario.sinks[0], settings)))
        prefix = re.compile(rf"^{re.escape(self.print_identifier)}(:\d+)?> ")
        hook = FlinkRestHook()
        deadline = time.monotonic() + settings.duration("observe_timeout").seconds
        lines: list[tuple[str, str]] = []
        settle_until = None
        while time.monotonic() < deadline:
            lines = [(tm["id"], line) for tm in hook.list_taskmanagers()
                     for line in hook.get_taskmanager_stdout(tm["id"]).splitlines() if prefix.match(line)]  # fmt: skip
            if len(lines) >= expected:
                settle_until = settle_until or time.monotonic() + PRINT_SETTLE_SECONDS
                if time.monotonic() >= settle_until:
                    break
            time.sleep(1)
        self.log.info("Print sink output (%d lines, print-identifier %s):", len(lines), self.print_identifier)
        for tm_id, line in lines:
            self.log.info("  [TaskManager %s] %s", tm_id, line)
        if len(lines) < expected:
            self.log.warning("Expected %d lines, saw %d within observe_timeout", expected, len(lines))
        return [prefix.sub("", line) for _, line in lines]


class CompareOutputsOperator(BaseOperator):
    """Compare each sink's rows with its expected output; fail with a readable diff when any differ.

    The XCom is sink name -> rows, for the report.

    :param scenario: the scenario's name.
    :param settings: the settings task's ``settings`` output (templated).
    :param outputs: sink name -> its output (templated): a ConsumeFromTopicOperator's records, or the
        observe task's print lines.
    :param output_starts: the render task's ``output_starts`` (templated): records before them are an
        earlier attempt's.
    """

    template_fields: Sequence[str] = ("settings", "outputs", "output_starts")

    def __init__(self, *, scenario: str, settings: Any, outputs: Mapping[str, Any], output_starts: Any = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.scenario = scenario
        self.settings = settings
        self.outputs = dict(outputs)
        self.output_starts = output_starts

    def execute(self, context: Context) -> dict[str, Any]:
        """Compare every sink, then fail once listing every difference."""
        from flink_lessons.compare import (
            OutputMismatchError,
            assert_all_match,
            compare_rows,
            load_expected,
            rows_from_records,
        )
        from flink_lessons.operators.kafka import starts_of

        scenario = SCENARIOS[self.scenario]
        settings = Settings.from_json(self.settings)
        sinks = {sink.name: sink for sink in scenario.sinks}
        rows: dict[str, Any] = {}
        comparisons = []
        for name, output in self.outputs.items():
            sink = sinks[name]
            where = settings.topics[sink.topic] if sink.topic else "TaskManager stdout"
            if sink.kind == "print":
                rows[name] = list(output or [])
            else:
                rows[name] = rows_from_records(output or [], sink.kind, starts_of(self.output_starts, where))
            path = scenario.expected_path(sink, settings)
            shown = path.relative_to(scenario.folder.parent)
            self.log.info("Sink %s (%s): %d rows", name, where, len(rows[name]))
            for row in rows[name]:
                self.log.info("  %s", row if isinstance(row, str) else json.dumps(row))
            if not path.exists():
                self.log.warning("No expected output for these settings (%s does not exist): nothing to compare. "
                                 "To pin them, save the rows above as that file.", shown)  # fmt: skip
                continue
            comparison = compare_rows(rows[name], load_expected(path), f"sink '{name}' ({where}) vs {shown}")
            comparisons.append(comparison)
            self.log.info("%s", comparison.diff() if not comparison.ok else f"  matches {shown} exactly")
        hint = ""
        if settings["startup_mode"] != "earliest-offset":
            hint = f"startup_mode is {settings['startup_mode']}: the expected rows assume earliest-offset"
        try:
            assert_all_match(comparisons, hint)
        except OutputMismatchError as err:
            self.log.error("%s", err)
            raise
        return rows


class ReportOperator(BaseOperator):
    """Summarise the run: topics, rows per sink and the scenario's own accounting (checked).

    :param scenario: the scenario's name.
    :param settings: the settings task's ``settings`` output (templated).
    :param rows: the compare tasks' outputs (templated).
    """

    template_fields: Sequence[str] = ("settings", "rows")

    def __init__(self, *, scenario: str, settings: Any, rows: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.settings = settings
        self.rows = list(rows)

    def execute(self, context: Context) -> str:
        """Log and return the report."""
        from flink_lessons.fixtures import fixture_lines
        from flink_lessons.reports import report_lines

        scenario = SCENARIOS[self.scenario]
        rows: dict[str, Any] = {}
        for compared in self.rows:
            rows.update(compared or {})
        text = "\n".join(report_lines(scenario, Settings.from_json(self.settings), len(fixture_lines(scenario.fixture)),
                                      rows))  # fmt: skip
        self.log.info("Report:\n%s", text)
        return text
