"""The scenario DAGs' own small steps, as operators: validate the settings, create topics, render SQL,
list jobs, observe the print sink, compare, report, find this run's unfinished jobs.

Plain operators rather than TaskFlow functions: importing Airflow's decorator machinery costs more than
all of this module, and the DAG files must parse fast. Everything expensive (hooks, Jinja, files) is
imported or read inside ``execute``, at run time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from common.scenarios import SCENARIOS, ScenarioCheckError, render
from common.variables import FAMILIES, Settings, VariableError, load_variable, resolve, run_tag

if TYPE_CHECKING:
    from airflow.sdk import Context

VALIDATE_TASK = "validate_settings"
"""The first task of every scenario DAG; its XCom is the run's settings (:meth:`Settings.to_json`)."""
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})
PRINT_SETTLE_SECONDS = 3
"""After the expected print lines appeared, how long to keep watching for unexpected extra lines."""


def run_settings(context: Context) -> Settings:
    """This run's validated settings, from the validate task's XCom.

    :param context: the task context.
    """
    return Settings.from_json(context["ti"].xcom_pull(task_ids=VALIDATE_TASK))


def _connection_extra(conn_id: str) -> dict[str, Any]:
    from airflow.sdk import BaseHook

    return dict(BaseHook.get_connection(conn_id).extra_dejson)


def check_consumer_connection(conn_id: str) -> None:
    """Fail early when the consumer connection cannot read the sink topics from their start.

    :param conn_id: the ``kafka_consumer_conn_id`` setting.
    :raises VariableError: naming the connection and what it lacks.
    """
    try:
        extra = _connection_extra(conn_id)
    except Exception as err:
        raise VariableError(
            f"kafka_consumer_conn_id: connection '{conn_id}' cannot be read ({err}); create it as shown in "
            "docs/local-setup.md (group.id, auto.offset.reset=earliest)"
        ) from None
    problems = []
    if not extra.get("bootstrap.servers"):
        problems.append("bootstrap.servers is missing")
    if not extra.get("group.id"):
        problems.append("group.id is missing")
    if str(extra.get("auto.offset.reset", "")).lower() not in {"earliest", "smallest", "beginning"}:
        problems.append(
            f"auto.offset.reset must be 'earliest' (got {extra.get('auto.offset.reset')!r}): the sink topics "
            "are written before they are read"
        )
    if problems:
        raise VariableError(f"kafka_consumer_conn_id: connection '{conn_id}': " + "; ".join(problems))


class ValidateSettingsOperator(BaseOperator):
    """Read the family's Variable and the run conf, validate every key, return this run's settings (XCom).

    A bad value fails this first task, naming the key and the rule, before anything is created or submitted.

    :param family: the Variable's name (``flink_phase0`` or ``flink_phase1``).
    :param consumes: the DAG reads sink topics, so the consumer connection is checked too.
    """

    ui_color = "#fff7e6"

    def __init__(self, *, family: str, consumes: bool = True, **kwargs: Any) -> None:
        super().__init__(task_id=VALIDATE_TASK, **kwargs)
        self.family = family
        self.consumes = consumes

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate; see the class docstring."""
        family = FAMILIES[self.family]
        dag_run = context["dag_run"]
        settings = resolve(
            family,
            load_variable(family.variable),
            dag_run.conf or {},
            tag=run_tag(dag_run.dag_id, dag_run.run_id),
            connection_bootstrap=lambda conn_id: _connection_extra(conn_id).get("bootstrap.servers"),
        )
        if self.consumes and "kafka_consumer_conn_id" in settings.values:
            check_consumer_connection(settings.values["kafka_consumer_conn_id"])
        data = settings.to_json()
        width = max(len(name) for name in data["values"])
        self.log.info("Settings of this run (Variable %s, run tag %s):", family.variable, settings.tag)
        for name, value in data["values"].items():
            shown = data["topics"][name.removeprefix("topics.")] if name.startswith("topics.") else value
            self.log.info("  %s = %s", name.ljust(width), shown)
        return data


class CreateTopicsOperator(BaseOperator):
    """Create this run's topics with one partition each (a scenario's order of events depends on it).

    :param scenario: the scenario's name.
    """

    def __init__(self, *, scenario: str, **kwargs: Any) -> None:
        super().__init__(task_id="create_topics", **kwargs)
        self.scenario = scenario

    def execute(self, context: Context) -> list[str]:
        """Create the topics through the Kafka provider's admin hook."""
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        settings = run_settings(context)
        names = [settings.topics[role] for role in SCENARIOS[self.scenario].topics()]
        KafkaAdminClientHook(kafka_config_id=settings.values["kafka_conn_id"]).create_topic([(n, 1, 1) for n in names])
        return names


