"""Airflow DAG, phase 1: event time from epoch and ISO timestamps, a watermark, tumbling and hopping windows.

Scenario include/sql/phase1_event_time_watermarks. Edit ``window_size``, ``window_slide`` or
``watermark_delay`` in the Variable ``flink_phase1`` (or the run conf) and the next run's windows follow;
expected rows exist for the documented settings (see the scenario's README).
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
from flink_lessons.scenarios import EVENT_TIME_WATERMARKS as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))
    render = RenderSqlOperator(task_id="render_windows", **script(SCENARIO, "windows", settings))
    submit = FlinkSqlGatewayOperator(task_id="submit_windows", sql=render.output["sql"])
    jobs = JobIdsOperator(task_id="jobs_windows", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running_windows", **STARTED).expand(job_id=jobs.output)
    finished = FlinkJobStateSensor.partial(task_id="wait_finished_windows", **FINISHED).expand(job_id=jobs.output)
    tumble = ConsumeFromTopicOperator(task_id="consume_tumble", **sink(settings, "event_time_tumble"))
    hop = ConsumeFromTopicOperator(task_id="consume_hop", **sink(settings, "event_time_hop"))
    compare = CompareOutputsOperator(
        task_id="compare_windows", **compared(SCENARIO, settings, render, {"tumble": tumble, "hop": hop})
    )
    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare))
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> render.as_setup() >> submit >> jobs >> running >> finished
    finished >> [tumble, hop] >> compare >> report >> unfinished.as_teardown() >> cancel.as_teardown()
