"""The decisions of flink_upgrade_with_rollback (playbooks/rollback-retry.md): after the stop, after the
health gate, and the run's verdict. They ask Flink nothing themselves: a job's state and root cause come from
``FlinkJobStatusOperator`` tasks, and every task gets its inputs as arguments (XComArgs)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Param, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

from flink_lessons.families import FAULTS, NO_FAULT

log = logging.getLogger("airflow.task")

RETRY = "retry_stop_with_savepoint"

PARAMS = {
    "version": Param(None, type=["null", "string"],
                     description="Version to upgrade to (one of the job's VERSIONS); empty: `version` of the "
                                 "Variable flink_phase4_pyflink."),
    "fault_injection": Param(NO_FAULT, type="string", enum=list(FAULTS),
                             description="Drills only: savepoint_failure makes the first stop-with-savepoint fail "
                                         "(the retry branch); none: no fault."),
}  # fmt: skip
"""The DAG's params (the UI's Trigger form): both are settings of ``flink_phase4_pyflink``; a value given here
or in the run conf overrides the Variable's, an empty ``version`` leaves it (``fault_injection`` is always
chosen: ``none`` or a fault)."""


@task.branch(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
def check_stop(savepoint: str | None, old_job: Mapping[str, Any] | None) -> str:
    """On with the savepoint; retry the stop while the old job still runs (or finished with its savepoint);
    abort and page when it is gone.

    :param savepoint: the first stop's savepoint (``None``: the stop failed).
    :param old_job: the old job's status after a failed stop (``None``: it could not be asked, e.g. Flink's
        REST API was unreachable, which is transient).
    """
    from airflow_flink_provider.protocol.job_state import JobState

    if savepoint:
        return "savepoint_taken"
    if old_job is None:
        log.warning("The old job's state is not known (see old_job_status): transient, retrying the stop")
        return RETRY
    known = JobState.lookup(old_job["state"])
    if known is JobState.FINISHED or (known is not None and known.is_alive and not known.is_ending):
        log.warning("The stop failed but job %s is %s: transient, retrying the stop", old_job["job_id"], known)
        return RETRY
    return "abort_and_page"


@task
def abort_and_page(old_job: Mapping[str, Any]) -> None:
    """The job to upgrade is not running any more: nothing was submitted; a person must look.

    :param old_job: the old job's status.
    """
    state = old_job["state"] or "unknown to Flink"
    cause = f" Its root cause: {old_job['root_cause']}." if old_job.get("root_cause") else ""
    raise AirflowFailException(
        f"Upgrade aborted before submitting anything: the job to upgrade ({old_job['job_id']}) is {state}.{cause} "
        "Page the owner: inspect the job's exceptions and restore it with flink_recover_from_savepoint "
        "(playbooks/rollback-retry.md, 'Stop and page')."
    )


@task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
def savepoint_taken(savepoint: str) -> str:
    """The first stop worked: its savepoint goes on. Its rule waits for ``check_stop`` when the stop failed:
    the default (all success) would mark it upstream_failed at once, and ``savepoint_ready`` with it, before
    the branch skips it for the retry."""
    return savepoint


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
def savepoint_ready(first: str | None, retried: str | None) -> str:
    """The savepoint the new version, and a rollback, restore from (as Flink reported it)."""
    location = first or retried
    if not location:
        raise AirflowFailException("No savepoint from stop_with_savepoint or retry_stop_with_savepoint")
    log.info("Restoring from savepoint %s", location)
    return location


@task.branch(trigger_rule=TriggerRule.NONE_SKIPPED)
def check_health(savepoint: str | None, verdict: Mapping[str, Any] | None) -> str:
    """Keep the new version if the gate passed; otherwise roll back (fail if no savepoint was ever taken)."""
    if not savepoint:
        raise AirflowFailException(
            "No savepoint was taken (retry_stop_with_savepoint failed), so nothing was submitted: the old job "
            "was not stopped by this run. See retry_stop_with_savepoint's log."
        )
    return "savepoint_new_version" if verdict and verdict.get("healthy") else "cancel_new_version"


def failure_message(target: str, previous: str, new_job_id: str, cause: str | None,
                    rollback: Mapping[str, Any] | None) -> str:  # fmt: skip
    """Why the upgrade failed and where the rollback stands.

    :param target: the version that failed.
    :param previous: the version rolled back to.
    :param new_job_id: the failed version's job.
    :param cause: its root cause, if Flink recorded one.
    :param rollback: the rollback's health verdict, if it passed.
    """
    why = f"Root cause: {cause.rstrip('.')}" if cause else "No root cause recorded (did submit_new_version fail?)"
    if rollback and rollback.get("healthy"):
        status = f"rolled back to {previous} (job {rollback['job_id']}), which is healthy: {rollback['reason']}"
    else:
        status = f"the rollback to {previous} did NOT complete (see verify_rollback): page"
    return f"Upgrade to {target} failed (job {new_job_id}): it did not pass the health gate. {why}. Then {status}."


@task(trigger_rule=TriggerRule.NONE_SKIPPED)
def fail_upgrade(target: str, previous: str, new_job_id: str, new_job: Mapping[str, Any] | None,
                 rollback: Mapping[str, Any] | None) -> None:  # fmt: skip
    """Fail the run loudly: why the upgrade failed (the failed job's root cause), and where the rollback stands.

    :param target: the version that failed.
    :param previous: the version rolled back to.
    :param new_job_id: the failed version's job.
    :param new_job: its status (``None``: it could not be asked).
    :param rollback: the rollback's health verdict (``None``: it did not pass).
    """
    cause = new_job.get("root_cause") if new_job else None
    raise AirflowFailException(failure_message(target, previous, new_job_id, cause, rollback))
