"""flink_deploy_pyflink: submit one version of a PyFlink job and watch it until it is healthy.

Everything comes from the Variable ``flink_phase4_pyflink`` (run conf keys override it for one run; see
playbooks/rollback-retry.md for the keys): the job and version, topics, window, checkpoints, restart
strategy and the health thresholds. Nothing is read at parse time.

``resolve_settings`` validates the settings and runs the job's own argument parser (bad arguments fail here,
never in the JobManager); ``check_not_running`` refuses a second deployment of a job that already runs
(upgrade it with ``flink_upgrade_with_rollback`` instead); ``ensure_topics`` creates missing topics (one
partition each; ``create_topics: false`` turns it off); ``submit_job`` submits with a job id derived from
the DAG run, so a retry attaches to the job it already started; ``wait_running`` polls until every task
runs; ``health_gate`` waits for checkpoints and a period without restarts; ``record_last_good`` writes the
Variable ``flink_phase4_last_good__<job_name>``.

Try it: ``airflow dags test flink_deploy_pyflink -c '{"version": "v1"}'``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

# The DAG processor puts the dags folder on sys.path, a plain DagBag does not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from common import phase4

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

log = logging.getLogger("airflow.task")

with DAG(
    dag_id="flink_deploy_pyflink",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["flink", "phase4", "pyflink"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_settings(**context: Any) -> dict[str, Any]:
        """Validate the Variable (and run conf) and the version's arguments; decide the job id."""
        from airflow_flink_provider.protocol.job_ids import deterministic_job_id

        settings = phase4.settings_for_run(context)
        version = settings["version"]
        return {
            "settings": settings.to_json(),
            "version": version,
            "py_file": str(settings.py_file(version)),
            "program_args": settings.check_version(version),
            "flink_job_name": phase4.flink_job_name(settings.job_name, version),
            "python_jar": settings.python_jar,
            "job_id": deterministic_job_id(context["dag"].dag_id, context["run_id"], "deploy", version),
        }

    @task
    def check_not_running(settings: dict[str, Any], job_id: str) -> None:
        """Refuse to start a second copy of a job that already runs (this run's own job is fine)."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        name = phase4.PyflinkSettings.from_json(settings).job_name
        others = [job for job in phase4.running_jobs(FlinkRestHook().list_jobs(), name) if job["job_id"] != job_id]
        if others:
            listed = ", ".join(f"{job['name']} ({job['job_id']}, {job['state']})" for job in others)
            raise AirflowFailException(
                f"{name} already runs: {listed}. Use flink_upgrade_with_rollback to change its version, or "
                "flink_recover_from_savepoint to replace it."
            )

    @task
    def ensure_topics(settings: dict[str, Any]) -> list[str]:
        """Create the source and sink topics when missing (``create_topics``): a Flink source fails without one."""
        from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

        resolved = phase4.PyflinkSettings.from_json(settings)
        if not resolved["create_topics"]:
            log.info("create_topics is false: the topics must exist already")
            return []
        topics = [resolved["topics.source"], resolved["topics.sink"]]
        KafkaAdminClientHook(kafka_config_id=resolved["kafka_conn_id"]).create_topic([(t, 1, 1) for t in topics])
        return topics

    @task
    def health_gate(settings: dict[str, Any], job_id: str, **context: Any) -> dict[str, Any]:
        """Wait until the job has its checkpoints and runs without restarts; fail with its root cause if not."""
        return phase4.require_healthy(settings, job_id, "Job", log)

    @task
    def record_last_good(settings: dict[str, Any], version: str, job_id: str, **context: Any) -> None:
        """Remember this version as the last good one."""
        phase4.record_last_good(
            {
                "job_name": phase4.PyflinkSettings.from_json(settings).job_name,
                "version": version,
                "job_id": job_id,
                "savepoint": None,
                "restored_from": None,
                "dag_id": context["dag"].dag_id,
                "run_id": context["run_id"],
            }
        )

    resolved = resolve_settings()
    submit = FlinkJobSubmitOperator(
        task_id="submit_job",
        py_file=resolved["py_file"],
        program_args=resolved["program_args"],
        python_jar=resolved["python_jar"],
        job_name=resolved["flink_job_name"],
        job_id=resolved["job_id"],
        retries=3,
        retry_delay=timedelta(seconds=5),
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    wait_running = FlinkJobStateSensor(
        task_id="wait_running",
        job_id=resolved["job_id"],
        target_states=["RUNNING"],
        # Poke, not deferrable: the wait is seconds long, and `airflow dags test` runs triggers in a process
        # that cannot read connections stored in the metadata database.
        mode="poke",
        poke_interval=2,
        timeout=600,
    )
    check = check_not_running(resolved["settings"], resolved["job_id"])
    check >> ensure_topics(resolved["settings"]) >> submit >> wait_running
    gate = health_gate(resolved["settings"], resolved["job_id"])
    wait_running >> gate >> record_last_good(resolved["settings"], resolved["version"], resolved["job_id"])
