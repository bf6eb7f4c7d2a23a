"""flink_upgrade_with_rollback: the rollback/retry playbook (playbooks/rollback-retry.md) as DAG branches.

Upgrades the running version of a PyFlink job to the version in the Variable ``flink_phase4_pyflink``
(``version``; a run conf ``{"version": ...}`` overrides it), keeping its state through a savepoint. The
playbook's section "The upgrade, task by task" follows the graph below: stop with a savepoint (when that
fails, ask Flink for the old job's state: retry the stop while the job lives, abort and page when it is
gone), submit the new version from the savepoint, judge it with the health gate; healthy: take its own
savepoint and record it as the last good version; not: cancel it, restore the previous version from the same
savepoint, judge that too, and fail the run with the failed job's root cause. Flink is asked through provider
operators only (``FlinkJobStatusOperator`` for a job's state and root cause); the branches decide on their
XComs. Every submit has a job id derived from the run and its purpose, so a retry attaches to the job it
started. ``fault_injection: "savepoint_failure"`` drills the retry branch.

Try it: ``airflow dags test flink_upgrade_with_rollback -c '{"version": "v2"}'`` (success path) and
``-c '{"version": "broken"}'`` (rollback path).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, TriggerRule
from flink_lessons.operators.pyflink import FindRunningVersionOperator, RecordLastGoodOperator, ResolvePyflinkOperator
from flink_lessons.operators.sensors import HealthGateSensor
from flink_lessons.phase4_dag import DAG_ARGS, GATE, STATUS, SUBMIT, program
from flink_lessons.upgrade import (
    PARAMS,
    abort_and_page,
    check_health,
    check_stop,
    fail_upgrade,
    savepoint_ready,
    savepoint_taken,
)

from airflow_flink_provider.operators.job_status import FlinkJobStatusOperator
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import (
    FlinkCancelJobOperator,
    FlinkStopJobOperator,
    FlinkTriggerSavepointOperator,
)
from airflow_flink_provider.retry import FlinkRetryPolicy

with DAG(dag_id="flink_upgrade_with_rollback", params=PARAMS, tags=["flink", "phase4", "pyflink", "playbook"],
         doc_md=__doc__, **DAG_ARGS) as dag:  # fmt: skip
    resolved = ResolvePyflinkOperator(task_id="resolve_settings", purpose="upgrade", setting_params=list(PARAMS))
    running = FindRunningVersionOperator(task_id="find_running_job", settings=resolved.output["settings"])

    # Stop the old version with a savepoint; on failure, retry while it lives, or abort and page.
    stop = FlinkStopJobOperator(task_id="stop_with_savepoint", job_id=running.output["job_id"],
                                target_directory=resolved.output["first_stop_dir"], timeout=120)
    retry_stop = FlinkStopJobOperator(
        task_id="retry_stop_with_savepoint", job_id=running.output["job_id"],
        target_directory=resolved.output["savepoint_dir"], timeout=120, retries=3, retry_delay=dt.timedelta(seconds=5),
        retry_exponential_backoff=2.0, max_retry_delay=dt.timedelta(minutes=1), retry_policy=FlinkRetryPolicy(),
    )  # fmt: skip
    old_job = FlinkJobStatusOperator(task_id="old_job_status", job_id=running.output["job_id"],
                                     trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, **STATUS)  # fmt: skip
    after_stop = check_stop(stop.output, old_job.output)
    taken = savepoint_taken(stop.output)
    savepoint = savepoint_ready(taken, retry_stop.output)

    # Submit the new version from the savepoint and judge it.
    submit_new = FlinkJobSubmitOperator(task_id="submit_new_version", **program(resolved, resolved), **SUBMIT,
                                        savepoint_path=savepoint, allow_non_restored_state=False)
    gate = HealthGateSensor(task_id="health_gate", job_id=resolved.output["job_id"],
                            thresholds=resolved.output["health"], **GATE)
    after_gate = check_health(savepoint, gate.output)

    # Healthy: its own savepoint becomes the last good restore point.
    new_savepoint = FlinkTriggerSavepointOperator(task_id="savepoint_new_version", job_id=resolved.output["job_id"],
                                                  target_directory=resolved.output["savepoint_dir"], timeout=120,
                                                  retries=2, retry_policy=FlinkRetryPolicy())  # fmt: skip
    record = RecordLastGoodOperator(task_id="record_last_good", job_name=resolved.output["base_name"],
                                    version=resolved.output["version"], job_id=resolved.output["job_id"],
                                    savepoint=new_savepoint.output, restored_from=savepoint)  # fmt: skip

    # Not healthy: cancel it, restore the previous version from the same savepoint, judge that, fail the run.
    cancel = FlinkCancelJobOperator(task_id="cancel_new_version", job_id=resolved.output["job_id"], timeout=120)
    rollback = FlinkJobSubmitOperator(task_id="rollback_to_previous_version",
                                      **program(running, resolved, job_id="rollback_job_id"), **SUBMIT,
                                      savepoint_path=savepoint, allow_non_restored_state=False)  # fmt: skip
    verify = HealthGateSensor(task_id="verify_rollback", job_id=running.output["rollback_job_id"],
                              thresholds=resolved.output["health"], **GATE)
    new_job = FlinkJobStatusOperator(task_id="new_version_status", job_id=resolved.output["job_id"],
                                     trigger_rule=TriggerRule.NONE_SKIPPED, **STATUS)  # fmt: skip
    failed = fail_upgrade(resolved.output["version"], running.output["version"], resolved.output["job_id"],
                          new_job.output, verify.output)  # fmt: skip

    resolved >> running >> stop >> old_job >> after_stop >> [taken, retry_stop, abort_and_page(old_job.output)]
    running >> after_stop  # its one success when the stop and old_job_status both failed (Flink unreachable): retry
    savepoint >> submit_new >> gate >> after_gate
    after_gate >> new_savepoint >> record
    after_gate >> cancel >> [rollback, new_job]
    rollback >> verify >> failed
