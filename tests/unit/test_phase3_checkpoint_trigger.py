"""Trigger a checkpoint and wait for it (``POST /jobs/{id}/checkpoints``), through the hook, on answers captured
from the local Flink 2.1.3 stack (``data/flink_rest/checkpoint_trigger.json``, stack traces cut to their first
lines): a datagen -> blackhole job's checkpoint 1, an unknown request id (404), and a trigger for an unknown job,
which Flink accepts (202) and then completes with a ``failureCause`` (not a savepoint's ``failure-cause``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.errors import FlinkNotFoundError, FlinkTimeoutError
from airflow_flink_provider.protocol.http import Request, Response
from tests.unit.test_protocol_rest import Fake, ok

pytestmark = pytest.mark.unit

CAPTURED = json.loads((Path(__file__).parent / "data" / "flink_rest" / "checkpoint_trigger.json").read_text())
JOB, UNKNOWN_JOB = CAPTURED["job"], "f" * 32
REQUEST, UNKNOWN_REQUEST = CAPTURED["trigger"]["request-id"], CAPTURED["unknown_job_trigger"]["request-id"]
IN_PROGRESS = {"status": {"id": "IN_PROGRESS"}}


def flink(statuses: list[dict[str, Any]]) -> Fake:
    """The captured answers: the job's trigger, then ``statuses`` in turn; the unknown job's trigger and status."""

    def answer(request: Request) -> Response:
        if (request.method, request.path) == ("POST", f"/jobs/{JOB}/checkpoints"):
            return ok(CAPTURED["trigger"], 202)
        if request.path == f"/jobs/{JOB}/checkpoints/{REQUEST}":
            return ok(statuses.pop(0))
        if (request.method, request.path) == ("POST", f"/jobs/{UNKNOWN_JOB}/checkpoints"):
            return ok(CAPTURED["unknown_job_trigger"], 202)
        if request.path == f"/jobs/{UNKNOWN_JOB}/checkpoints/{UNKNOWN_REQUEST}":
            return ok(CAPTURED["unknown_job_status"])
        return Response(404, CAPTURED["unknown_request_404"], "")

    return Fake(answer)


def test_the_hook_triggers_a_checkpoint_and_waits_for_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = flink([IN_PROGRESS, IN_PROGRESS, CAPTURED["completed"]])
    hook = FlinkRestHook()
    monkeypatch.setattr(hook, "run", fake.run)
    request_id = hook.trigger_checkpoint(JOB, "incremental")
    assert request_id == REQUEST
    assert hook.wait_for_checkpoint(JOB, request_id, poll_interval=0.25) == 1
    assert fake.requests[0].json == {"checkpointType": "INCREMENTAL"}
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/jobs/{JOB}/checkpoints"), *[("GET", f"/jobs/{JOB}/checkpoints/{REQUEST}")] * 3
    ]  # fmt: skip
    assert fake.sleeps == [0.25, 0.25]


def test_a_checkpoint_of_an_unknown_job_fails_as_not_found_with_flinks_cause() -> None:
    fake = flink([])
    request_id = fake.run(rest.trigger_checkpoint(UNKNOWN_JOB))
    with pytest.raises(FlinkNotFoundError) as caught:
        fake.run(rest.wait_for_checkpoint(UNKNOWN_JOB, request_id))
    assert f"Checkpoint of Flink job {UNKNOWN_JOB} failed" in caught.value.message
    assert "Could not find Flink job" in (caught.value.root_cause or caught.value.message)


def test_an_unknown_request_id_is_not_found_and_a_checkpoint_in_progress_times_out() -> None:
    with pytest.raises(FlinkNotFoundError):
        flink([]).run(rest.get_checkpoint_trigger_status(JOB, "0" * 32))
    now = iter(range(100))
    with pytest.raises(FlinkTimeoutError, match="not done after 2s"):
        flink([IN_PROGRESS] * 10).run(rest.wait_for_checkpoint(JOB, REQUEST, timeout=2, clock=lambda: next(now)))
