"""flink_recover_from_savepoint: the manual runbook. Restore a chosen version of a PyFlink job from a chosen
savepoint or from a job's latest retained checkpoint.

Trigger it from the UI ("Trigger DAG" shows the form; every param may stay empty) or ``airflow dags test
flink_recover_from_savepoint -c '{"restore_from": "latest_checkpoint", "checkpoint_of_job": "<job id>"}'``.
Params: ``version`` (empty: the last good version, Variable ``flink_phase4_last_good__<job_name>``),
``restore_from`` (``last_good_savepoint``, ``savepoint`` with ``savepoint_path``, or ``latest_checkpoint``
of ``checkpoint_of_job``, empty: the last good job), ``if_running`` (``fail``, ``stop_with_savepoint`` or
``cancel`` a job of the same name that still runs). The job's other settings come from the Variable
``flink_phase4_pyflink``. See playbooks/rollback-retry.md, "Recovery runbook".
"""

from __future__ import annotations

from airflow.sdk import DAG
from flink_lessons.operators.jobs import RunningJobsOperator
from flink_lessons.operators.pyflink import FindRestorePointOperator, RecordLastGoodOperator, ResolvePyflinkOperator
from flink_lessons.operators.sensors import HealthGateSensor
from flink_lessons.phase4_dag import DAG_ARGS, GATE, SUBMIT, WAIT_RUNNING, program
from flink_lessons.recovery import PARAMS, clear_running_jobs

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator, FlinkStopJobOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

with DAG(dag_id="flink_recover_from_savepoint", params=PARAMS, tags=["flink", "phase4", "pyflink", "runbook"],
         doc_md=__doc__, **DAG_ARGS) as dag:  # fmt: skip
    resolved = ResolvePyflinkOperator(task_id="resolve_recovery", purpose="recover",
                                      version="{{ params.version or '' }}", param_names=list(PARAMS))
    restore_point = FindRestorePointOperator(
        task_id="find_restore_point", restore_from="{{ params.restore_from }}",
        savepoint_path="{{ params.savepoint_path or '' }}", checkpoint_of_job="{{ params.checkpoint_of_job or '' }}",
        last_good=resolved.output["last_good"], settings=resolved.output["settings"],
    )  # fmt: skip
    running = RunningJobsOperator(task_id="find_running_jobs", job_name=resolved.output["base_name"],
                                  exclude=resolved.output["job_id"])
    clear = clear_running_jobs(running.output, "{{ params.if_running }}")
    stop = FlinkStopJobOperator.partial(task_id="stop_running_jobs", target_directory=resolved.output["savepoint_dir"]
                                        ).expand(job_id=running.output)
    cancel = FlinkCancelJobOperator.partial(task_id="cancel_running_jobs").expand(job_id=running.output)
    submit = FlinkJobSubmitOperator(task_id="submit_restored", **program(resolved, resolved), **SUBMIT,
                                    savepoint_path=restore_point.output["location"], allow_non_restored_state=False,
                                    trigger_rule="none_failed_min_one_success")  # fmt: skip
    wait_running = FlinkJobStateSensor(task_id="wait_running", job_id=submit.output, **WAIT_RUNNING)
    healthy = HealthGateSensor(task_id="health_gate", job_id=submit.output, thresholds=resolved.output["health"],
                               **GATE)
    record = RecordLastGoodOperator(task_id="record_last_good", job_name=resolved.output["base_name"],
                                    version=resolved.output["version"], job_id=submit.output,
                                    savepoint=restore_point.output["savepoint"],
                                    restored_from=restore_point.output["location"])  # fmt: skip

    resolved >> restore_point >> running >> clear >> [stop, cancel, submit]
    [stop, cancel] >> submit >> wait_running >> healthy >> record
