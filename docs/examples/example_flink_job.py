"""Example DAG of the reference docs: a jar job's life cycle through the REST API.

Submit a streaming jar job (parallelism 1, checkpoints every second), wait until it is healthy, take a
savepoint, stop it with a savepoint; a teardown task cancels it whatever happened before. The jar is a run
parameter: ``airflow dags test example_flink_job -c '{"jar": "/path/to/job.jar", "entry_class": "Main"}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import (
    FlinkCancelJobOperator,
    FlinkStopJobOperator,
    FlinkTriggerSavepointOperator,
)
from airflow_flink_provider.sensors.health import FlinkJobHealthSensor

with DAG(
    dag_id="example_flink_job",
    schedule=None,  # manual runs only (Airflow 3: no start date or catchup needed)
    tags=["example", "flink"],
    params={
        "jar": Param("/opt/flink/usrlib/job.jar", type="string", description="the job's jar, on the worker"),
        "entry_class": Param("ThrottledSequenceJob", type="string", description="the jar's main class"),
    },
) as dag:
    # [START howto_operator_flink_job_submit]
    submit = FlinkJobSubmitOperator(
        task_id="submit",
        jar="{{ params.jar }}",
        entry_class="{{ params.entry_class }}",
        program_args=["example_flink_job {{ run_id }}", "10"],
        job_name="example_flink_job {{ run_id }}",
        parallelism=1,
        flink_configuration={"execution.checkpointing.interval": "1 s"},
        wait_for_running=True,
        wait_timeout=300,
        poll_interval=1,
    )
    # [END howto_operator_flink_job_submit]

    # [START howto_sensor_flink_job_health]
    healthy = FlinkJobHealthSensor(
        task_id="healthy",
        job_id=submit.output,
        min_checkpoints=1,
        stable_for=2,
        max_restarts=0,
        poke_interval=1,
        timeout=300,
    )
    # [END howto_sensor_flink_job_health]

    # [START howto_operator_flink_trigger_savepoint]
    savepoint = FlinkTriggerSavepointOperator(
        task_id="savepoint",
        job_id=submit.output,
        format_type="CANONICAL",
        timeout=300,
    )
    # [END howto_operator_flink_trigger_savepoint]

    # [START howto_operator_flink_stop_job]
    stop = FlinkStopJobOperator(task_id="stop_with_savepoint", job_id=submit.output, drain=False, timeout=300)
    # [END howto_operator_flink_stop_job]

    # [START howto_operator_flink_cancel_job]
    cancel = FlinkCancelJobOperator(task_id="cancel", job_id=submit.output, timeout=120).as_teardown(setups=submit)
    # [END howto_operator_flink_cancel_job]

    submit >> healthy >> savepoint >> stop >> cancel
