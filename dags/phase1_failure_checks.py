"""Airflow DAG, phase 1 failure checks: three tasks fail on purpose, each with the error and hint a user should see.

- ``wait_finished_strict_json``: without 'json.ignore-parse-errors' the malformed second event fails the
  job; the log shows the JsonParseException (the message and the offending payload) and a hint.
- ``submit_too_many_slots``: a job whose parallelism is the cluster's slot count + 1 is refused before it is
  submitted, with "Not enough task slots" and a hint.
- ``submit_bad_sql``: a syntax error (a trailing comma before FROM) is reported with its script line and
  column, and the line itself.

A run of this DAG therefore ends ``failed``: read the three failed tasks' logs (docs/local-setup.md,
"Diagnosing failures", says what to look for). Settings: Variable ``flink_phase1``.
"""

from __future__ import annotations

from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.scenario import RenderSqlOperator, ValidateSettingsOperator
from flink_lessons.scenario_dag import CANCEL, DAG_ARGS, FINISHED, fixture, script, topics
from flink_lessons.scenarios import FAILURE_CHECKS as SCENARIO

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id=SCENARIO.dag_id, tags=["flink", "phase1", "failure-checks"], doc_md=__doc__, **DAG_ARGS) as dag:
    settings = ValidateSettingsOperator(task_id="validate_settings", scenario=SCENARIO.name)
    create_topics = CreateTopicsOperator(task_id="create_topics", **topics(settings))
    produce = ProduceToTopicOperator(task_id="produce_fixture", **fixture(SCENARIO, settings))

    # 1. A job that fails at run time: the wait fails with Flink's root cause and a hint.
    render_strict = RenderSqlOperator(task_id="render_strict_json", **script(SCENARIO, "strict_json", settings))
    submit_strict = FlinkSqlGatewayOperator(task_id="submit_strict_json", sql=render_strict.output["sql"])
    jobs_strict = JobIdsOperator(task_id="jobs_strict_json", outcome=submit_strict.output)
    finished_strict = FlinkJobStateSensor.partial(task_id="wait_finished_strict_json", **FINISHED
                                                  ).expand(job_id=jobs_strict.output)  # fmt: skip
    # 2. A job the cluster cannot run: refused before submitting.
    render_slots = RenderSqlOperator(task_id="render_too_many_slots", **script(SCENARIO, "too_many_slots", settings))
    submit_slots = FlinkSqlGatewayOperator(task_id="submit_too_many_slots", sql=render_slots.output["sql"])
    # 3. A script that does not parse: the error names the script's line and column.
    render_bad = RenderSqlOperator(task_id="render_bad_sql", **script(SCENARIO, "bad_sql", settings))
    submit_bad = FlinkSqlGatewayOperator(task_id="submit_bad_sql", sql=render_bad.output["sql"])

    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=settings.output["tag"])
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", **CANCEL).expand(job_id=unfinished.output)

    settings >> create_topics >> produce >> [render_strict.as_setup(), render_slots.as_setup(), render_bad.as_setup()]
    render_strict >> submit_strict >> jobs_strict >> finished_strict
    render_slots >> submit_slots
    render_bad >> submit_bad
    [finished_strict, submit_slots, submit_bad] >> unfinished.as_teardown() >> cancel.as_teardown()
