"""flink_deploy_sql: submit a phase 0/1 SQL scenario (include/sql) through the SQL Gateway and watch its jobs.

Which scenario and script, what to wait for and how many restarts to tolerate come from the Variable
``flink_phase4_sql`` (run conf keys override it for one run). The scenario's own settings (topics, window
size and slide, watermark delay, parallelism) come from its Variable (``flink_phase1``), overridden by
``flink_phase4_sql.settings``: change a window there and the next run uses it. Nothing is read at parse time.

``wait_for: FINISHED`` (the bounded phase 1 scripts) waits until every job finished; ``RUNNING`` (streaming
scripts) until every job runs healthy, and the jobs keep running after the run succeeded. When anything
failed, the clean-up (teardown tasks) cancels this run's jobs; the run stays failed. See
playbooks/rollback-retry.md, "SQL scenarios".

Try it: ``airflow dags test flink_deploy_sql -c '{"settings": {"window_size": "20s", "window_slide": "10s"}}'``.
"""

from __future__ import annotations

from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator
from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.sensors import HealthGateSensor, TimedJobStateSensor
from flink_lessons.operators.sql_deploy import ResolveSqlDeployOperator, choose_wait, report
from flink_lessons.phase4_dag import DAG_ARGS, SUBMIT, WAIT_STARTED

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_deploy_sql", tags=["flink", "phase4", "sql"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ResolveSqlDeployOperator(task_id="resolve_settings")
    topics = CreateTopicsOperator(task_id="create_topics", kafka_config_id=resolved.output["kafka_conn_id"],
                                  topics=resolved.output["topics"])
    produce = ProduceToTopicOperator(
        task_id="produce_fixture", kafka_config_id=resolved.output["kafka_conn_id"],
        topic=resolved.output["input_topic"], producer_function="flink_lessons.fixtures.fixture_messages",
        producer_function_kwargs=resolved.output["fixture"], synchronous=False,
    )  # fmt: skip
    submit = FlinkSqlGatewayOperator(task_id="submit_sql", sql=resolved.output["sql"], **SUBMIT)
    jobs = JobIdsOperator(task_id="job_ids", outcome=submit.output)
    running = FlinkJobStateSensor.partial(task_id="wait_running", **WAIT_STARTED).expand(job_id=jobs.output)
    which = choose_wait(resolved.output["wait_for"])
    finished = TimedJobStateSensor.partial(task_id="wait_finished", target_states=["FINISHED"], deferrable=True,
                                           poke_interval=2, wait_timeout=resolved.output["timeout"]
                                           ).expand(job_id=jobs.output)  # fmt: skip
    healthy = HealthGateSensor.partial(task_id="watch_running", thresholds=resolved.output["health"], deferrable=True
                                       ).expand(job_id=jobs.output)  # fmt: skip
    reported = report(jobs.output, resolved.output["topics"], resolved.output["wait_for"])
    unfinished = FindUnfinishedJobsOperator(task_id="find_unfinished_jobs", tag=resolved.output["tag"],
                                            keep_if=reported)
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=unfinished.output)

    resolved >> topics >> produce >> submit >> jobs >> running >> which >> [finished, healthy] >> reported
    reported >> unfinished.as_teardown() >> cancel.as_teardown()
