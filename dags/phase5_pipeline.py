"""Phase 5: Kafka orders -> Flink enrichment and windows -> Iceberg (catalog ``lakehouse``).

One streaming job (``phase5_lakehouse@pipeline#<run tag>``) reads order deliveries and product versions from
Kafka, keeps on-time orders once, prices each with the product version valid at its event time (an
event-time temporal join on the compacted products topic), and writes four Iceberg tables: orders_enriched,
category_windows (tumbling windows), customer_totals (upsert) and late_orders. Exactly once: Iceberg commits
each checkpoint's files when the checkpoint completes. The run replays the seeded dataset into topics of its
own; with ``bounded`` (the default) the job stops at the dataset's last offsets and the run waits for it to
finish, then publishes the tables as Assets, which schedules flink_phase5_acceptance.

Settings: Variable ``flink_phase5`` (docs/architecture.md). The rules: include/sql/phase5_lakehouse/README.md.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import FindUnfinishedJobsOperator, JobIdsOperator
from flink_lessons.phase5.operators import (
    ASSETS,
    DAG_ARGS,
    DatasetTopicsOperator,
    ProduceDatasetOperator,
    PublishTablesOperator,
    ValidatePipelineOperator,
    setting_gate,
)

from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.health import FlinkJobHealthSensor
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_phase5_pipeline", schedule=None, doc_md=__doc__, **DAG_ARGS):
    settings = ValidatePipelineOperator(task_id="validate_settings")
    run = {
        "params_json": settings.output["params"],
        "dataset": settings.output["dataset"],
        "kafka_conn_id": settings.output["kafka_conn_id"],
    }
    topics = DatasetTopicsOperator(task_id="create_topics", **run)
    reset = setting_gate("reset_requested", settings.output["reset"])
    drop = FlinkSqlGatewayOperator(task_id="drop_tables", sql=settings.output["teardown_sql"])
    create = FlinkSqlGatewayOperator(
        task_id="create_tables", sql=settings.output["setup_sql"], trigger_rule="none_failed"
    )
    deploy = FlinkSqlGatewayOperator(
        task_id="deploy_pipeline",
        sql=settings.output["pipeline_sql"],
        wait_for="RUNNING",
        wait_timeout=300,
        poll_interval=2,
    )
    jobs = JobIdsOperator(task_id="job_ids", outcome=deploy.output)
    # Healthy: every task running, one completed checkpoint, 5 s without a restart; then the data comes.
    health = FlinkJobHealthSensor.partial(
        task_id="health_gate", min_checkpoints=1, stable_for=5, max_restarts=0, poke_interval=2, timeout=300
    ).expand(job_id=jobs.output)
    produce = ProduceDatasetOperator(task_id="produce_dataset", **run)
    bounded = setting_gate("bounded_run", settings.output["bounded"])
    finished = FlinkJobStateSensor.partial(
        task_id="wait_finished", target_states=("FINISHED",), poke_interval=5, timeout=3600, deferrable=True
    ).expand(job_id=jobs.output)
    publish = PublishTablesOperator(
        task_id="publish_tables", outlets=list(ASSETS.values()), trigger_rule="none_failed", **run
    )
    alive = FindUnfinishedJobsOperator(
        task_id="find_unfinished_jobs", tag=settings.output["tag"], keep_if=publish.output
    )
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_jobs", timeout=60).expand(job_id=alive.output)

    settings >> topics >> reset >> drop >> create
    topics >> create >> deploy >> jobs >> health >> produce >> bounded >> finished >> publish
    produce >> publish
    publish >> alive.as_teardown() >> cancel.as_teardown()
