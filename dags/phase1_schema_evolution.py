"""Airflow DAG, phase 1: schema evolution: new and missing fields, COALESCE defaults, ALTER TABLE ADD.

Scenario include/sql/phase1_schema_evolution: one script, two jobs (``<scenario>@schema_evolution.v1`` and
``.v2`` in the Flink UI), the second after ALTER TABLE ADD. Settings: Variable ``flink_phase1``.
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
from flink_lessons.scenarios import SCHEMA_EVOLUTION as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))
    render = RenderSqlOperator(task_id="render_schema_evolution", **script(SCENARIO, "schema_evolution", settings))
    submit = FlinkSqlGatewayOperator(task_id="submit_schema_evolution", sql=render.output["sql"])
    jobs = JobIdsOperator(task_id="jobs_schema_evolution", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running_schema_evolution", **STARTED).expand(job_id=jobs.output)
    finished = FlinkJobStateSensor.partial(task_id="wait_finished_schema_evolution", **FINISHED).expand(
        job_id=jobs.output
    )
    v1 = ConsumeFromTopicOperator(task_id="consume_v1", **sink(settings, "schema_v1"))
    v2 = ConsumeFromTopicOperator(task_id="consume_v2", **sink(settings, "schema_v2"))
    compare = CompareOutputsOperator(
        task_id="compare_schema_evolution", **compared(SCENARIO, settings, render, {"v1": v1, "v2": v2})
    )
    report = ReportOperator(task_id="report", **reported(SCENARIO, settings, compare))
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> render.as_setup() >> submit >> jobs >> running >> finished
    finished >> [v1, v2] >> compare >> report >> unfinished.as_teardown() >> cancel.as_teardown()
