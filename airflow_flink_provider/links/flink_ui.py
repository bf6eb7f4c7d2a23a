"""Extra link from a task to its job's page in the Flink web UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook, BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

XCOM_JOB_ID_KEY = "flink_job_id"
"""XCom key of the job id a task worked on; operators and the sensor push it, the link reads it."""


def flink_ui_url(flink_conn_id: str) -> str:
    """Base URL of the Flink web UI: the connection's ``ui_url`` extra, else its REST address.

    :param flink_conn_id: the ``flink`` connection.
    """
    from airflow_flink_provider.hooks.base import transport_config_from_connection

    conn = BaseHook.get_connection(flink_conn_id)
    ui_url = conn.extra_dejson.get("ui_url")
    if ui_url:
        return str(ui_url).rstrip("/")
    return transport_config_from_connection(conn, default_port=8081).base_url.rstrip("/")


def job_url(base_url: str, job_id: str) -> str:
    """The Flink UI page of a job.

    :param base_url: the web UI's base URL.
    :param job_id: the Flink job id.
    """
    return f"{base_url.rstrip('/')}/#/job/running/{job_id}/overview"


class FlinkJobLink(BaseOperatorLink):
    """Link to the Flink web UI page of the job the task submitted, stopped or watched.

    The job id comes from the task's ``flink_job_id`` XCom; the UI address from the operator's
    ``flink_conn_id`` connection (extra ``ui_url`` overrides the REST address).
    """

    name = "Flink Job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The job page URL, or an empty string when the task recorded no job id."""
        job_id = XCom.get_value(ti_key=ti_key, key=XCOM_JOB_ID_KEY)
        if not job_id:
            return ""
        return job_url(flink_ui_url(getattr(operator, "flink_conn_id", "flink_default")), str(job_id))
