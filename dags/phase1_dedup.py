"""Airflow DAG, phase 1: ROW_NUMBER deduplication, keep-first (append) and keep-last (upsert).

Scenario include/sql/phase1_dedup (its README explains the duplicates and what each sink keeps). The
keep-last sink is an upsert topic: ``compare_dedup`` compacts it by key before comparing, so the table's
final state is checked, not its changelog. Settings: Variable ``flink_phase1``; the expected rows depend on
``watermark_delay``.
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
from flink_lessons.scenarios import DEDUP as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))
    render = RenderSqlOperator(task_id="render_dedup", **script(SCENARIO, "dedup", settings))
    submit = FlinkSqlGatewayOperator(task_id="submit_dedup", sql=render.output["sql"])
    jobs = JobIdsOperator(task_id="jobs_dedup", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running_dedup", **STARTED).expand(job_id=jobs.output)
    finished = FlinkJobStateSensor.partial(task_id="wait_finished_dedup", **FINISHED).expand(job_id=jobs.output)
    first = ConsumeFromTopicOperator(task_id="consume_first", **sink(settings, "dedup_first"))
    last = ConsumeFromTopicOperator(task_id="consume_last", **sink(settings, "dedup_last"))
    compare = CompareOutputsOperator(
        task_id="compare_dedup", **compared(SCENARIO, settings, render, {"first": first, "last": last})
    )
    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare))
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> render.as_setup() >> submit >> jobs >> running >> finished
    finished >> [first, last] >> compare >> report >> unfinished.as_teardown() >> cancel.as_teardown()