class RenderSqlOperator(BaseOperator):
    """Render one scenario script with this run's settings; the SQL is the XCom.

    :param scenario: the scenario's name.
    :param variant: the script's name.
    """

    template_fields_renderers = {"sql": "sql"}  # noqa: RUF012 (Airflow's own convention)

    def __init__(self, *, scenario: str, variant: str, **kwargs: Any) -> None:
        super().__init__(task_id=f"render_{variant}", **kwargs)
        self.scenario = scenario
        self.variant = variant

    def execute(self, context: Context) -> str:
        """Render; the ``too_many_slots`` failure check gets the cluster's slot count + 1 as parallelism."""
        scenario = SCENARIOS[self.scenario]
        overrides: dict[str, Any] = {}
        if self.variant == "too_many_slots":
            from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

            overrides["parallelism"] = int(FlinkRestHook().get_overview()["slots-total"]) + 1
        sql = render(scenario, scenario.variant(self.variant), run_settings(context), **overrides)
        self.log.info("Rendered %s/%s:\n%s", self.scenario, scenario.variant(self.variant).template, sql)
        return sql


class JobIdsOperator(BaseOperator):
    """The ids of the jobs a script submitted, as a list to map the job-state sensors over.

    :param submit_task_id: the FlinkSqlGatewayOperator's task id.
    """

    def __init__(self, *, submit_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submit_task_id = submit_task_id

    def execute(self, context: Context) -> list[str]:
        """Pick ``job_ids`` out of the operator's XCom."""
        outcome = context["ti"].xcom_pull(task_ids=self.submit_task_id)
        return list(outcome["job_ids"])


class ObservePrintOperator(BaseOperator):
    """Read this run's print-sink lines from the TaskManagers' stdout (Flink REST) into the task log.

    The print sink prefixes every line with its 'print-identifier' (the scenario and the run tag), so only
    this run's lines are kept. Waits until the expected number of lines appeared (at most the
    ``observe_timeout`` setting), then a few seconds more to catch unexpected extra lines. The XCom is the
    rows without their prefix, e.g. ``+I[1, ALICE, 12.50, ...]``.

    :param scenario: the scenario's name.
    """

    def __init__(self, *, scenario: str, **kwargs: Any) -> None:
        super().__init__(task_id="observe_print_output", **kwargs)
        self.scenario = scenario

    def execute(self, context: Context) -> list[str]:
        """Poll ``/taskmanagers`` and ``/taskmanagers/<id>/stdout``."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from common.compare import load_expected

        scenario = SCENARIOS[self.scenario]
        settings = run_settings(context)
        expected = len(load_expected(scenario.expected_path(scenario.sinks[0], settings)))
        identifier = f"{scenario.name}-{settings.tag}"
        prefix = re.compile(rf"^{re.escape(identifier)}(:\d+)?> ")
        hook = FlinkRestHook()
        deadline = time.monotonic() + settings.duration("observe_timeout").ms / 1000
        lines: list[tuple[str, str]] = []
        settle_until = None
        while time.monotonic() < deadline:
            lines = [
                (tm["id"], line)
                for tm in hook.list_taskmanagers()
                for line in hook.get_taskmanager_stdout(tm["id"]).splitlines()
                if prefix.match(line)
            ]
            if len(lines) >= expected:
                settle_until = settle_until or time.monotonic() + PRINT_SETTLE_SECONDS
                if time.monotonic() >= settle_until:
                    break
            time.sleep(1)
        self.log.info("Print sink output of this run (%d lines, print-identifier %s):", len(lines), identifier)
        for tm_id, line in lines:
            self.log.info("  [TaskManager %s] %s", tm_id, line)
        if len(lines) < expected:
            self.log.warning("Expected %d lines, saw %d within observe_timeout", expected, len(lines))
        return [prefix.sub("", line) for _, line in lines]


class CompareOutputsOperator(BaseOperator):
    """Compare each sink's rows with its expected output; fail with a readable diff when any differ.

    The XCom is sink name -> rows, for the report.

    :param scenario: the scenario's name.
    :param sources: sink name -> the task whose XCom holds its output (ConsumeFromTopicOperator's records,
        or the observe task's print lines).
    """

    def __init__(self, *, scenario: str, sources: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.sources = dict(sources)

    def execute(self, context: Context) -> dict[str, Any]:
        """Compare every sink, then fail once listing every difference."""
        from common.compare import OutputMismatchError, assert_all_match, compare_rows, load_expected, rows_from_records

        scenario = SCENARIOS[self.scenario]
        settings = run_settings(context)
        sinks = {sink.name: sink for sink in scenario.sinks}
        rows: dict[str, Any] = {}
        comparisons = []
        for name, task_id in self.sources.items():
            sink = sinks[name]
            consumed = context["ti"].xcom_pull(task_ids=task_id) or []
            rows[name] = list(consumed) if sink.kind == "print" else rows_from_records(consumed, sink.kind)
            where = settings.topics[sink.topic] if sink.topic else "TaskManager stdout"
            path = scenario.expected_path(sink, settings)
            shown = path.relative_to(scenario.folder.parent)
            self.log.info("Sink %s (%s): %d rows", name, where, len(rows[name]))
            for row in rows[name]:
                self.log.info("  %s", row if isinstance(row, str) else json.dumps(row))
            if not path.exists():
                self.log.warning(
                    "No expected output for these settings (%s does not exist): nothing to compare. To pin "
                    "them, save the rows above as that file.", shown
                )  # fmt: skip
                continue
            comparison = compare_rows(rows[name], load_expected(path), f"sink '{name}' ({where}) vs {shown}")
            comparisons.append(comparison)
            self.log.info("%s", comparison.diff() if not comparison.ok else f"  matches {shown} exactly")
        hint = ""
        if settings.values["startup_mode"] != "earliest-offset":
            hint = f"startup_mode is {settings.values['startup_mode']}: the expected rows assume earliest-offset"
        try:
            assert_all_match(comparisons, hint)
        except OutputMismatchError as err:
            self.log.error("%s", err)
            raise
        return rows


class ReportOperator(BaseOperator):
    """Summarise the run: topics, rows per sink and the scenario's own accounting (checked).

    :param scenario: the scenario's name.
    :param compare_task_ids: the compare tasks.
    """

    def __init__(self, *, scenario: str, compare_task_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(task_id="report", **kwargs)
        self.scenario = scenario
        self.compare_task_ids = list(compare_task_ids)

    def execute(self, context: Context) -> str:
        """Log and return the report."""
        from common.fixtures import fixture_lines

        scenario = SCENARIOS[self.scenario]
        settings = run_settings(context)
        rows: dict[str, Any] = {}
        for task_id in self.compare_task_ids:
            rows.update(context["ti"].xcom_pull(task_ids=task_id) or {})
        produced = len(fixture_lines(scenario.fixture))
        lines = [f"{scenario.dag_id}, run tag {settings.tag}: {produced} events produced to "
                 f"{settings.topics[scenario.input_topic]}"]  # fmt: skip
        for sink in scenario.sinks:
            where = settings.topics[sink.topic] if sink.topic else "TaskManager stdout"
            lines.append(f"  {sink.name:<8} {len(rows.get(sink.name, [])):>3} rows  {where}")
        if scenario.summary is not None:
            try:
                lines += [f"  {line}" for line in scenario.summary(produced, rows)]
            except ScenarioCheckError:
                self.log.error("%s", "\n".join(lines))
                raise
        text = "\n".join(lines)
        self.log.info("Report:\n%s", text)
        return text


class FindUnfinishedJobsOperator(BaseOperator):
    """This run's Flink jobs (their names end with the run tag) that are still alive, whatever failed.

    A teardown task (see :func:`common.pipeline.cleanup`): it runs after everything else, whatever failed.
    The XCom is the list the cancel task maps over.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(task_id="find_unfinished_jobs", **kwargs)

    def execute(self, context: Context) -> list[str]:
        """List jobs over Flink's REST API and keep this run's live ones."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        data = context["ti"].xcom_pull(task_ids=VALIDATE_TASK)
        if not data:
            self.log.info("The settings were not validated: nothing was submitted")
            return []
        pattern = re.compile(rf"\.{data['tag']}(\.|$)")
        alive = [
            job["jid"]
            for job in FlinkRestHook().list_jobs()
            if pattern.search(job.get("name", "")) and job.get("state") not in TERMINAL_STATES
        ]
        self.log.info("Jobs of this run still alive: %s", alive or "none")
        return alive
