"""A job's state and the root cause of its newest failure, as an XCom for a branch or a verdict downstream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.sdk import BaseOperator

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.operators.common import log_job_url, push_job_id, require_job_id

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook


class JobStatus(TypedDict):
    """What :class:`FlinkJobStatusOperator` returns.

    :param job_id: the job asked about.
    :param state: its live state (``RUNNING``, ``FAILED``...; see ``protocol.job_state.JobState``), ``None``
        when Flink does not know the job.
    :param root_cause: the root cause of its newest failure, ``None`` when it has none or Flink does not
        know the job.
    """

    job_id: str
    state: str | None
    root_cause: str | None


class FlinkJobStatusOperator(BaseOperator):
    """Return a job's live state and the root cause of its newest failure (XCom), whatever they are.

    It neither waits nor fails on the job's state: a branch or a task that fails the run decides on the XCom
    (a :class:`JobStatus`), so the decision needs no Flink call of its own. A job that Flink does not know
    (never started, or forgotten after ``jobstore.expiration-time``) is ``state: None``, not an error; an
    unreachable REST API is (``FlinkConnectionError``, retried like any transient Flink failure).

    :param job_id: the Flink job id (templated).
    :param flink_conn_id: the ``flink`` REST connection.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#fdf1e3"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(self, *, job_id: str, flink_conn_id: str = "flink_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.flink_conn_id = flink_conn_id

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def execute(self, context: Context) -> JobStatus:
        """Ask Flink for the job's state and, when it knows the job, its root cause."""
        job_id = require_job_id(self.job_id)
        hook = self._rest_hook()
        push_job_id(context, job_id)
        state = hook.find_job_state(job_id)
        if state is None:
            self.log.info("Flink does not know job %s", job_id)
            return JobStatus(job_id=job_id, state=None, root_cause=None)
        log_job_url(self.log, self.flink_conn_id, job_id)
        cause = hook.get_root_cause(job_id)
        self.log.info("Flink job %s is %s; root cause of its newest failure: %s", job_id, state, cause or "none")
        return JobStatus(job_id=job_id, state=state, root_cause=cause)
