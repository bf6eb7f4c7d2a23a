"""flink_deploy_pyflink: deploy one version of a PyFlink job and watch it until it is healthy.

Everything comes from the Variable ``flink_phase4_pyflink`` (run conf keys override it for one run; see
playbooks/rollback-retry.md, "First deployment"): the job and version, topics, window, checkpoints, restart
strategy and the health thresholds. Nothing is read at parse time.

Try it: ``airflow dags test flink_deploy_pyflink -c '{"version": "v1"}'``.
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import RunningJobsOperator
from flink_lessons.operators.kafka import CreateTopicsOperator
from flink_lessons.operators.pyflink import RecordLastGoodOperator, ResolvePyflinkOperator
from flink_lessons.operators.sensors import HealthGateSensor
from flink_lessons.phase4_dag import DAG_ARGS, GATE, SUBMIT, WAIT_RUNNING, program

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_deploy_pyflink", tags=["flink", "phase4", "pyflink"], doc_md=__doc__, **DAG_ARGS) as dag:
    resolved = ResolvePyflinkOperator(task_id="resolve_settings", purpose="deploy")
    check = RunningJobsOperator(
        task_id="check_not_running", job_name=resolved.output["base_name"], exclude=resolved.output["job_id"],
        refuse="Use flink_upgrade_with_rollback to change its version, or flink_recover_from_savepoint to replace it.",
    )
    topics = CreateTopicsOperator(task_id="ensure_topics", kafka_config_id=resolved.output["kafka_conn_id"],
                                  topics=resolved.output["topics"], enabled=resolved.output["create_topics"])
    submit = FlinkJobSubmitOperator(task_id="submit_job", **program(resolved, resolved), **SUBMIT)
    running = FlinkJobStateSensor(task_id="wait_running", job_id=submit.output, **WAIT_RUNNING)
    healthy = HealthGateSensor(task_id="health_gate", job_id=submit.output, thresholds=resolved.output["health"],
                               **GATE)
    record = RecordLastGoodOperator(task_id="record_last_good", job_name=resolved.output["base_name"],
                                    version=resolved.output["version"], job_id=submit.output)

    resolved >> check >> topics >> submit >> running >> healthy >> record
