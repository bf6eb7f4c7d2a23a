"""Airflow DAG, phase 1: malformed JSON, dropped by json.ignore-parse-errors (a) or routed to a dead-letter topic (b).

Scenario include/sql/phase1_malformed_json: two scripts, run side by side from the same fixture. ``report``
checks (b)'s books: clean rows + dead letters = events produced. Settings: Variable ``flink_phase1``.
"""

from __future__ import annotations

from airflow.providers.apache.kafka.operators.consume import ConsumeFromTopicOperator
from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.scenario import (
    CompareOutputsOperator,
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
from flink_lessons.scenarios import MALFORMED_JSON as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))

    # 1. Drop what does not parse: 'json.ignore-parse-errors' = 'true'.
    render_ignore = RenderSqlOperator(task_id="render_ignore_parse_errors",
                                      **script(SCENARIO, "ignore_parse_errors", settings))  # fmt: skip
    submit_ignore = FlinkSqlGatewayOperator(task_id="submit_ignore_parse_errors", sql=render_ignore.output["sql"])
    jobs_ignore = JobIdsOperator(task_id="jobs_ignore_parse_errors", outcome=submit_ignore.output)
    ignore_jobs = {"job_id": jobs_ignore.output}
    running_ignore = FlinkJobStateSensor.partial(task_id="wait_running_ignore_parse_errors", **STARTED).expand(
        **ignore_jobs
    )
    finished_ignore = FlinkJobStateSensor.partial(task_id="wait_finished_ignore_parse_errors", **FINISHED).expand(
        **ignore_jobs
    )
    parsed = ConsumeFromTopicOperator(task_id="consume_parsed", **sink(settings, "malformed_parsed"))
    compare_ignore = CompareOutputsOperator(
        task_id="compare_ignore_parse_errors", **compared(SCENARIO, settings, render_ignore, {"parsed": parsed})
    )

    # 2. Route what does not parse to a dead-letter topic: read the value as raw bytes, parse in SQL.
    render_dlq = RenderSqlOperator(task_id="render_dead_letter", **script(SCENARIO, "dead_letter", settings))
    submit_dlq = FlinkSqlGatewayOperator(task_id="submit_dead_letter", sql=render_dlq.output["sql"])
    jobs_dlq = JobIdsOperator(task_id="jobs_dead_letter", outcome=submit_dlq.output)
    running_dlq = FlinkJobStateSensor.partial(task_id="wait_running_dead_letter", **STARTED).expand(
        job_id=jobs_dlq.output
    )
    finished_dlq = FlinkJobStateSensor.partial(task_id="wait_finished_dead_letter", **FINISHED).expand(
        job_id=jobs_dlq.output
    )
    clean = ConsumeFromTopicOperator(task_id="consume_clean", **sink(settings, "malformed_clean"))
    dlq = ConsumeFromTopicOperator(task_id="consume_dlq", **sink(settings, "malformed_dlq"))
    compare_dlq = CompareOutputsOperator(
        task_id="compare_dead_letter", **compared(SCENARIO, settings, render_dlq, {"clean": clean, "dlq": dlq})
    )

    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare_ignore, compare_dlq))
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> [render_ignore.as_setup(), render_dlq.as_setup()]
    render_ignore >> submit_ignore >> jobs_ignore >> running_ignore >> finished_ignore >> parsed >> compare_ignore
    render_dlq >> submit_dlq >> jobs_dlq >> running_dlq >> finished_dlq >> [clean, dlq] >> compare_dlq
    [compare_ignore, compare_dlq] >> report >> unfinished.as_teardown() >> cancel.as_teardown()
