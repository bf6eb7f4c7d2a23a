"""Phase 3 lesson DAGs through ``dag.test()`` on the real stack, at a small size (the long sweeps are in
``make bench``): each run must succeed, and its report must show the lesson's documented relations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.load.kafka import Kafka

from stack.smoke import BOOTSTRAP
from tests.integration import test_dags_phase0_1
from tests.integration.test_dags_phase0_1 import assert_succeeded, jobs_of_run

pytestmark = pytest.mark.integration
RunDag = Callable[..., test_dags_phase0_1.DagRunResult]


@pytest.fixture
def run_dag(monkeypatch: pytest.MonkeyPatch) -> RunDag:
    """``run_dag`` of the phase 0/1 tests, loading the lesson's own file (``dags/phase3_<lesson>.py``): their
    driver reads one DAG file, named by ``DAG_FILE``."""

    def run(dag_id: str, conf: dict[str, Any]) -> test_dags_phase0_1.DagRunResult:
        monkeypatch.setattr(test_dags_phase0_1, "DAG_FILE", dag_id.removeprefix("flink_"), raising=False)
        return test_dags_phase0_1.run_dag(dag_id, conf=conf)

    return run


@pytest.mark.timeout(1500)  # dag.test() of eleven tasks: about 10 min on the loaded 2-core box
def test_partitioning_lesson_shows_the_hot_subtask_and_the_fix(run_dag: RunDag) -> None:
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


@pytest.mark.timeout(1500)  # dag.test() of sixteen tasks, three jobs: 7 min on the loaded 2-core box
def test_offsets_lesson_reads_the_exact_records_of_each_start(run_dag: RunDag) -> None:
    """Lesson 2 at a small size: each startup mode reads exactly its records, the group's offsets move only on
    a checkpoint, and the job restored from a savepoint ignores the group reset (reads exactly batch C)."""
    batch = 200
    run = run_dag("flink_phase3_offsets", conf={"batch_events": batch, "specific_offset": 20, "reset_offset": 30})
    assert_succeeded(run)
    report = run.xcoms["report"]
    assert report["ok"] is True, run.output[-6000:]
    rows = {row["job / mode"]: row for row in report["tables"][next(iter(report["tables"]))]}
    assert rows["earliest"]["records read"] == 3 * batch
    assert rows["latest"]["records read"] == 0
    assert rows["stream (restored from savepoint)"]["order ids read"] == f"{2 * batch}..{3 * batch - 1}"
    assert rows["timestamp"]["order ids read"] == f"{batch}..{3 * batch - 1}"
    first = run.xcoms["commit_on_checkpoint"]
    assert first["before"] == {} and first["after"] == first["end_offsets"]
    assert sum(first["after"].values()) == 2 * batch
    # Clean-up: every job of the run is over and its topics are gone.
    tag = run.xcoms["resolve_settings"]["tag"]
    jobs = jobs_of_run(tag)
    assert len(jobs) == 3 and all(job["state"] in ("FINISHED", "CANCELED") for job in jobs), jobs
    assert not {
        t for t in run.xcoms["resolve_settings"]["topics"].values() if Kafka.from_bootstrap(BOOTSTRAP).partitions(t)
    }


@pytest.mark.timeout(1500)  # dag.test() with three jobs side by side: 8 min on the loaded 2-core box
def test_backpressure_lesson_shows_the_slow_operator_and_the_sweep_table(run_dag: RunDag) -> None:
    """Lesson 3 at a small size (three variants side by side; the full sweep is in make bench): the unchained
    job's source is back-pressured behind the busy slow Calc, every variant reads every event once, the table
    has throughput and latency per variant, and the plot is drawn."""
    conf = {
        "backlog_events": 3_000,
        "work": 6,
        "tail_events": 100,
        "tail_rate": 50,
        "variants": "unchained,buffer_timeout_0,buffer_timeout_1s",
    }
    run = run_dag("flink_phase3_backpressure", conf=conf)
    assert_succeeded(run)
    report = run.xcoms["report"]
    assert report["ok"] is True, run.output[-6000:]
    rows = report["tables"]["sweep (all variants ran at once, on the same machine)"]
    assert [row["variant"] for row in rows] == ["unchained", "buffer_timeout_0", "buffer_timeout_1s"]
    assert all(row["throughput (events/s)"] > 0 and row["latency p50 (ms)"] is not None for row in rows), rows
    assert Path(report["settings"]["plot"]).stat().st_size > 10_000
    tag = run.xcoms["resolve_settings"]["tag"]
    jobs = jobs_of_run(tag)
    assert len(jobs) == 3 and {job["state"] for job in jobs} == {"FINISHED"}, jobs
