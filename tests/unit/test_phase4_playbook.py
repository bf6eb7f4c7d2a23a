"""The phase 4 DAGs without Flink: they parse without I/O, the upgrade's branches and trigger rules are the
playbook's, and playbooks/rollback-retry.md has a section per task and the current settings tables."""

from __future__ import annotations

import importlib.util
import re
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flink_lessons.families import FAMILIES
from flink_lessons.settings import RUN_CONF, VariableError, merge, schema_markdown, validate

from airflow_flink_provider.retry import FlinkRetryPolicy

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit

DAG_FILES = ("flink_deploy_pyflink", "flink_upgrade_with_rollback", "flink_recover_from_savepoint", "flink_deploy_sql")
PLAYBOOK = (ROOT / "playbooks" / "rollback-retry.md").read_text()


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("I/O at DAG parse time")


def load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import a DAG file with Variables, connections and sockets forbidden."""
    from airflow.sdk import BaseHook, Variable

    monkeypatch.setattr(Variable, "get", _forbidden)
    monkeypatch.setattr(BaseHook, "get_connection", _forbidden)
    monkeypatch.setattr(socket, "create_connection", _forbidden)
    spec = importlib.util.spec_from_file_location(f"dag_{name}", ROOT / "dags" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {name: load(name, monkeypatch).dag for name in DAG_FILES}


def test_dags_parse_without_io(dags: dict[str, Any]) -> None:
    assert set(dags) == set(DAG_FILES)
    for name, dag in dags.items():
        assert dag.dag_id == name
        assert dag.schedule is None


def test_upgrade_branches_and_trigger_rules(dags: dict[str, Any]) -> None:
    dag = dags["flink_upgrade_with_rollback"]
    task = dag.task_dict
    assert task["check_stop"].downstream_task_ids == {"savepoint_taken", "retry_stop_with_savepoint", "abort_and_page"}
    # Flink is asked by provider operators, the branches decide on their XComs: the old job's status after the
    # stop, the failed version's root cause after it was cancelled (not on the healthy path).
    assert task["old_job_status"].task_type == task["new_version_status"].task_type == "FlinkJobStatusOperator"
    assert task["old_job_status"].upstream_task_ids == {"stop_with_savepoint", "find_running_job"}
    assert {"old_job_status"} <= task["check_stop"].upstream_task_ids & task["abort_and_page"].upstream_task_ids
    assert "find_running_job" in task["check_stop"].upstream_task_ids  # runs even if stop and status both failed
    assert task["new_version_status"].upstream_task_ids == {"cancel_new_version", "resolve_settings"}
    assert "new_version_status" in task["fail_upgrade"].upstream_task_ids
    assert task["check_health"].downstream_task_ids == {"savepoint_new_version", "cancel_new_version"}
    assert task["savepoint_ready"].upstream_task_ids == {"savepoint_taken", "retry_stop_with_savepoint"}
    rules = {task_id: str(t.trigger_rule.value if hasattr(t.trigger_rule, "value") else t.trigger_rule)
             for task_id, t in task.items()}  # fmt: skip
    assert rules["savepoint_ready"] == "none_failed_min_one_success"
    assert rules["check_health"] == rules["fail_upgrade"] == rules["new_version_status"] == "none_skipped"
    # old_job_status runs after the stop whatever its outcome: a skipped upstream would skip check_stop (its rule
    # counts skipped tasks as not done), and without the running job there is nothing to ask about.
    assert rules["check_stop"] == rules["old_job_status"] == rules["savepoint_taken"] == "all_done_min_one_success"
    assert task["retry_stop_with_savepoint"].retries == 3
    assert task["stop_with_savepoint"].retries == 0
    for task_id in ("retry_stop_with_savepoint", "submit_new_version", "rollback_to_previous_version"):
        assert isinstance(task[task_id].retry_policy, FlinkRetryPolicy), task_id
    # The rollback restores the same savepoint as the upgrade.
    assert "savepoint_ready" in task["rollback_to_previous_version"].upstream_task_ids
    assert "savepoint_ready" in task["submit_new_version"].upstream_task_ids
    assert {t.task_id for t in dag.leaves} == {"abort_and_page", "record_last_good", "fail_upgrade"}


def test_playbook_has_a_section_per_task(dags: dict[str, Any]) -> None:
    sections = set(re.findall(r"^### `(\w+)`", PLAYBOOK, flags=re.MULTILINE))
    tasks = {task_id for dag in dags.values() for task_id in dag.task_dict}
    assert tasks - sections == set(), "tasks without a playbook section"
    assert sections - tasks == set(), "playbook sections of tasks that do not exist"
    upgrade = PLAYBOOK.split("## The upgrade, task by task")[1].split("\n## ")[0]
    order = re.findall(r"^### `(\w+)`", upgrade, flags=re.MULTILINE)
    dag = dags["flink_upgrade_with_rollback"]
    assert sorted(order) == sorted(dag.task_dict), "the upgrade section covers exactly the upgrade's tasks"
    for task_id in order:  # in an order the DAG can run them: every upstream task comes first
        assert all(order.index(up) < order.index(task_id) for up in dag.task_dict[task_id].upstream_task_ids)


@pytest.mark.parametrize("variable", ["flink_phase4_pyflink", "flink_phase4_sql"])
def test_playbook_settings_tables_are_current(variable: str) -> None:
    match = re.search(rf"<!-- table: {variable} .*?-->\n(.*?)\n<!-- end table -->", PLAYBOOK, flags=re.DOTALL)
    assert match, f"no table for {variable}"
    assert match.group(1).strip() == schema_markdown(FAMILIES[variable])


def test_upgrade_trigger_form_params_are_settings_the_conf_still_overrides(dags: dict[str, Any]) -> None:
    """The Trigger form (params) of flink_upgrade_with_rollback: version, blank by default (blank leaves the
    Variable's value), and fault_injection, "none" by default (a choice the form shows, never null); a given one
    (form or run conf) overrides the Variable's, and the Variable accepts it."""
    from airflow.sdk.exceptions import ParamValidationError
    from flink_lessons.operators.pyflink import settings_in_conf

    dag = dags["flink_upgrade_with_rollback"]
    assert dag.params.dump() == {"version": None, "fault_injection": "none"}
    dag.params.validate()  # the form can be submitted as it opens
    assert dag.params.get_param("fault_injection").schema["enum"] == ["none", "savepoint_failure"]
    with pytest.raises(ParamValidationError):
        dag.params.get_param("fault_injection").resolve("typo")
    family = FAMILIES["flink_phase4_pyflink"]
    for value in ("none", "savepoint_failure", None):  # null: a Variable written before "none" existed
        assert validate(family, merge(family, (RUN_CONF, {"fault_injection": value})))["fault_injection"] == value
    with pytest.raises(VariableError, match="fault_injection"):
        validate(family, merge(family, (RUN_CONF, {"fault_injection": "typo"})))
    resolve = dag.task_dict["resolve_settings"]
    assert set(resolve.setting_params) == {"version", "fault_injection"} and not resolve.param_names
    form = {"version": None, "fault_injection": "", "window": "20s"}
    assert settings_in_conf(form, resolve.param_names, resolve.setting_params) == {"window": "20s"}
    conf = {"version": "v2", "fault_injection": "savepoint_failure"}
    assert settings_in_conf(conf, resolve.param_names, resolve.setting_params) == conf
    recover = dags["flink_recover_from_savepoint"].task_dict["resolve_recovery"]
    assert settings_in_conf({"version": "v2", "if_running": "fail", "window": "5s"}, recover.param_names, ()) == {
        "window": "5s"
    }
