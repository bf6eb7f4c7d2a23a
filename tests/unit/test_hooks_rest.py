"""FlinkRestHook methods over their exchanges, on answers captured from the local Flink 2.1.3 stack.

``data/flink_rest/vertex_finished.json``: ``GET /jobs/{id}/vertices/{vid}`` of a datagen (50 rows) -> blackhole job
at parallelism 1 after it FINISHED (source and sink chained into one vertex), read from its archived graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.errors import FlinkNotFoundError
from airflow_flink_provider.protocol.http import Request, Response
from tests.unit.test_protocol_rest import Fake, ok

pytestmark = pytest.mark.unit

JOB = "80ebed32a71c8c0a9431ae46b33ccda3"
VERTEX = "bc764cd8ddf7a0cff126f51c16239658"
VERTEX_ANSWER = json.loads((Path(__file__).parent / "data" / "flink_rest" / "vertex_finished.json").read_text())


def test_get_vertex_reads_each_subtasks_records_and_times_also_of_a_finished_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def flink(request: Request) -> Response:
        if request.path == f"/jobs/{JOB}/vertices/{VERTEX}":
            return ok(VERTEX_ANSWER)
        return Response(404, {"errors": ["Job could not be found."]}, "")

    fake = Fake(flink)
    hook = FlinkRestHook()
    monkeypatch.setattr(hook, "run", fake.run)
    vertex = hook.get_vertex(JOB, VERTEX)
    assert [(request.method, request.path) for request in fake.requests] == [("GET", f"/jobs/{JOB}/vertices/{VERTEX}")]
    (subtask,) = vertex["subtasks"]
    assert subtask["status"] == "FINISHED" and subtask["metrics"]["write-records"] == 50
    assert {"accumulated-busy-time", "accumulated-idle-time", "accumulated-backpressured-time"} <= set(
        subtask["metrics"]
    )
    with pytest.raises(FlinkNotFoundError):
        fake.run(rest.get_vertex("f" * 32, VERTEX))


def test_get_vertex_quotes_the_ids_into_one_path_segment() -> None:
    fake = Fake(lambda request: ok({}))
    fake.run(rest.get_vertex("a/b", "c?d"))
    assert fake.requests[0].path == "/jobs/a%2Fb/vertices/c%3Fd"
