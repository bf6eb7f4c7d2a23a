"""The one Flink REST call the phase-3 lessons need that the provider does not have yet.

``GET /jobs/{id}/vertices/{vid}`` gives each subtask's records in and accumulated busy, idle and
back-pressured time, also for a FINISHED job (from its archived execution graph; the metric endpoints of
``airflow_flink_provider.protocol.metrics`` answer only while a job runs). It is written as an exchange in
the provider's protocol style, run by ``FlinkRestHook().run(...)``, so it moves into
``airflow_flink_provider/protocol/rest.py`` as it is.
"""

from __future__ import annotations

from typing import Any

from airflow_flink_provider.protocol.http import Exchange, Request, path_segment


def get_vertex(job_id: str, vertex_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{id}/vertices/{vid}``: the vertex with each subtask's ``metrics`` (``read-records``,
    ``write-records``, ``accumulated-busy-time``, ``accumulated-backpressured-time``, ``accumulated-idle-time``),
    its ``status``, host and ``taskmanager-id``.

    :param job_id: the job.
    :param vertex_id: the vertex.
    """
    response = yield Request("GET", f"/jobs/{path_segment(job_id)}/vertices/{path_segment(vertex_id)}")
    assert response is not None
    return dict(response.body)
