"""The Flink REST calls the phase-3 lessons need that the provider does not have yet: trigger a checkpoint now
and read how it went (lesson 2 shows the group's offsets before and after one checkpoint). Written as exchanges
in the provider's protocol style, run by ``FlinkRestHook().run(...)``, so they move into
``airflow_flink_provider/protocol/rest.py`` as they are.
"""

from __future__ import annotations

from typing import Any

from airflow_flink_provider.protocol.http import Exchange, Request, path_segment


def trigger_checkpoint(job_id: str) -> Exchange[str]:
    """``POST /jobs/{id}/checkpoints`` (Flink 1.19+): take a checkpoint now; returns the request id to poll.

    :param job_id: the job (checkpointing must be enabled, at any interval).
    """
    response = yield Request("POST", f"/jobs/{path_segment(job_id)}/checkpoints", json={"checkpointType": "FULL"})
    assert response is not None
    return str(response.body["request-id"])


def checkpoint_status(job_id: str, request_id: str) -> Exchange[dict[str, Any]]:
    """``GET /jobs/{id}/checkpoints/{request id}``: ``{"status": {"id": "IN_PROGRESS"|"COMPLETED"},
    "operation": {"checkpointId": n} or {"failure-cause": {...}}}``.

    :param job_id: the job.
    :param request_id: what :func:`trigger_checkpoint` returned.
    """
    response = yield Request("GET", f"/jobs/{path_segment(job_id)}/checkpoints/{path_segment(request_id)}")
    assert response is not None
    return dict(response.body)
