"""FlinkJobLink: the Flink web UI URL from the task's job id XCom and the operator's connection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_flink_provider.links import flink_ui
from airflow_flink_provider.links.flink_ui import FlinkJobLink, job_url
from airflow_flink_provider.operators.savepoint import FlinkStopJobOperator

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def xcom(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    values: dict[str, Any] = {}

    def get_value(*, ti_key: Any, key: str) -> Any:
        return values.get(key)

    monkeypatch.setattr(flink_ui.XCom, "get_value", get_value)
    return values


def test_link_uses_the_rest_address(monkeypatch: pytest.MonkeyPatch, xcom: dict[str, Any]) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLINK_LINK_A",
        json.dumps({"conn_type": "flink", "host": "https://flink.example.com/prefix", "port": 443}),
    )
    xcom["flink_job_id"] = JOB
    op = FlinkStopJobOperator(task_id="stop", job_id=JOB, flink_conn_id="flink_link_a")

    assert FlinkJobLink().get_link(op, ti_key=object()) == (  # type: ignore[arg-type]
        f"https://flink.example.com:443/prefix/#/job/running/{JOB}/overview"
    )


def test_ui_url_extra_overrides(monkeypatch: pytest.MonkeyPatch, xcom: dict[str, Any]) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLINK_LINK_B",
        json.dumps({"conn_type": "flink", "host": "10.0.0.5", "extra": {"ui_url": "https://ui.example.com/flink/"}}),
    )
    xcom["flink_job_id"] = JOB
    op = FlinkStopJobOperator(task_id="stop", job_id=JOB, flink_conn_id="flink_link_b")

    assert FlinkJobLink().get_link(op, ti_key=object()) == f"https://ui.example.com/flink/#/job/running/{JOB}/overview"  # type: ignore[arg-type]


def test_no_job_id_gives_no_link(xcom: dict[str, Any]) -> None:
    op = FlinkStopJobOperator(task_id="stop", job_id=JOB, flink_conn_id="does_not_matter")
    assert FlinkJobLink().get_link(op, ti_key=object()) == ""  # type: ignore[arg-type]


def test_job_url_joins_cleanly() -> None:
    assert job_url("http://127.0.0.1:8081/", JOB) == f"http://127.0.0.1:8081/#/job/running/{JOB}/overview"
    assert FlinkJobLink().name == "Flink Job"


def test_operators_log_the_job_url_once_as_soon_as_they_know_the_job(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per job in the task log (one click from the Logs tab): SQL per INSERT, jar after submit, cancel."""
    from tests.unit._flink_fakes import FakeGateway, FakeRest, make_context
    from tests.unit.test_operators_job_submit import make_operator as make_submit
    from tests.unit.test_operators_sql_gateway import make_operator as make_sql

    rest = FakeRest()
    sql_job = make_sql(rest, FakeGateway(rest)).execute(make_context())["job_ids"][0]
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK")
    jar_job = make_submit(rest, jar=str(jar), entry_class="com.example.Job").execute(make_context())
    from airflow_flink_provider.operators.savepoint import FlinkCancelJobOperator

    cancel = FlinkCancelJobOperator(task_id="cancel", job_id=JOB, poll_interval=0)
    cancel._rest_hook = lambda: rest  # type: ignore[method-assign]
    rest.add_job(JOB, "RUNNING")
    rest.state_plan[JOB] = ["RUNNING", "CANCELED"]
    cancel.execute(make_context())

    logged = capsys.readouterr().out
    for job_id in (sql_job, jar_job, JOB):
        line = f"Flink web UI of job {job_id}: http://127.0.0.1:"
        assert logged.count(line) == 1, (job_id, logged)
        assert f"/#/job/running/{job_id}/overview" in logged
