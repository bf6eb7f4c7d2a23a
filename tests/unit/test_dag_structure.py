"""The phase 0 and phase 1 DAGs (one file, one graph): they import cleanly, do no I/O at parse time, parse fast, and are
built from the provider's and the Kafka provider's operators in the documented order."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
SCENARIOS_FILE = DAGS / "phase0_1_scenarios.py"
DAG_FILES = sorted(DAGS.glob("phase[01]_*.py"))
DAG_IDS = {
    "flink_phase0_print",
    "flink_phase1_malformed_json",
    "flink_phase1_schema_evolution",
    "flink_phase1_event_time_watermarks",
    "flink_phase1_dedup",
    "flink_phase1_late_events",
    "flink_phase1_failure_checks",
}

pytestmark = pytest.mark.unit


def load_dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=True)  # as Airflow parses: a file names "airflow" and "dag"


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    found = {}
    for path in DAG_FILES:
        bag = DagBag(dag_folder=str(path), safe_mode=True)  # as Airflow parses: a file names "airflow" and "dag"
        assert bag.import_errors == {}
        found.update(bag.dags)
    return found


def test_every_dag_is_there(dags: dict[str, Any]) -> None:
    assert set(dags) == DAG_IDS


def test_the_dags_folder_holds_dag_files_only() -> None:
    """The helpers are the flink_lessons package, imported like any package: no sys.path hack, no helpers here."""
    files = sorted(DAGS.rglob("*.py"))
    assert all(path.parent == DAGS for path in files), files
    for path in files:
        source = path.read_text()
        assert "sys.path" not in source, path.name
        assert "xcom_pull" not in source, f"{path.name}: use XComArgs (.output), not task-id look-ups"
        assert len(source.splitlines()) <= 400, f"{path.name}: a DAG file shows its graph; helpers go in lessons/"
    bag = load_dagbag()
    assert bag.import_errors == {}
    assert sorted(Path(stat.file).name for stat in bag.dagbag_stats) == [path.name for path in files]
    assert {Path(stat.file).name: stat.dag_num for stat in bag.dagbag_stats if stat.dag_num != 1} == {
        SCENARIOS_FILE.name: len(DAG_IDS)
    }, "one DAG a file, but for the scenario DAGs: one graph, built for each scenario"


@pytest.fixture
def no_io_outside_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any Variable access and record files opened (module sources are read with io.open_code)."""
    from airflow.sdk import Variable

    opened: list[str] = []
    real_open = builtins.open

    def tracking_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def no_variables(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"Variable.get at parse time: {args}")

    monkeypatch.setattr(Variable, "get", no_variables)
    monkeypatch.setattr(builtins, "open", tracking_open)
    yield opened


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parsing_reads_no_variable_and_no_file(path: Path, no_io_outside_imports: list[str]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path), safe_mode=True)  # as Airflow parses: a file names "airflow" and "dag"
    assert bag.import_errors == {}
    assert bag.dags
    assert not [f for f in no_io_outside_imports if f.startswith(str(ROOT / "include"))]


def task_types(dag: Any) -> dict[str, str]:
    return {task.task_id: task.task_type for task in dag.tasks}


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_validation_comes_first(dags: dict[str, Any], dag_id: str) -> None:
    dag = dags[dag_id]
    assert [t.task_id for t in dag.roots] == ["validate_settings"]
    validate = dag.get_task("validate_settings")
    submits = [t for t in dag.tasks if t.task_id.startswith("submit_")]
    assert submits and all(validate.task_id in t.get_flat_relative_ids(upstream=True) for t in submits)


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_built_from_the_provider_and_kafka_operators(dags: dict[str, Any], dag_id: str) -> None:
    types = task_types(dags[dag_id])
    assert types["produce_fixture"] == "ProduceToTopicOperator"
    assert types["cancel_jobs"] == "FlinkCancelJobOperator"
    assert {types[t] for t in types if t.startswith("submit_")} == {"FlinkSqlGatewayOperator"}
    waits = {types[t] for t in types if t.startswith("wait_")}
    assert waits <= {"FlinkJobStateSensor"}
    if dag_id not in {"flink_phase0_print", "flink_phase1_failure_checks"}:
        assert {types[t] for t in types if t.startswith("consume_")} == {"ConsumeFromTopicOperator"}


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS - {"flink_phase1_failure_checks"}))
def test_pipeline_order(dags: dict[str, Any], dag_id: str) -> None:
    dag = dags[dag_id]

    def upstream(task_id: str) -> set[str]:
        return dag.get_task(task_id).get_flat_relative_ids(upstream=True)

    for compare in (t.task_id for t in dag.tasks if t.task_id.startswith("compare_")):
        variant = compare.removeprefix("compare_")
        assert {"produce_fixture", f"submit_{variant}", f"wait_running_{variant}"} <= upstream(compare)
    assert {t.task_id for t in dag.tasks if t.task_id.startswith("compare_")} <= upstream("report")
    assert dag.get_task("cancel_jobs").is_teardown and dag.get_task("find_unfinished_jobs").is_teardown
    assert "report" in upstream("cancel_jobs")


def test_bounded_scenarios_wait_for_finished_before_reading(dags: dict[str, Any]) -> None:
    for dag_id in DAG_IDS - {"flink_phase0_print", "flink_phase1_failure_checks"}:
        dag = dags[dag_id]
        for consume in (t for t in dag.tasks if t.task_id.startswith("consume_")):
            upstream = consume.get_flat_relative_ids(upstream=True)
            assert any(u.startswith("wait_finished_") for u in upstream), (dag_id, consume.task_id)


def test_phase0_observes_the_print_sink_after_the_job_runs(dags: dict[str, Any]) -> None:
    dag = dags["flink_phase0_print"]
    observe = dag.get_task("observe_print_output")
    assert "wait_running_print" in observe.get_flat_relative_ids(upstream=True)
    assert "wait_finished_print" not in task_types(dag), "the print job is unbounded"


def test_failure_checks_dag_has_the_three_checks(dags: dict[str, Any]) -> None:
    types = task_types(dags["flink_phase1_failure_checks"])
    assert {"wait_finished_strict_json", "submit_too_many_slots", "submit_bad_sql"} <= set(types)


def test_dag_files_import_the_helpers_without_the_dags_folder_on_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p).resolve() != DAGS])
    bag = load_dagbag()
    assert bag.import_errors == {}


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_each_submit_renders_again_when_it_is_cleared(dags: dict[str, Any], dag_id: str) -> None:
    """render_<v> is a setup task of submit_<v>: clearing the submit (a rerun from the UI) renders the next
    attempt, whose outputs are told apart from the first's (print identifier, sink offsets)."""
    dag = dags[dag_id]
    for submit in (t for t in dag.tasks if t.task_id.startswith("submit_")):
        render = dag.get_task(submit.task_id.replace("submit_", "render_"))
        assert render.is_setup and render.task_id in submit.upstream_task_ids
        cleared = dag.partial_subset(task_ids=[submit.task_id], include_downstream=True, include_upstream=False)
        assert render.task_id in cleared.task_dict
        assert "validate_settings" not in cleared.task_dict and "produce_fixture" not in cleared.task_dict
    if dag_id == "flink_phase0_print":
        observe = dag.get_task("observe_print_output")
        assert "render_print" in observe.upstream_task_ids  # it reads the attempt's print identifier


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_waits_are_deferrable(dags: dict[str, Any], dag_id: str) -> None:
    waits = [t for t in dags[dag_id].tasks if t.task_id.startswith("wait_")]
    assert waits and all(t.partial_kwargs.get("deferrable", getattr(t, "deferrable", None)) is True for t in waits)
