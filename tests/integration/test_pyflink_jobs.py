"""The orders-enrichment PyFlink jobs on the real stack, submitted with the README's ``flink run -py`` command.

v1 on a small dataset gives exactly the rows the oracle computes; v1's savepoint cannot be restored by the
broken version (incompatible window state) but is restored by v2, which carries on with v1's state: the
windows of the whole run hold every event exactly once.
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_pyflink_kit import (
    PRODUCTS,
    Jobs,
    Topics,
    dataset,
    flink_run,
    job_args,
    jobs,
    produce,
    read_rows,
    topics,
    wait_checkpoints,
    wait_state,
    without,
)

pytestmark = pytest.mark.integration
__all__ = ["jobs", "topics"]  # fixtures

WINDOW_MS = 10_000


def test_v1_writes_exactly_the_expected_windows(topics: Topics, jobs: Jobs) -> None:
    source, sink = topics.create("pf-v1-in"), topics.create("pf-v1-out")
    events = dataset.orders(0, 40)  # 4 windows of 10 s
    close = events[-1]["ts"] + WINDOW_MS  # a filtered-out event whose watermark closes every window
    produce(source, [*events, dataset.heartbeat(close)])
    expected = dataset.expected_windows(events, PRODUCTS, WINDOW_MS, watermark=close)
    assert len({row["window_start"] for row in expected}) == 4

    job_id = jobs.track(uuid.uuid4().hex)
    name = f"it-pf-v1-{job_id[:8]}"
    out = flink_run("v1", job_args(source, sink, name, checkpoint_mode="at-least-once"), job_id=job_id)
    assert f"as job {job_id}" in out
    job = wait_state(jobs.rest, job_id, {"RUNNING"})
    assert job["name"] == name

    rows = read_rows(sink, len(expected))
    assert without(rows, "job_version") == expected
    assert {row["job_version"] for row in rows} == {"v1"}

    config = jobs.rest.run(_checkpoint_config(job_id))
    assert (config["interval"], config["mode"]) == (2000, "at_least_once")
    assert config["externalization"]["enabled"] and not config["externalization"]["delete_on_cancellation"]


def _checkpoint_config(job_id: str):  # type: ignore[no-untyped-def]
    """``GET /jobs/{id}/checkpoints/config`` through the provider's transport."""
    from airflow_flink_provider.protocol.http import Request

    response = yield Request("GET", f"/jobs/{job_id}/checkpoints/config")
    return response.body


def stateful_vertices(jobs: Jobs, job_id: str) -> dict[str, str]:
    """Vertex id by operator kind (a vertex id is the hash of its first operator's uid)."""
    kinds = ("Source: orders", "Source: products", "TemporalJoin", "GroupWindowAggregate")
    vertices = jobs.rest.get_job(job_id)["vertices"]
    return {kind: v["id"] for kind in kinds for v in vertices if v["name"].startswith(kind)}


def test_v1_savepoint_refused_by_broken_and_restored_by_v2(topics: Topics, jobs: Jobs) -> None:
    source, sink = topics.create("pf-up-in"), topics.create("pf-up-out")
    first, second = dataset.orders(0, 35), dataset.orders(35, 30)  # window 3 straddles the upgrade
    produce(source, first)
    closed_by_first = dataset.expected_windows(first, PRODUCTS, WINDOW_MS, watermark=first[-1]["ts"])

    base = f"it-pf-up-{uuid.uuid4().hex[:8]}"
    v1 = jobs.track(uuid.uuid4().hex)
    flink_run("v1", job_args(source, sink, f"{base}@v1"), job_id=v1)
    wait_state(jobs.rest, v1, {"RUNNING"})
    assert len(read_rows(sink, len(closed_by_first), settle=0)) == len(closed_by_first)
    wait_checkpoints(jobs.rest, v1, 1)
    savepoint = jobs.rest.stop_with_savepoint(v1, timeout=120)
    assert jobs.rest.get_job_state(v1) == "FINISHED"

    broken = jobs.track(uuid.uuid4().hex)
    flink_run("broken", job_args(source, sink, f"{base}@broken", restart_attempts=0), job_id=broken,
              savepoint=savepoint)  # fmt: skip
    wait_state(jobs.rest, broken, {"FAILED"})
    assert "StateMigrationException" in (jobs.rest.get_root_cause(broken) or "")

    v2 = jobs.track(uuid.uuid4().hex)
    flink_run("v2", job_args(source, sink, f"{base}@v2"), job_id=v2, savepoint=savepoint)
    wait_state(jobs.rest, v2, {"RUNNING"})
    assert jobs.rest.get_checkpoints(v2)["latest"]["restored"]["external_path"] == savepoint
    assert stateful_vertices(jobs, v2) == stateful_vertices(jobs, v1)

    close = second[-1]["ts"] + WINDOW_MS
    produce(source, [*second, dataset.heartbeat(close)])
    everything = first + second
    expected = dataset.expected_windows(everything, PRODUCTS, WINDOW_MS, watermark=close)
    rows = read_rows(sink, len(expected))
    assert without(rows, "job_version", "avg_order_cents") == expected  # every event counted exactly once
    assert dataset.totals(rows) == dataset.totals(expected)
    by_window = {(row["window_start"], row["category"]): row for row in rows}
    for key, row in by_window.items():
        assert row["job_version"] == ("v1" if key[0] + WINDOW_MS <= first[-1]["ts"] else "v2")
        if row["job_version"] == "v2":
            assert row["avg_order_cents"] == row["revenue_cents"] // row["orders"]
    straddling = first[-1]["ts"] - first[-1]["ts"] % WINDOW_MS
    assert any(key[0] == straddling for key in by_window), "the window open at the savepoint was emitted by v2"
