"""OpenLineage events of real DAG runs: ``airflow dags test`` with the OpenLineage provider's file transport.

- phase 1 (``flink_phase1_dedup``): ``submit_dedup`` (FlinkSqlGatewayOperator) reads the run's input topic and
  writes its two sink topics, named ``kafka://127.0.0.1:9092`` + topic, with their schemas and the redacted
  script as the ``sql`` job facet; every other task reports no datasets.
- phase 4 (``flink_deploy_pyflink``, v1): ``submit_job`` (FlinkJobSubmitOperator) reports what the PyFlink
  program declares in ``include/pyflink/orders_enrichment/openlineage.json``, filled from the run's program
  arguments: the source topic and the products file in, the sink topic out. The job is cancelled at the end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_pyflink_kit import Jobs, Topics, jobs, pyflink_variable, topics
from tests.integration.test_reference_docs_examples import DAG_RUN, dags_test, own_airflow_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(DAG_RUN + 300),
]  # one DAG run per test
__all__ = ["jobs", "own_airflow_env", "topics"]  # fixtures

ROOT = Path(__file__).resolve().parents[2]
KAFKA = "kafka://127.0.0.1:9092"


def run_with_lineage(tmp_path: Path, dag_id: str, env: dict[str, str], *, variables: dict[str, Any] | None = None,
                     conf: dict[str, Any] | None = None) -> tuple[str, dict[str, list[dict[str, Any]]]]:  # fmt: skip
    """``airflow dags test`` one DAG with events written to a file; its output and its events by task.

    :param tmp_path: where the events file goes.
    :param dag_id: the DAG.
    :param env: the Airflow environment (``own_airflow_env``).
    :param variables: Variables (as ``AIRFLOW_VAR_*``).
    :param conf: the run conf.
    """
    events = tmp_path / f"{dag_id}.jsonl"
    env = {**env, **{f"AIRFLOW_VAR_{name.upper()}": json.dumps(value) for name, value in (variables or {}).items()}}
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    env["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "flink-provider-tests"
    # Each task event is emitted in a thread the task waits for up to execution_timeout (default: a forked child
    # given 10 s, then killed with its event: on the loaded 2-core machine that lost events).
    env["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] = "True"
    env["AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT"] = "120"
    output = dags_test(dag_id, env, conf)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event["job"]["name"].startswith(f"{dag_id}."):
            by_task.setdefault(event["job"]["name"].removeprefix(f"{dag_id}."), []).append(event)
    return output, by_task


def datasets(event: dict[str, Any], side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event.get(side, [])]


def completed(by_task: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each task's COMPLETE event (every task of a green run has one)."""
    done = {task: [e for e in events if e["eventType"] == "COMPLETE"] for task, events in by_task.items()}
    missing = sorted(task for task, events in done.items() if not events)
    assert not missing, f"no COMPLETE event for {missing}"
    return {task: events[-1] for task, events in done.items()}


def test_phase1_dedup_events_name_the_topics_each_task_reads_and_writes(
    tmp_path: Path, own_airflow_env: dict[str, str]
) -> None:
    output, by_task = run_with_lineage(tmp_path, "flink_phase1_dedup", own_airflow_env)
    tag = re.search(r"run tag ([0-9a-f]{8})", output)
    assert tag is not None, output[-3000:]
    events = completed(by_task)
    source, first, last = (f"phase1-dedup-{kind}-{tag.group(1)}" for kind in ("input", "first", "last"))
    lineage = {task: (datasets(e, "inputs"), datasets(e, "outputs")) for task, e in events.items()}
    assert lineage.pop("submit_dedup") == ([(KAFKA, source)], [(KAFKA, first), (KAFKA, last)])
    assert {task: io for task, io in lineage.items() if io != ([], [])} == {}, "only the Flink task has datasets"
    assert {"validate_settings", "produce_fixture", "wait_running_dedup", "report"} <= set(lineage)

    submit = events["submit_dedup"]
    schema = {d["name"]: d["facets"]["schema"]["fields"] for d in submit["inputs"] + submit["outputs"]}
    assert [(f["name"], f["type"]) for f in schema[source]] == [("order_id", "STRING"), ("status", "STRING"),
                                                                ("ts_ms", "BIGINT")]  # fmt: skip
    sql = submit["job"]["facets"]["sql"]
    assert sql["dialect"] == "flink" and "EXECUTE STATEMENT SET" in sql["query"] and f"'{source}'" in sql["query"]


def test_phase4_pyflink_deploy_events_carry_the_programs_declared_datasets(
    tmp_path: Path, own_airflow_env: dict[str, str], topics: Topics, jobs: Jobs
) -> None:
    name = jobs.track_name(f"ol-p4-{tmp_path.name[-8:]}".replace("_", "-"))
    source, sink = topics.create("ol-p4-in"), topics.create("ol-p4-out")
    variable = pyflink_variable(source, sink, name)
    _, by_task = run_with_lineage(tmp_path, "flink_deploy_pyflink", own_airflow_env,
                                  variables={"flink_phase4_pyflink": variable}, conf={"version": "v1"})  # fmt: skip
    events = completed(by_task)
    lineage = {task: (datasets(e, "inputs"), datasets(e, "outputs")) for task, e in events.items()}
    products = str(ROOT / "include" / "pyflink" / "orders_enrichment" / "data" / "products.csv")
    assert lineage.pop("submit_job") == ([(KAFKA, source), ("file", products)], [(KAFKA, sink)])
    assert {task: io for task, io in lineage.items() if io != ([], [])} == {}, "only the Flink task has datasets"
    assert "sql" not in events["submit_job"]["job"]["facets"]
