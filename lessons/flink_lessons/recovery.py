"""The params and the decision of flink_recover_from_savepoint (the manual runbook).

The params make the UI's "Trigger DAG" form; every one is optional (an empty value has a meaning, see
``description``), so the form can be submitted as it opens.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import Param, task
from airflow.sdk.exceptions import AirflowFailException

IF_RUNNING = ("fail", "stop_with_savepoint", "cancel")

PARAMS = {
    "version": Param(None, type=["null", "string"],
                     description="Version to start (one of the job's VERSIONS); empty: the last good version."),
    "restore_from": Param("last_good_savepoint", enum=["last_good_savepoint", "savepoint", "latest_checkpoint"],
                          description="Where the state comes from."),
    "savepoint_path": Param(None, type=["null", "string"],
                            description="For restore_from=savepoint: the savepoint's path or URI."),
    "checkpoint_of_job": Param(None, type=["null", "string"],
                               description="For restore_from=latest_checkpoint: the job id; empty: the last good job."),
    "if_running": Param("fail", enum=list(IF_RUNNING),
                        description="A job of the same name still runs: fail, stop it with a savepoint, or cancel it."),
}  # fmt: skip
"""The DAG's params; run conf keys of these names are not settings of ``flink_phase4_pyflink``."""


@task.branch
def clear_running_jobs(running: Sequence[str], if_running: str) -> list[str]:
    """Make room: a job of the same name must not run next to the restored one."""
    if not running:
        return ["submit_restored"]
    if if_running == "stop_with_savepoint":
        return ["stop_running_jobs", "submit_restored"]
    if if_running == "cancel":
        return ["cancel_running_jobs", "submit_restored"]
    raise AirflowFailException(f"Jobs {list(running)} of the same name still run: set the if_running param to "
                               "stop_with_savepoint (their savepoints are logged) or cancel")  # fmt: skip
