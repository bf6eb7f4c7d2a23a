"""Airflow DAGs of phases 0 and 1: one DAG per SQL scenario of ``include/sql/``, every one with the same graph.

1. ``validate_settings`` (the Variable and the run conf, before anything else) >> ``create_topics`` >>
   ``produce_fixture`` (the scenario's ``input.jsonl`` to this run's input topic).
2. Per SQL script of the scenario (its variant): ``render_<variant>`` (a setup task: clearing the submit
   renders the next attempt) >> ``submit_<variant>`` (SQL Gateway) >> ``jobs_<variant>`` >>
   ``wait_running_<variant>`` (one deferrable wait per job) >> either ``wait_finished_<variant>`` >>
   ``consume_<sink>`` per Kafka sink (a bounded job), or ``observe_print_output`` (the print sink's lines in
   the TaskManagers' stdout: an unbounded job) >> ``compare_<variant>`` against the expected rows.
3. ``report``: the rows every compare found and the scenario's own accounting.
4. The clean-up, ``find_unfinished_jobs`` >> ``cancel_jobs``: teardown tasks that run after everything else,
   whatever failed, and cancel this run's jobs that are still alive. They do not decide the run's state.

``flink_phase1_failure_checks`` (the last DAG here) fails on purpose, three ways. The scripts, sinks and
expected rows come from :mod:`flink_lessons.scenarios`; nothing here does I/O at parse time.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.scenario import (
    CompareOutputsOperator,
    ObservePrintOperator,
    RenderSqlOperator,
    ReportOperator,
    ValidateSettingsOperator,
)
from flink_lessons.scenario_dag import (
    CANCEL,
    DAG_ARGS,
    FINISHED,
    STARTED,
    compared,
    fixture,
    reported,
    script,
    sink,
    topics,
)
from flink_lessons.scenarios import (
    DEDUP,
    EVENT_TIME_WATERMARKS,
    FAILURE_CHECKS,
    LATE_EVENTS,
    MALFORMED_JSON,
    PHASE0_PRINT,
    SCHEMA_EVOLUTION,
    Scenario,
)

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

# fmt: off
LESSONS: tuple[tuple[Scenario, str], ...] = (
    (PHASE0_PRINT, """Phase 0: Kafka -> Flink SQL -> print sink, observed through Flink's REST API.

The order fixture goes to Kafka, print.sql.j2 runs through the SQL Gateway, and once the job runs,
``observe_print_output`` reads this attempt's print-sink lines from the TaskManagers' stdout
(``/taskmanagers/<id>/stdout``) into its log; ``compare_print`` checks them against expected/print.txt. The
job is unbounded: the clean-up cancels it. Settings: Variable ``flink_phase0`` (docs/local-setup.md). Try
``airflow dags test flink_phase0_print``."""),
    (MALFORMED_JSON, """Phase 1: malformed JSON, dropped by json.ignore-parse-errors (a) or routed to a dead-letter
topic (b).

Two scripts, run side by side from the same fixture. ``report`` checks (b)'s books: clean rows + dead letters
= events produced. Settings: Variable ``flink_phase1``."""),
    (SCHEMA_EVOLUTION, """Phase 1: schema evolution: new and missing fields, COALESCE defaults, ALTER TABLE ADD.

One script, two jobs (``<scenario>@schema_evolution.v1`` and ``.v2`` in the Flink UI), the second after
ALTER TABLE ADD. Settings: Variable ``flink_phase1``."""),
    (EVENT_TIME_WATERMARKS, """Phase 1: event time from epoch and ISO timestamps, a watermark, tumbling and
hopping windows.

Edit ``window_size``, ``window_slide`` or ``watermark_delay`` in the Variable ``flink_phase1`` (or the run
conf) and the next run's windows follow; expected rows exist for the documented settings (see the scenario's
README)."""),
    (DEDUP, """Phase 1: ROW_NUMBER deduplication, keep-first (append) and keep-last (upsert).

The scenario's README explains the duplicates and what each sink keeps. The keep-last sink is an upsert
topic: ``compare_dedup`` compacts it by key before comparing, so the table's final state is checked, not its
changelog. Settings: Variable ``flink_phase1``; the expected rows depend on ``watermark_delay``."""),
    (LATE_EVENTS, """Phase 1: late events: which events a window drops for a watermark delay, captured to their
own topic.

``report`` checks that the events counted in windows plus the events captured as late add up to what was
produced. The expected rows depend on ``window_size`` and ``watermark_delay`` (Variable ``flink_phase1``)."""),
)
# fmt: on
"""Each scenario with a DAG of the common graph, and what its DAG shows users (above the graph's description)."""


def inputs(scenario: Scenario) -> tuple[ValidateSettingsOperator, ProduceToTopicOperator]:
    """Step 1: ``validate_settings`` >> ``create_topics`` >> ``produce_fixture``; the first and the last.

    :param scenario: the DAG's scenario.
    """
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=scenario.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(scenario, settings))
    settings >> create_topics >> produce
    return settings, produce


