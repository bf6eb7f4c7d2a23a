"""flink_recover_from_savepoint: the manual runbook. Restore a chosen version of a PyFlink job from a chosen
savepoint or from a job's latest retained checkpoint.

Trigger it from the UI ("Trigger DAG" shows the form) or ``airflow dags test flink_recover_from_savepoint
-c '{"restore_from": "latest_checkpoint", "checkpoint_of_job": "<job id>"}'``. Params:

- ``version``: the version to start; empty: the last good version (Variable
  ``flink_phase4_last_good__<job_name>``).
- ``restore_from``: ``last_good_savepoint`` (the savepoint recorded with the last good version),
  ``savepoint`` (``savepoint_path``) or ``latest_checkpoint`` (of ``checkpoint_of_job``; empty: the last
  good job). Checkpoints are retained on cancel (the jobs set RETAIN_ON_CANCELLATION).
- ``if_running``: what to do with a job of the same name that still runs: ``fail`` (default),
  ``stop_with_savepoint`` (its savepoint is logged) or ``cancel``.

The job's other settings (topics, windows, checkpoints, health thresholds) come from the Variable
``flink_phase4_pyflink``. Tasks: ``resolve_recovery`` -> ``find_restore_point`` -> ``clear_running_job`` ->
``submit_restored`` -> ``wait_running`` -> ``health_gate`` -> ``record_last_good``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

# The DAG processor puts the dags folder on sys.path, a plain DagBag does not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from common import phase4

from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

PARAMS = {
    "version": Param("", type="string", description="Version to start; empty: the last good version."),
    "restore_from": Param(
        "last_good_savepoint",
        enum=["last_good_savepoint", "savepoint", "latest_checkpoint"],
        description="Where the state comes from.",
    ),
    "savepoint_path": Param("", type="string", description="For restore_from=savepoint: the savepoint's path."),
    "checkpoint_of_job": Param(
        "", type="string", description="For restore_from=latest_checkpoint: the job id; empty: the last good job."
    ),
    "if_running": Param(
        "fail",
        enum=["fail", "stop_with_savepoint", "cancel"],
        description="A job of the same name still runs: fail, stop it with a savepoint, or cancel it.",
    ),
}

log = logging.getLogger("airflow.task")

with DAG(
    dag_id="flink_recover_from_savepoint",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["flink", "phase4", "pyflink", "runbook"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def resolve_recovery(**context: Any) -> dict[str, Any]:
        """Validate the settings and params; pick the version; decide the job id."""
        from airflow_flink_provider.protocol.job_ids import deterministic_job_id

        params = context["params"]
        settings = phase4.settings_for_run(context, params=list(PARAMS))
        last_good = phase4.read_json_variable(phase4.last_good_variable(settings.job_name)) or {}
        version = params["version"] or last_good.get("version")
        if not version:
            raise AirflowFailException(
                f"No version given and no last good record for {settings.job_name}: set the 'version' param"
            )
        return {
            "settings": settings.to_json(),
            "version": version,
            "py_file": str(settings.py_file(version)),
            "program_args": settings.check_version(version),
            "flink_job_name": phase4.flink_job_name(settings.job_name, version),
            "python_jar": settings.python_jar,
            "job_id": deterministic_job_id(context["dag"].dag_id, context["run_id"], "recover", version),
            "last_good": last_good,
        }

    @task
    def find_restore_point(settings: dict[str, Any], last_good: dict[str, Any], **context: Any) -> str:
        """The savepoint or retained checkpoint to restore, checked to exist."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from airflow_flink_provider.protocol.errors import FlinkNotFoundError

        params = context["params"]
        choice = params["restore_from"]
        if choice == "savepoint":
            if not params["savepoint_path"]:
                raise AirflowFailException("restore_from=savepoint needs the savepoint_path param")
            return phase4.check_snapshot(params["savepoint_path"])
        if choice == "last_good_savepoint":
            if not last_good.get("savepoint"):
                raise AirflowFailException(f"The last good record has no savepoint: {last_good or 'none'}")
            return phase4.check_snapshot(last_good["savepoint"])
        job_id = params["checkpoint_of_job"] or last_good.get("job_id")
        if not job_id:
            raise AirflowFailException("restore_from=latest_checkpoint needs checkpoint_of_job (no last good job)")
        hook = FlinkRestHook()
        try:
            location = hook.get_latest_checkpoint_path(job_id)
        except FlinkNotFoundError:
            location = None
        if location is None:
            resolved = phase4.PyflinkSettings.from_json(settings)
            storage = resolved["checkpoint.dir"] or hook.get_jobmanager_config().get("execution.checkpointing.dir")
            log.info("Flink has no checkpoint of job %s on record; looking in %s", job_id, storage)
            location = phase4.latest_retained_checkpoint(storage, job_id) if storage else None
        if location is None:
            raise AirflowFailException(f"No completed checkpoint of job {job_id} was found")
        log.info("Latest checkpoint of job %s: %s", job_id, location)
        return phase4.check_snapshot(location)

    @task
    def clear_running_job(settings: dict[str, Any], job_id: str, **context: Any) -> str | None:
        """Make room: a job of the same name must not run next to the restored one."""
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        params = context["params"]
        hook = FlinkRestHook()
        name = phase4.PyflinkSettings.from_json(settings).job_name
        running = [job for job in phase4.running_jobs(hook.list_jobs(), name) if job["job_id"] != job_id]
        if not running:
            return None
        listed = ", ".join(f"{job['name']} ({job['job_id']}, {job['state']})" for job in running)
        if params["if_running"] == "fail":
            raise AirflowFailException(f"{listed} still runs: set if_running to stop_with_savepoint or cancel")
        saved = None
        for job in running:
            if params["if_running"] == "stop_with_savepoint":
                saved = hook.stop_with_savepoint(
                    job["job_id"], phase4.PyflinkSettings.from_json(settings)["savepoint_dir"]
                )
                log.warning("Stopped %s (%s); its savepoint: %s", job["name"], job["job_id"], saved)
            else:
                phase4.ensure_stopped(hook, job["job_id"], log)
        return saved

    @task
    def health_gate(settings: dict[str, Any], job_id: str, **context: Any) -> dict[str, Any]:
        """The restored job must have its checkpoints and run without restarts."""
        return phase4.require_healthy(settings, job_id, "Restored job", log)

    @task
    def record_last_good(
        settings: dict[str, Any], version: str, job_id: str, restored_from: str, **context: Any
    ) -> None:
        """The restored version is running and healthy: it is the last good one."""
        savepoint = restored_from if context["params"]["restore_from"] != "latest_checkpoint" else None
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

    resolved = resolve_recovery()
    restore_point = find_restore_point(resolved["settings"], resolved["last_good"])
    cleared = clear_running_job(resolved["settings"], resolved["job_id"])
    submit = FlinkJobSubmitOperator(
        task_id="submit_restored",
        py_file=resolved["py_file"],
        program_args=resolved["program_args"],
        python_jar=resolved["python_jar"],
        job_name=resolved["flink_job_name"],
        job_id=resolved["job_id"],
        savepoint_path=restore_point,
        allow_non_restored_state=False,
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
    restore_point >> cleared >> submit >> wait_running
    gate = health_gate(resolved["settings"], resolved["job_id"])
    record = record_last_good(resolved["settings"], resolved["version"], resolved["job_id"], restore_point)
    wait_running >> gate >> record
