"""flink_upgrade_with_rollback: the rollback/retry playbook (playbooks/rollback-retry.md) as DAG branches.

Upgrades the running version of a PyFlink job to the version in the Variable ``flink_phase4_pyflink``
(``version``; a run conf ``{"version": ...}`` overrides it), keeping its state through a savepoint:

1. ``resolve_settings``: validate the Variable and the target version's arguments.
2. ``find_running_job``: the one running ``<job_name>@<version>`` job; its version is the rollback target.
3. ``stop_with_savepoint``: stop it with a savepoint. ``check_stop`` branches on the outcome:
   ``savepoint_taken``; ``retry_stop_with_savepoint`` for a transient failure (REST unreachable, savepoint
   failed or timed out while the job still runs: bounded retries with exponential backoff); or
   ``abort_and_page`` when the old job is gone (nothing to upgrade from: page someone).
4. ``submit_new_version`` from that savepoint (``savepoint_ready`` hands it over).
5. ``health_gate``: RUNNING with all tasks, at least N checkpoints, no restart for M seconds (``health.*``).
   ``check_health`` branches:
6. healthy: ``savepoint_new_version`` then ``record_last_good`` (Variable
   ``flink_phase4_last_good__<job_name>``).
7. unhealthy (or the submit failed): ``cancel_new_version``, ``rollback_to_previous_version`` from the same
   savepoint, ``verify_rollback`` (the same health gate), and ``fail_upgrade`` fails the run with the failed
   version's root cause.

Every submit uses a job id derived from the DAG run and its purpose, so a retry attaches to the job it
started instead of starting another. ``fault_injection: "savepoint_failure"`` drills the retry branch.

Try it: ``airflow dags test flink_upgrade_with_rollback -c '{"version": "v2"}'`` (success path) and
``-c '{"version": "broken"}'`` (rollback path).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

# The DAG processor puts the dags folder on sys.path, a plain DagBag does not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from common import phase4

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.savepoint import FlinkStopJobOperator, FlinkTriggerSavepointOperator

log = logging.getLogger("airflow.task")

with DAG(
    dag_id="flink_upgrade_with_rollback",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["flink", "phase4", "pyflink", "playbook"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_settings(**context: Any) -> dict[str, Any]:
        """Validate the settings and the target version's arguments; decide the new job's id."""
        from airflow_flink_provider.protocol.job_ids import deterministic_job_id

        settings = phase4.settings_for_run(context)
        target = settings["version"]
        fault = settings["fault_injection"] == "savepoint_failure"
        if fault:
            log.warning("fault_injection=savepoint_failure: the first stop-with-savepoint will fail")
        return {
            "settings": settings.to_json(),
            "target_version": target,
            "target_py_file": str(settings.py_file(target)),
            "target_args": settings.check_version(target),
            "target_job_name": phase4.flink_job_name(settings.job_name, target),
            "new_job_id": deterministic_job_id(context["dag"].dag_id, context["run_id"], "upgrade", target),
            "python_jar": settings.python_jar,
            "savepoint_dir": settings["savepoint_dir"],
            "first_stop_dir": phase4.FAULT_SAVEPOINT_DIR if fault else settings["savepoint_dir"],
        }

    @task(multiple_outputs=True)
    def find_running_job(settings: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The one running job of this name; its version is what a rollback restores."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from airflow_flink_provider.protocol.job_ids import deterministic_job_id

        resolved = phase4.PyflinkSettings.from_json(settings)
        running = phase4.running_jobs(FlinkRestHook().list_jobs(), resolved.job_name)
        if not running:
            raise AirflowFailException(
                f"No running job named {resolved.job_name}{phase4.NAME_SEPARATOR}<version>: nothing to upgrade. "
                "Deploy it with flink_deploy_pyflink first."
            )
        if len(running) > 1:
            listed = ", ".join(f"{job['name']} ({job['job_id']})" for job in running)
            raise AirflowFailException(f"Several jobs named {resolved.job_name}@... run: {listed}. Stop the extras.")
        job = running[0]
        if job["state"] != "RUNNING" or job["version"] is None:
            raise AirflowFailException(f"{job['name']} ({job['job_id']}) is {job['state']}: not upgrading it now")
        last_good = phase4.read_json_variable(phase4.last_good_variable(resolved.job_name))
        if not last_good or last_good.get("version") != job["version"]:
            log.warning(
                "The last good record (%s) is not the running version %s: the rollback target is the running "
                "version, whose savepoint this upgrade takes",
                last_good,
                job["version"],
            )
        return {
            "job_id": job["job_id"],
            "version": job["version"],
            "py_file": str(resolved.py_file(job["version"])),
            "program_args": resolved.check_version(job["version"]),
            "flink_job_name": job["name"],
            "rollback_job_id": deterministic_job_id(
                context["dag"].dag_id, context["run_id"], "rollback", job["version"]
            ),
        }

    @task.branch(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
    def check_stop(old_job_id: str, **context: Any) -> str:
        """Where to go after the stop: on, retry (transient failure), or abort and page (old job gone)."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from airflow_flink_provider.protocol.errors import FlinkConnectionError, FlinkTimeoutError

        ti = context["ti"]
        if ti.xcom_pull(task_ids="stop_with_savepoint"):
            return "savepoint_taken"
        try:
            job = FlinkRestHook().find_job(old_job_id)
        except (FlinkConnectionError, FlinkTimeoutError) as err:
            log.warning("Flink REST API unreachable (%s): transient, retrying the stop", err)
            return "retry_stop_with_savepoint"
        state = job["state"] if job else "UNKNOWN (Flink does not know the job)"
        if state in ("RUNNING", "FINISHED"):
            log.warning("The stop failed but job %s is %s: transient, retrying the stop", old_job_id, state)
            return "retry_stop_with_savepoint"
        ti.xcom_push(key="problem", value=f"the job to upgrade ({old_job_id}) is {state}")
        return "abort_and_page"

    @task
    def abort_and_page(**context: Any) -> None:
        """The job to upgrade is not running any more: nothing was submitted; a person must look."""
        problem = context["ti"].xcom_pull(task_ids="check_stop", key="problem")
        raise AirflowFailException(
            f"Upgrade aborted before submitting anything: {problem}. Page the owner: inspect the job's exceptions "
            "and restore it with flink_recover_from_savepoint (playbooks/rollback-retry.md, 'Stop and page')."
        )

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def savepoint_ready(**context: Any) -> str:
        """The savepoint the new version (and a rollback) restores from."""
        ti = context["ti"]
        location = ti.xcom_pull(task_ids="stop_with_savepoint") or ti.xcom_pull(task_ids="retry_stop_with_savepoint")
        if not location:
            raise AirflowFailException("No savepoint from stop_with_savepoint or retry_stop_with_savepoint")
        log.info("Restoring from savepoint %s", location)
        return phase4.normalize_location(str(location))

    @task
    def health_gate(settings: dict[str, Any], job_id: str, **context: Any) -> dict[str, Any]:
        """Judge the new version; the verdict goes to XCom also when it fails."""
        return phase4.require_healthy(settings, job_id, "New version's job", log, context["ti"])

    @task.branch(trigger_rule=TriggerRule.NONE_SKIPPED)
    def check_health(**context: Any) -> list[str]:
        """Keep the new version if the gate passed; otherwise roll back (fail if no savepoint was ever taken)."""
        ti = context["ti"]
        if not ti.xcom_pull(task_ids="savepoint_ready"):
            raise AirflowFailException(
                "No savepoint was taken (retry_stop_with_savepoint failed), so nothing was submitted: the old job "
                "was not stopped by this run. See retry_stop_with_savepoint's log."
            )
        verdict = ti.xcom_pull(task_ids="health_gate", key="verdict")
        return ["savepoint_new_version"] if verdict and verdict["healthy"] else ["cancel_new_version"]

    @task
    def record_last_good(
        settings: dict[str, Any], version: str, job_id: str, savepoint: str, restored_from: str, **context: Any
    ) -> None:
        """The new version is good: remember it and its own savepoint."""
        phase4.record_last_good(
            {
                "job_name": phase4.PyflinkSettings.from_json(settings).job_name,
                "version": version,
                "job_id": job_id,
                "savepoint": savepoint,
                "restored_from": restored_from,
                "dag_id": context["dag"].dag_id,
                "run_id": context["run_id"],
            }
        )

    @task
    def cancel_new_version(job_id: str, **context: Any) -> str | None:
        """Make sure the failed version does not run (it may never have started, or be FAILED already)."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return phase4.ensure_stopped(FlinkRestHook(), job_id, log)

    @task
    def verify_rollback(settings: dict[str, Any], job_id: str, **context: Any) -> dict[str, Any]:
        """The restored previous version must pass the same health gate."""
        return phase4.require_healthy(settings, job_id, "The rolled back job", log, context["ti"])

    @task(trigger_rule=TriggerRule.NONE_SKIPPED)
    def fail_upgrade(target: str, previous: str, new_job_id: str, **context: Any) -> None:
        """Fail the run loudly: why the upgrade failed, and where the rollback stands."""
        ti = context["ti"]
        verdict = ti.xcom_pull(task_ids="health_gate", key="verdict") or {}
        rollback = ti.xcom_pull(task_ids="verify_rollback", key="verdict") or {}
        why = verdict.get("reason") or "submit_new_version failed (see its log)"
        cause = (verdict.get("root_cause") or "none recorded in the job's exception history").rstrip(".")
        if rollback.get("healthy"):
            status = f"rolled back to {previous} (job {rollback['job_id']}), which is healthy: {rollback['reason']}"
        else:
            reason = rollback.get("reason", "see the rollback tasks")
            status = f"the rollback to {previous} did NOT complete ({reason}): page"
        raise AirflowFailException(
            f"Upgrade to {target} failed (job {new_job_id}): {why}. Root cause: {cause}. Then {status}."
        )

    resolved = resolve_settings()
    running = find_running_job(resolved["settings"])
    stop = FlinkStopJobOperator(
        task_id="stop_with_savepoint",
        job_id=running["job_id"],
        target_directory=resolved["first_stop_dir"],
        timeout=120,
    )
    retry_stop = FlinkStopJobOperator(
        task_id="retry_stop_with_savepoint",
        job_id=running["job_id"],
        target_directory=resolved["savepoint_dir"],
        timeout=120,
        retries=3,
        retry_delay=timedelta(seconds=5),
        retry_exponential_backoff=2.0,
        max_retry_delay=timedelta(minutes=1),
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    branch = check_stop(running["job_id"])
    taken = EmptyOperator(task_id="savepoint_taken")
    stop >> branch >> [taken, retry_stop, abort_and_page()]
    savepoint = savepoint_ready()
    [taken, retry_stop] >> savepoint

    submit_new = FlinkJobSubmitOperator(
        task_id="submit_new_version",
        py_file=resolved["target_py_file"],
        program_args=resolved["target_args"],
        python_jar=resolved["python_jar"],
        job_name=resolved["target_job_name"],
        job_id=resolved["new_job_id"],
        savepoint_path=savepoint,
        allow_non_restored_state=False,
        retries=2,
        retry_delay=timedelta(seconds=5),
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    gate = health_gate(resolved["settings"], resolved["new_job_id"])
    decide = check_health()
    submit_new >> gate >> decide

    new_savepoint = FlinkTriggerSavepointOperator(
        task_id="savepoint_new_version",
        job_id=resolved["new_job_id"],
        target_directory=resolved["savepoint_dir"],
        timeout=120,
        retries=2,
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    record = record_last_good(
        resolved["settings"], resolved["target_version"], resolved["new_job_id"], new_savepoint.output, savepoint
    )
    decide >> new_savepoint >> record

    cancel = cancel_new_version(resolved["new_job_id"])
    rollback = FlinkJobSubmitOperator(
        task_id="rollback_to_previous_version",
        py_file=running["py_file"],
        program_args=running["program_args"],
        python_jar=resolved["python_jar"],
        job_name=running["flink_job_name"],
        job_id=running["rollback_job_id"],
        savepoint_path=savepoint,
        allow_non_restored_state=False,
        retries=2,
        retry_delay=timedelta(seconds=5),
        retry_policy=phase4.FlinkRetryPolicy(),
    )
    verify = verify_rollback(resolved["settings"], running["rollback_job_id"])
    decide >> cancel >> rollback >> verify
    verify >> fail_upgrade(resolved["target_version"], running["version"], resolved["new_job_id"])