def clean_up(settings: ValidateSettingsOperator, after: Any) -> None:
    """Step 4: cancel this run's jobs that are still alive, once ``after`` is done, whatever failed.

    :param settings: the ``validate_settings`` task (its run tag names the run's jobs).
    :param after: the task(s) the clean-up follows.
    """
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)
    after >> unfinished.as_teardown() >> cancel.as_teardown()


for scenario, about in LESSONS:
    with DAG(dag_id=scenario.dag_id, tags=["flink", scenario.name.partition("_")[0]], doc_md=f"{about}\n\n{__doc__}",
             **DAG_ARGS):  # fmt: skip
        settings, produce = inputs(scenario)
        compares = []
        for variant in scenario.variants:
            name = variant.name
            render = RenderSqlOperator(task_id=f"render_{name}", **script(scenario, name, settings))
            submit = FlinkSqlGatewayOperator(task_id=f"submit_{name}", sql=render.output["sql"])
            jobs = JobIdsOperator(task_id=f"jobs_{name}", outcome=submit.output)
            running = FlinkJobStateSensor.partial(task_id=f"wait_running_{name}", **STARTED).expand(job_id=jobs.output)
            outputs: dict[str, Any]
            if variant.bounded:  # every row is in the Kafka sinks once the job has finished
                finished = FlinkJobStateSensor.partial(task_id=f"wait_finished_{name}", **FINISHED).expand(
                    job_id=jobs.output
                )
                outputs = {s.name: ConsumeFromTopicOperator(task_id=f"consume_{s.name}", **sink(settings, s.topic))
                           for s in variant.sinks}  # fmt: skip
                running >> finished >> list(outputs.values())
            else:  # the print job runs until cancelled: read this attempt's lines once it runs
                observe = ObservePrintOperator(task_id="observe_print_output", scenario=scenario.name,
                                               settings=settings.output["settings"],
                                               print_identifier=render.output["print_identifier"])  # fmt: skip
                running >> observe
                outputs = {"print": observe}
            compare = CompareOutputsOperator(task_id=f"compare_{name}",
                                             **compared(scenario, settings, render, outputs))  # fmt: skip
            produce >> render.as_setup() >> submit >> jobs >> running
            list(outputs.values()) >> compare
            compares.append(compare)
        report = ReportOperator(task_id="report", **reported(scenario, settings, *compares))
        compares >> report
        clean_up(settings, after=report)


with DAG(dag_id=FAILURE_CHECKS.dag_id, tags=["flink", "phase1", "failure-checks"], **DAG_ARGS,
         doc_md="""Phase 1 failure checks: three tasks fail on purpose, each with the error and hint a user should see.

- ``wait_finished_strict_json``: without 'json.ignore-parse-errors' the malformed second event fails the
  job; the log shows the JsonParseException (the message and the offending payload) and a hint.
- ``submit_too_many_slots``: a job whose parallelism is the cluster's slot count + 1 is refused before it is
  submitted, with "Not enough task slots" and a hint.
- ``submit_bad_sql``: a syntax error (a trailing comma before FROM) is reported with its script line and
  column, and the line itself.

A run of this DAG therefore ends ``failed``: read the three failed tasks' logs (docs/local-setup.md,
"Diagnosing failures", says what to look for). Steps 1 and 4 are those of the other scenarios' graph.
Settings: Variable ``flink_phase1``."""):  # fmt: skip
    settings, produce = inputs(FAILURE_CHECKS)

    # 1. A job that fails at run time: the wait fails with Flink's root cause and a hint.
    render_strict = RenderSqlOperator(task_id="render_strict_json", **script(FAILURE_CHECKS, "strict_json", settings))
    submit_strict = FlinkSqlGatewayOperator(task_id="submit_strict_json", sql=render_strict.output["sql"])
    jobs_strict = JobIdsOperator(task_id="jobs_strict_json", outcome=submit_strict.output)
    finished_strict = FlinkJobStateSensor.partial(task_id="wait_finished_strict_json", **FINISHED
                                                  ).expand(job_id=jobs_strict.output)  # fmt: skip
    # 2. A job the cluster cannot run: refused before submitting.
    render_slots = RenderSqlOperator(task_id="render_too_many_slots",
                                     **script(FAILURE_CHECKS, "too_many_slots", settings))  # fmt: skip
    submit_slots = FlinkSqlGatewayOperator(task_id="submit_too_many_slots", sql=render_slots.output["sql"])
    # 3. A script that does not parse: the error names the script's line and column.
    render_bad = RenderSqlOperator(task_id="render_bad_sql", **script(FAILURE_CHECKS, "bad_sql", settings))
    submit_bad = FlinkSqlGatewayOperator(task_id="submit_bad_sql", sql=render_bad.output["sql"])

    produce >> [render_strict.as_setup(), render_slots.as_setup(), render_bad.as_setup()]
    render_strict >> submit_strict >> jobs_strict >> finished_strict
    render_slots >> submit_slots
    render_bad >> submit_bad
    clean_up(settings, after=[finished_strict, submit_slots, submit_bad])
