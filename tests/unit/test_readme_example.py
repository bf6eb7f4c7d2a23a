"""The README's "Using the provider" example builds real operators (so it cannot drift from their API)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from airflow.sdk import DAG

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"


def test_using_the_provider_example_builds_every_operator() -> None:
    section = README.read_text().split("## Using the provider", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the section has no python example"
    namespace: dict[str, object] = {}
    with DAG("readme_example", schedule=None) as dag:
        exec(compile(code.group(1), "README.md", "exec"), namespace)
    assert sorted(dag.task_dict) == [
        "cancel",
        "job_healthy",
        "job_running",
        "savepoint",
        "stop_v1",
        "submit_pyflink",
        "submit_sql",
    ]
    assert namespace["healthy"].policy.min_checkpoints == 3  # type: ignore[attr-defined]
    assert namespace["sql"].deferrable is True  # type: ignore[attr-defined]
    assert namespace["stop"].drain is False  # type: ignore[attr-defined]
