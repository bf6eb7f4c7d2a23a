"""Airflow DAG, phase 1: late events: which events a window drops for a watermark delay, captured to their own topic.

Scenario include/sql/phase1_late_events. ``report`` checks that the events counted in windows plus the
events captured as late add up to what was produced. The expected rows depend on ``window_size`` and
``watermark_delay`` (Variable ``flink_phase1``).
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
from flink_lessons.scenarios import LATE_EVENTS as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))
    render = RenderSqlOperator(task_id="render_late_events", **script(SCENARIO, "late_events", settings))
    submit = FlinkSqlGatewayOperator(task_id="submit_late_events", sql=render.output["sql"])
    jobs = JobIdsOperator(task_id="jobs_late_events", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running_late_events", **STARTED).expand(job_id=jobs.output)
    finished = FlinkJobStateSensor.partial(task_id="wait_finished_late_events", **FINISHED).expand(job_id=jobs.output)
    windows = ConsumeFromTopicOperator(task_id="consume_windows", **sink(settings, "late_windows"))
    late = ConsumeFromTopicOperator(task_id="consume_late", **sink(settings, "late_events"))
    compare = CompareOutputsOperator(
        task_id="compare_late_events", **compared(SCENARIO, settings, render, {"windows": windows, "late": late})
    )
    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare))
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> render.as_setup() >> submit >> jobs >> running >> finished
    finished >> [windows, late] >> compare >> report >> unfinished.as_teardown() >> cancel.as_teardown()
