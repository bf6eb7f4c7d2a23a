"""The phase 0 and phase 1 DAGs, run end to end against the real stack as a user runs them.

Each DAG run happens in a subprocess with the project's Airflow environment (``stack/cli.py env``): either
``airflow dags test`` itself, or the same ``dag.test()`` through a small driver that also prints the task
states and the XComs the assertions need. Settings are given the way users give them: the Variable (as an
``AIRFLOW_VAR_<NAME>`` environment variable, which Airflow reads before its database) or the run conf.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flink_lessons.compare import load_expected
from flink_lessons.job_names import jobs_named
from flink_lessons.scenarios import EVENT_TIME_WATERMARKS, PHASE0_PRINT, SCENARIOS
from flink_lessons.settings import Settings

from stack.smoke import BOOTSTRAP, FLINK

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = "phase0_1_scenarios"
"""The file (in dags/, without .py) that defines every phase 0 and phase 1 DAG."""

pytestmark = pytest.mark.integration

CONSUMER_CONN = {
    "conn_type": "kafka",
    "extra": {"bootstrap.servers": BOOTSTRAP, "group.id": "airflow-flink-practice-tests",
              "auto.offset.reset": "earliest", "enable.auto.commit": "false"},
}  # fmt: skip

DRIVER = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

from datetime import datetime

dags, dag_id, conf = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
bag = BundleDagBag(dag_folder=str(dags / f"{sys.argv[4]}.py"), bundle_path=dags, bundle_name="dags-folder")
dag = bag.dags[dag_id]
if sys.argv[5]:  # the same dates again: the same run id, so dag.test() clears that run and runs it again
    when = datetime.fromisoformat(sys.argv[5])
    dr = dag.test(run_conf=conf, logical_date=when, run_after=when)
else:
    dr = dag.test(run_conf=conf)
with create_session() as session:
    tis = dr.get_task_instances(session=session)
    states = {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state) for ti in tis}
    xcoms = {}
    for row in session.scalars(XComModel.get_many(run_id=dr.run_id, key="return_value", dag_ids=dag_id)):
        if row.map_index < 0:
            xcoms[row.task_id] = XComModel.deserialize_value(row)
print("DRIVER-RESULT " + json.dumps({"state": str(dr.state), "run_id": dr.run_id, "tasks": states,
                                     "xcoms": xcoms}, default=str))
"""


