"""Which Flink jobs a step is about: the ids a script submitted, this run's unfinished jobs, the running
versions of a PyFlink job. Jobs are found by the one job-name convention (:mod:`flink_lessons.job_names`)
and judged by the provider's job-state vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from flink_lessons.job_names import jobs_named

if TYPE_CHECKING:
    from airflow.sdk import Context


def live_jobs(
    *, job: str | None = None, tag: str | None = None, flink_conn_id: str = "flink_default"
) -> list[dict[str, Any]]:
    """The jobs named ``<job>@...`` (or ``...#<tag>``) that are alive (hold or will hold slots), newest first.

    :param job: ``<job>`` of their names.
    :param tag: the run tag in their names.
    :param flink_conn_id: the Flink REST connection.
    """
    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
    from airflow_flink_provider.protocol.job_state import JobState

    named = jobs_named(FlinkRestHook(flink_conn_id=flink_conn_id).list_jobs(), job=job, tag=tag)
    return [entry for entry in named if JobState.parse(entry["state"]).is_alive]


class JobIdsOperator(BaseOperator):
    """The ids of the jobs a SQL script submitted, as a list to map the job-state sensors over.

    :param outcome: the FlinkSqlGatewayOperator's XCom (templated: its ``.output``).
    """

    template_fields: Sequence[str] = ("outcome",)

    def __init__(self, *, outcome: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcome = outcome

    def execute(self, context: Context) -> list[str]:
        """Pick ``job_ids`` out of the submit's outcome."""
        from airflow.sdk.exceptions import AirflowFailException

        ids = list(self.outcome["job_ids"])
        if not ids:
            raise AirflowFailException("The script submitted no job")
        return ids


class FindUnfinishedJobsOperator(BaseOperator):
    """This run's Flink jobs (their names end with ``#<run tag>``) that are not over yet.

    The clean-up's first teardown task: it runs after everything else, whatever failed, and its XCom is the
    list ``cancel_jobs`` maps over. A run whose settings never validated submitted nothing.

    :param tag: the run tag (templated: the settings task's ``tag`` output).
    :param keep_if: when this value (templated) is truthy, the run succeeded and keeps its jobs running
        (flink_deploy_sql with ``wait_for: RUNNING``); nothing is returned.
    """

    template_fields: Sequence[str] = ("tag", "keep_if")

    def __init__(self, *, tag: Any, keep_if: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag = tag
        self.keep_if = keep_if

    def execute(self, context: Context) -> list[str]:
        """List jobs over Flink's REST API and keep this run's live ones."""
        if not self.tag:
            self.log.info("The settings were not validated: nothing was submitted")
            return []
        alive = [entry["jid"] for entry in live_jobs(tag=self.tag)]
        if self.keep_if and alive:
            self.log.info("The run succeeded: its jobs %s keep running", alive)
            return []
        self.log.info("Jobs of this run still alive: %s", alive or "none")
        return alive


class RunningJobsOperator(BaseOperator):
    """The live jobs of a PyFlink job (named ``<job_name>@<version>``), other than this run's own.

    :param job_name: ``<job>`` of the names (templated).
    :param exclude: this run's own job id (templated).
    :param refuse: when set, a live job fails the task with this advice instead of being listed.
    """

    template_fields: Sequence[str] = ("job_name", "exclude")

    def __init__(self, *, job_name: Any, exclude: Any = None, refuse: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.exclude = exclude
        self.refuse = refuse

    def execute(self, context: Context) -> list[str]:
        """List them; refuse them when asked."""
        from airflow.sdk.exceptions import AirflowFailException

        others = [entry for entry in live_jobs(job=self.job_name) if entry["jid"] != self.exclude]
        listed = ", ".join(describe(entry) for entry in others)
        if others and self.refuse:
            raise AirflowFailException(f"{self.job_name} already runs: {listed}. {self.refuse}")
        self.log.info("Live jobs of %s: %s", self.job_name, listed or "none")
        return [entry["jid"] for entry in others]


def describe(entry: Mapping[str, Any]) -> str:
    """``<name> (<id>, <state>)`` of a ``/jobs/overview`` entry.

    :param entry: the entry.
    """
    return f"{entry['name']} ({entry['jid']}, {entry['state']})"
