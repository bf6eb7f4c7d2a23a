"""Phase 3 lesson DAGs through ``dag.test()`` on the real stack, at a small size (the long sweeps are in
``make bench``): each run must succeed, and its report must show the lesson's documented relations."""

from __future__ import annotations

import pytest
from flink_lessons.load.kafka import Kafka

from stack.smoke import BOOTSTRAP
from tests.integration.test_dags_phase0_1 import assert_succeeded, jobs_of_run, run_dag

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1500)  # dag.test() of eleven tasks: about 10 min on the loaded 2-core box
def test_partitioning_lesson_shows_the_hot_subtask_and_the_fix() -> None:
    run = run_dag("flink_phase3_partitioning", conf={"events": 20_000, "parallelism": 2, "keys": 2_000})
    assert_succeeded(run)
    report = run.xcoms["report"]
    assert report["ok"] is True, run.output[-6000:]
    checks = {c["name"]: c for c in report["checks"]}
    hot = checks["zipf:2 keys: records into the hot subtask"]
    assert hot["measured"] >= hot["expected"] > 20_000 * 0.5  # c1 alone has ~61 % of the events
    rows = {row["job"]: row for row in report["tables"]["keyed aggregation: records into each subtask"]}
    assert rows["zipf:2 keys"]["max/median"] > rows["uniform keys"]["max/median"]
    assert rows["zipf:2 keys, two-phase + mini-batch"]["max/median"] < rows["zipf:2 keys"]["max/median"]
    partitions = {
        row["topic"]: row for row in report["tables"]["records per partition (what the Kafka partitioner did)"]
    }
    assert partitions["zipf"]["records per partition"] == partitions["zipf"]["murmur2 predicts"]
    assert sum(partitions["nullkeys"]["records per partition"]) == 20_000
    # Clean-up: no job of the run is alive and its topics are gone.
    tag = run.xcoms["resolve_settings"]["tag"]
    assert all(job["state"] in ("FINISHED", "CANCELED") for job in jobs_of_run(tag))
    assert not {
        t for t in run.xcoms["resolve_settings"]["topics"].values() if Kafka.from_bootstrap(BOOTSTRAP).partitions(t)
    }