def airflow_env(variables: dict[str, Any] | None = None) -> dict[str, str]:
    """The project's Airflow environment plus the test's consumer connection and Variables.

    :param variables: Variable name -> JSON value, passed as AIRFLOW_VAR_<NAME>.
    """
    out = subprocess.run([sys.executable, str(ROOT / "stack" / "cli.py"), "env"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")}
    for line in out.splitlines():  # `export NAME='value'`, shell-quoted: unquote, and expand $PATH, as a shell does
        if line.startswith("export "):
            name, _, value = shlex.split(line)[1].partition("=")
            env[name] = value.replace("$PATH", os.environ.get("PATH", "")) if name == "PATH" else value
    env["AIRFLOW_CONN_KAFKA_PRACTICE_CONSUMER"] = json.dumps(CONSUMER_CONN)
    for name, value in (variables or {}).items():
        env[f"AIRFLOW_VAR_{name.upper()}"] = json.dumps(value)
    return env


@dataclass
class DagRunResult:
    """One DAG run: its state, task states, XComs and the whole console output (the task logs).

    :param state: the run's final state.
    :param run_id: the run's id.
    :param tasks: task id (``[i]`` for mapped ones) -> state.
    :param xcoms: task id -> return value, for unmapped tasks.
    :param output: stdout and stderr of the run.
    """

    state: str
    run_id: str
    tasks: dict[str, str]
    xcoms: dict[str, Any]
    output: str

    @property
    def settings(self) -> Settings:
        """The settings the run validated."""
        return Settings.from_json(self.xcoms["validate_settings"]["settings"])


def run_dag(dag_id: str, conf: dict[str, Any] | None = None, variables: dict[str, Any] | None = None,
            timeout: float = 1500, logical_date: str = "") -> DagRunResult:  # fmt: skip
    """Run a DAG with ``dag.test()`` in a subprocess.

    :param dag_id: the DAG.
    :param conf: the run conf.
    :param variables: Variables to set.
    :param timeout: seconds.
    :param logical_date: ISO date of the run; a run of that date that exists already is cleared and run again.
    """
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(ROOT / "dags"), dag_id, json.dumps(conf or {}), DAG_FILE, logical_date],
        capture_output=True, text=True, env=airflow_env(variables), cwd=ROOT, timeout=timeout, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    marker = next((line for line in proc.stdout.splitlines() if line.startswith("DRIVER-RESULT ")), None)
    assert marker is not None, f"the driver did not finish (exit {proc.returncode}):\n{output[-5000:]}"
    data = json.loads(marker.removeprefix("DRIVER-RESULT "))
    return DagRunResult(data["state"], data["run_id"], data["tasks"], data["xcoms"], output)


def jobs_of_run(tag: str) -> list[dict[str, Any]]:
    """The Flink jobs whose names carry a run tag (``<job>@<version>#<tag>``).

    :param tag: the run tag.
    """
    return jobs_named(requests.get(f"{FLINK}/jobs/overview", timeout=10).json()["jobs"], tag=tag)


def assert_succeeded(run: DagRunResult) -> None:
    failed = {task: state for task, state in run.tasks.items() if state not in {"success", "skipped"}}
    logs = "\n".join(task_log(run.output, task)[-4000:] for task, state in failed.items() if state == "failed")
    assert run.state == "success" and not failed, f"{run.state}, {failed}\n{logs}\n...\n{run.output[-3000:]}"


def task_log(output: str, task_id: str) -> str:
    """One task's part of a ``dag.test()`` output, from its start to its end (what shows why it failed).

    :param output: the run's console output.
    :param task_id: the task.
    """
    start = output.find(f"[DAG TEST] starting task_id={task_id} ")
    end = output.find(f"[DAG TEST] end task task_id={task_id} ", max(start, 0))
    return output[start : end if end >= 0 else None] if start >= 0 else f"(no output of {task_id})"


def test_phase0_with_airflow_dags_test_shows_the_print_output() -> None:
    """What `make demo` runs: the CLI, exit code 0, the print sink's lines in the log, the job cancelled."""
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "airflow"), "dags", "test", PHASE0_PRINT.dag_id],
        capture_output=True, text=True, env=airflow_env(), cwd=ROOT, timeout=1500, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    tag = re.search(r"run tag ([0-9a-f]{8})", output)
    assert tag is not None, output[-3000:]
    expected = load_expected(PHASE0_PRINT.folder / "expected" / "print.txt")
    for row in expected:
        assert f"phase0_print-{tag.group(1)}-1> {row}" in output
    jobs = jobs_of_run(tag.group(1))
    assert jobs and {job["state"] for job in jobs} == {"CANCELED"}, jobs


@pytest.mark.timeout(3000)  # two DAG runs; the default per-test limit is for one
def test_a_phase0_run_made_again_for_its_date_runs_on_its_own_output() -> None:
    """``airflow dags test <dag> <date>`` twice: Airflow deletes the first run and creates it again under the
    same run id, every task at try 1. The second run gets a new run tag from its settings task's instance, so
    it starts on fresh topics and reads only its own print lines: it matches the expected rows again."""
    when = (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=random.randrange(3 * 10**7))).isoformat()  # past
    first = run_dag(PHASE0_PRINT.dag_id, logical_date=when)
    assert_succeeded(first)
    again = run_dag(PHASE0_PRINT.dag_id, logical_date=when)
    assert_succeeded(again)
    assert again.run_id == first.run_id
    assert first.settings.tag != again.settings.tag
    assert again.xcoms["render_print"]["print_identifier"] == f"phase0_print-{again.settings.tag}-1"
    expected = load_expected(PHASE0_PRINT.folder / "expected" / "print.txt")
    assert len(again.xcoms["observe_print_output"]) == len(expected)
    for run in (first, again):
        jobs = jobs_of_run(run.settings.tag)
        assert len(jobs) == 1 and jobs[0]["state"] == "CANCELED", jobs


@pytest.mark.parametrize(
    "dag_id",
    ["flink_phase1_malformed_json", "flink_phase1_schema_evolution", "flink_phase1_dedup",
     "flink_phase1_late_events"],
)  # fmt: skip
def test_phase1_dag_matches_its_expected_output(dag_id: str) -> None:
    run = run_dag(dag_id)
    assert_succeeded(run)
    scenario = SCENARIOS[dag_id.removeprefix("flink_")]
    for variant in scenario.variants:
        rows = run.xcoms[f"compare_{variant.name}"]
        for sink in variant.sinks:
            assert len(rows[sink.name]) == len(load_expected(scenario.expected_path(sink, run.settings)))
    assert "Report:" in run.output
    assert {job["state"] for job in jobs_of_run(run.settings.tag)} == {"FINISHED"}
    assert "cancel_jobs" not in run.tasks or run.tasks["cancel_jobs"] == "skipped"


