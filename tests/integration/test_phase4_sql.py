"""flink_deploy_sql on the real stack: a phase 1 scenario submitted through the SQL Gateway and watched, with
its window settings taken from the Variable; bad SQL fails the run at once (no retry)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration._flink_it import consume
from tests.integration.test_pyflink_kit import ROOT, AirflowHome, Jobs, airflow_home, jobs

pytestmark = pytest.mark.integration
__all__ = ["airflow_home", "jobs"]  # fixtures

SCENARIO = ROOT / "include" / "sql" / "phase1_event_time_watermarks"


def expected(folder: Path, sink: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / f"{sink}.jsonl").read_text().splitlines() if line.strip()]


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["sensor"], row["window_start"], row["window_end"], row["readings"], row["total"])


def test_scenario_windows_come_from_the_variable(airflow_home: AirflowHome, jobs: Jobs) -> None:
    variables = {
        "flink_phase4_sql": {
            "scenario": "phase1_event_time_watermarks",
            "variant": "windows",
            "settings": {"window_size": "20s", "window_slide": "10s", "watermark_delay": "2s"},
            "timeout": "2 min",
        }
    }
    run = airflow_home.run("flink_deploy_sql", variables)
    ids = run.xcom("job_ids") or []
    jobs.ids.extend(ids)
    assert run.state == "success", run
    # The bounded job: the branch waited for FINISHED and skipped the health watch of a running job.
    assert (run.states["wait_finished"], run.states["watch_running"], run.states["report"]) == (
        "success", "skipped", "success"), run  # fmt: skip
    assert len(ids) == 1
    sql = run.xcom("resolve_settings", "sql")
    assert "INTERVAL '20' SECOND" in sql and "INTERVAL '10' SECOND" in sql

    folder = SCENARIO / "expected" / "window_size=20s,window_slide=10s,watermark_delay=2s"
    topics = run.xcom("resolve_settings", "topics")
    tumble_topic = next(t for t in topics if "event-time-tumble" in t)
    want = expected(folder, "tumble")
    got = consume(tumble_topic, len(want))
    assert sorted(map(key, got)) == sorted(map(key, want))


def test_bad_sql_fails_fast_without_retries(airflow_home: AirflowHome, jobs: Jobs) -> None:
    variables = {"flink_phase4_sql": {"scenario": "phase1_failure_checks", "variant": "bad_sql"}}
    run = airflow_home.run("flink_deploy_sql", variables)
    jobs.ids.extend(run.xcom("job_ids") or [])
    assert run.state == "failed", run
    assert run.states["submit_sql"] == "failed", run
    assert run.states["job_ids"] == run.states["wait_running"] == "upstream_failed", run
    log = run.log("submit_sql")
    assert "FlinkSqlError: Statement 4/4 failed at script line" in log
    assert "Retry policy decision" in log and "action=fail" in log
    assert log.count("[DAG TEST] starting task_id=submit_sql") == 1  # no second try
