"""The steps of the phase 4 PyFlink DAGs that are the lessons' own: resolve what to run, find the running
version and the snapshot to restore, record the last good version. Flink itself is driven by the provider's
operators and sensors, which these steps feed through their outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from flink_lessons import last_good, pyflink
from flink_lessons.settings import Settings, VariableError

if TYPE_CHECKING:
    from airflow.sdk import Context

FAULT_SAVEPOINT_DIR = "file:///proc/flink-phase4-fault-injection"
"""Where the first stop-with-savepoint writes under ``fault_injection = savepoint_failure``: a directory no one
can create, so the savepoint fails, the job keeps running and the upgrade takes its retry branch."""


def version_outputs(settings: Settings, version: str, job_id: str) -> dict[str, Any]:
    """What the submit operator needs to run one version: program, arguments (checked), names, job id.

    :param settings: the run's settings.
    :param version: the version.
    :param job_id: the job id to submit it under.
    """
    return {"version": version, "py_file": str(pyflink.program(settings, version)),
            "program_args": pyflink.validated_args(settings, version), "job_name": pyflink.job_name(settings, version),
            "job_id": job_id}  # fmt: skip


def settings_in_conf(conf: Mapping[str, Any] | None, param_names: Sequence[str],
                     setting_params: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """The run conf's settings: without the params that are not settings, nor the blank ones that are.

    :param conf: the DAG run's conf (the Trigger form sends every param, blank ones as ``null``).
    :param param_names: params that are not settings.
    :param setting_params: params that are settings: blank (``null`` or ``""``), the Variable's value stands.
    """
    return {key: value for key, value in (conf or {}).items()
            if key not in param_names and not (key in setting_params and value in (None, ""))}  # fmt: skip


class ResolvePyflinkOperator(BaseOperator):
    """Validate ``flink_phase4_pyflink`` (and the run conf), pick the version, check its arguments, fix its job id.

    The version is the ``version`` argument when given (a param), else the setting ``version``; for
    ``purpose="recover"`` an empty one means the last good version. Outputs (XCom keys): ``settings``,
    ``version``, ``py_file``, ``program_args``, ``job_name`` (``<job_name>@<version>``), ``job_id`` (derived
    from the DAG run and the purpose: a retry attaches to the job it started), ``python_jar``,
    ``savepoint_dir``, ``first_stop_dir``, ``kafka_conn_id``, ``topics``, ``create_topics``, ``health`` (the
    health gate's thresholds), ``base_name`` (``<job_name>``) and ``last_good``.

    :param purpose: ``deploy``, ``upgrade`` or ``recover``.
    :param version: a version chosen for this run (templated); empty: see above.
    :param param_names: names of the DAG's params, which are run conf keys but not settings.
    :param setting_params: names of the DAG's params that are settings too: given, they override the Variable
        as a run conf key does; empty (the Trigger form's blank field), the Variable's value stands.
    """

    template_fields: Sequence[str] = ("version",)
    ui_color = "#fff7e6"

    def __init__(self, *, purpose: str, version: Any = None, param_names: Sequence[str] = (),
                 setting_params: Sequence[str] = (), **kwargs: Any) -> None:  # fmt: skip
        super().__init__(multiple_outputs=True, **kwargs)
        self.purpose = purpose
        self.version = version
        self.param_names = tuple(param_names)
        self.setting_params = tuple(setting_params)

    def execute(self, context: Context) -> dict[str, Any]:
        """Resolve; see the class docstring."""
        from airflow_flink_provider.protocol.job_ids import deterministic_job_id
        from flink_lessons.families import PYFLINK
        from flink_lessons.settings import connection_bootstrap, layers, resolve

        dag_run = context["dag_run"]
        conf = settings_in_conf(dag_run.conf, self.param_names, self.setting_params)
        settings = resolve(PYFLINK, *layers(PYFLINK.variable, conf),
                           connection_bootstrap=connection_bootstrap)  # fmt: skip
        good = last_good.read(settings["job_name"])
        version = self.version or (good.version if self.purpose == "recover" and good else None)
        if self.purpose == "recover" and not version:
            raise VariableError(f"version: no version given and no last good record of {settings['job_name']}")
        version = pyflink.check_version(settings["job"], version or settings["version"])
        fault = settings["fault_injection"] == "savepoint_failure"
        if fault:
            self.log.warning("fault_injection=savepoint_failure: the first stop-with-savepoint will fail")
        health = {key.removeprefix("health."): (value.seconds if hasattr(value, "seconds") else value)
                  for key, value in settings.values.items() if key.startswith("health.")}  # fmt: skip
        job_id = deterministic_job_id(dag_run.dag_id, dag_run.run_id, self.purpose, version)
        return {
            **version_outputs(settings, version, job_id),
            "settings": settings.to_json(),
            "python_jar": pyflink.stack_python_jar(settings["python_jar"]),
            "savepoint_dir": settings["savepoint_dir"],
            "first_stop_dir": FAULT_SAVEPOINT_DIR if fault else settings["savepoint_dir"],
            "kafka_conn_id": settings["kafka_conn_id"],
            "topics": [settings["topics.source"], settings["topics.sink"]],
            "create_topics": settings["create_topics"],
            "health": health,
            "base_name": settings["job_name"],
            "last_good": good.to_json() if good else None,
        }


class FindRunningVersionOperator(BaseOperator):
    """The one running version of a PyFlink job: what the upgrade stops, and what a rollback restores.

    Fails (nothing touched) when no job, several jobs, or a job that is not RUNNING is found. Outputs (XCom
    keys): ``job_id`` (the running job), ``version``, and for a rollback to it: ``py_file``,
    ``program_args``, ``job_name``, ``rollback_job_id``.

    :param settings: the resolve task's ``settings`` output (templated).
    """

    template_fields: Sequence[str] = ("settings",)

    def __init__(self, *, settings: Any, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.settings = settings

    def execute(self, context: Context) -> dict[str, Any]:
        """Find it; see the class docstring."""
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_flink_provider.protocol.job_ids import deterministic_job_id
        from flink_lessons.operators.jobs import describe, live_jobs

        settings = Settings.from_json(self.settings)
        name = settings["job_name"]
        running = live_jobs(job=name)
        if not running:
            raise AirflowFailException(f"No running job named {name}@<version>: nothing to upgrade. Deploy it with "
                                       "flink_deploy_pyflink first.")  # fmt: skip
        if len(running) > 1:
            listed = ", ".join(describe(job) for job in running)
            raise AirflowFailException(f"Several jobs named {name}@... run: {listed}. Stop the extras.")
        (job,) = running
        if job["state"] != "RUNNING":
            raise AirflowFailException(f"{describe(job)} is not RUNNING: not upgrading it now")
        good = last_good.read(name)
        if good is None or good.version != job["version"]:
            self.log.warning("The last good record (%s) is not the running version %s: the rollback target is the "
                             "running version, whose savepoint this upgrade takes", good, job["version"])  # fmt: skip
        dag_run = context["dag_run"]
        rollback_id = deterministic_job_id(dag_run.dag_id, dag_run.run_id, "rollback", job["version"])
        rollback = version_outputs(settings, job["version"], rollback_id)
        return {"job_id": job["jid"], "version": job["version"], "py_file": rollback["py_file"],
                "program_args": rollback["program_args"], "job_name": rollback["job_name"],
                "rollback_job_id": rollback_id}  # fmt: skip


class FindRestorePointOperator(BaseOperator):
    """The savepoint or retained checkpoint to restore, checked to exist (a local one needs its ``_metadata``).

    :param restore_from: ``last_good_savepoint``, ``savepoint`` or ``latest_checkpoint`` (templated).
    :param savepoint_path: for ``savepoint`` (templated).
    :param checkpoint_of_job: for ``latest_checkpoint``; empty: the last good job (templated).
    :param last_good: the resolve task's ``last_good`` output (templated).
    :param settings: the resolve task's ``settings`` output (templated): its ``checkpoint.dir``.
    """

    template_fields: Sequence[str] = ("restore_from", "savepoint_path", "checkpoint_of_job", "last_good", "settings")

    def __init__(self, *, restore_from: Any, savepoint_path: Any, checkpoint_of_job: Any, last_good: Any,
                 settings: Any, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(multiple_outputs=True, **kwargs)
        self.restore_from = restore_from
        self.savepoint_path = savepoint_path
        self.checkpoint_of_job = checkpoint_of_job
        self.last_good = last_good
        self.settings = settings

    def execute(self, context: Context) -> dict[str, str | None]:
        """Find and check it; outputs (XCom keys) ``location``, and ``savepoint`` (the same, for a savepoint)."""
        from flink_lessons.restore_points import check_snapshot

        good = last_good.from_json(self.last_good) if self.last_good else None
        if self.restore_from == "savepoint":
            if not self.savepoint_path:
                raise VariableError("restore_from=savepoint needs the savepoint_path param")
            location = check_snapshot(self.savepoint_path)
        elif self.restore_from == "last_good_savepoint":
            if good is None or not good.savepoint:
                raise VariableError(f"The last good record has no savepoint: {good or 'none'}")
            location = check_snapshot(good.savepoint)
        else:
            job_id = self.checkpoint_of_job or (good.job_id if good else None)
            if not job_id:
                raise VariableError("restore_from=latest_checkpoint needs checkpoint_of_job (no last good job either)")
            location = check_snapshot(self.latest_checkpoint(job_id))
            self.log.info("Latest checkpoint of job %s: %s", job_id, location)
        return {"location": location, "savepoint": None if self.restore_from == "latest_checkpoint" else location}

    def latest_checkpoint(self, job_id: str) -> str:
        """The job's latest completed checkpoint, from Flink, else from the checkpoint directory.

        :param job_id: the job.
        :raises VariableError: there is none.
        """
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from airflow_flink_provider.protocol.errors import FlinkNotFoundError
        from flink_lessons.restore_points import latest_retained_checkpoint

        hook = FlinkRestHook()
        try:
            location = hook.get_latest_checkpoint_path(job_id)
        except FlinkNotFoundError:
            location = None
        if location is None:
            configured = Settings.from_json(self.settings)["checkpoint.dir"]
            storage = configured or hook.get_jobmanager_config().get("execution.checkpointing.dir")
            self.log.info("Flink has no checkpoint of job %s on record; looking in %s", job_id, storage)
            location = latest_retained_checkpoint(storage, job_id) if storage else None
        if location is None:
            raise VariableError(f"No completed checkpoint of job {job_id} was found")
        return str(location)


class RecordLastGoodOperator(BaseOperator):
    """Write the job's last good record (Variable ``flink_phase4_last_good__<job_name>``, see
    :mod:`flink_lessons.last_good`).

    :param job_name: ``<job_name>`` (templated).
    :param version: the healthy version (templated).
    :param job_id: its job (templated).
    :param savepoint: a savepoint of it, if any (templated).
    :param restored_from: the snapshot it started from, if any (templated).
    """

    template_fields: Sequence[str] = ("job_name", "version", "job_id", "savepoint", "restored_from")

    def __init__(self, *, job_name: Any, version: Any, job_id: Any, savepoint: Any = None, restored_from: Any = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.job_name = job_name
        self.version = version
        self.job_id = job_id
        self.savepoint = savepoint
        self.restored_from = restored_from

    def execute(self, context: Context) -> dict[str, Any]:
        """Record it; the XCom is the record."""
        dag_run = context["dag_run"]
        good = last_good.record(self.job_name, self.version, self.job_id, savepoint=self.savepoint,
                                restored_from=self.restored_from, dag_id=dag_run.dag_id,
                                run_id=dag_run.run_id)  # fmt: skip
        self.log.info("Last good %s: %s", last_good.variable_name(self.job_name), good)
        return good.to_json()