def test_editing_the_variable_changes_the_windows_and_the_results() -> None:
    default = run_dag(EVENT_TIME_WATERMARKS.dag_id)
    assert_succeeded(default)
    edited = run_dag(EVENT_TIME_WATERMARKS.dag_id,
                     variables={"flink_phase1": {"window_size": "20s", "window_slide": "10s"}})  # fmt: skip
    assert_succeeded(edited)

    def window_seconds(run: DagRunResult) -> set[float]:
        rows = run.xcoms["compare_windows"]["tumble"] + run.xcoms["compare_windows"]["hop"]
        return {(datetime.fromisoformat(r["window_end"]) - datetime.fromisoformat(r["window_start"])).total_seconds()
                for r in rows}  # fmt: skip

    assert window_seconds(default) == {10}
    assert window_seconds(edited) == {20}
    assert default.xcoms["compare_windows"]["tumble"] != edited.xcoms["compare_windows"]["tumble"]
    assert "window_size=20s,window_slide=10s,watermark_delay=2s" in edited.output


def test_a_bad_variable_fails_the_first_task_before_anything_is_submitted() -> None:
    bad = {"topics": {"late_input": "bad topic!"}, "window_slide": "20s"}
    run = run_dag("flink_phase1_late_events", variables={"flink_phase1": bad})
    assert run.state == "failed"
    assert run.tasks["validate_settings"] == "failed"
    assert run.tasks["submit_late_events"] == "upstream_failed"
    assert run.tasks["create_topics"] == "upstream_failed"
    assert re.search(r"topics\.late_input \(from [^)]*\): may only contain the characters \[a-zA-Z0-9._-\]", run.output)
    assert "window_slide must not be larger than window_size (10s), got 20s" in run.output


def test_a_mismatch_fails_the_comparison_with_a_readable_diff() -> None:
    run = run_dag("flink_phase1_dedup", conf={"startup_mode": "latest-offset"})
    assert run.state == "failed"
    assert run.tasks["compare_dedup"] == "failed"
    assert run.tasks["report"] == "upstream_failed"
    assert "Output differs from the expected rows:" in run.output
    assert re.search(r"sink 'first' \(phase1-dedup-first-[0-9a-f]{8}\) vs phase1_dedup/expected/watermark_delay=2s/"
                     r"first.jsonl: expected 3 rows, got 0 \(0 matched\)", run.output)  # fmt: skip
    assert '    - {"order_id": "o1", "status": "created", "ts_ms": 1704067201000}' in run.output
    assert "startup_mode is latest-offset: the expected rows assume earliest-offset" in run.output


def test_failure_checks_fail_the_documented_way() -> None:
    run = run_dag("flink_phase1_failure_checks")
    assert run.state == "failed"
    assert run.tasks["wait_finished_strict_json[0]"] == "failed"
    assert run.tasks["submit_too_many_slots"] == "failed"
    assert run.tasks["submit_bad_sql"] == "failed"
    # 1. the job's root cause (the parse error) and a hint
    assert re.search(r"Flink job [0-9a-f]{32} is FAILED: JsonParseException: Unexpected character", run.output)
    assert re.search(r"Hint: .*'json.ignore-parse-errors' = 'true'", run.output)
    # 2. refused before submitting, with a hint
    slots = requests.get(f"{FLINK}/overview", timeout=10).json()["slots-total"]
    assert f"Not enough task slots: the job needs {slots + 1} slots" in run.output
    assert re.search(r"Hint: Not enough task slots: .*Lower the parallelism", run.output)
    # 3. the script line and column of the unexpected FROM
    script = (SCENARIOS["phase1_failure_checks"].folder / "bad_sql.sql.j2").read_text().splitlines()
    line = next(i for i, text in enumerate(script, start=1) if text == "FROM orders;") - 1  # the {#- -#} header
    assert re.search(rf"Statement \d/\d failed at script line {line}, column 1: .*near the keyword 'FROM'", run.output)
    assert not [job for job in jobs_of_run(run.settings.tag) if job["state"] not in {"FAILED", "CANCELED"}]
