"""What a DAG file pays at parse time for the provider: the modules DAG files import (operators, sensors, triggers,
hooks, the retry policy) load no HTTP or retry library; the transport loads them when a hook or trigger first talks
to Flink (tests/unit/test_hooks_base.py runs those paths). The check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

DAG_FACING = (
    "airflow_flink_provider.operators.sql_gateway",
    "airflow_flink_provider.operators.job_submit",
    "airflow_flink_provider.operators.savepoint",
    "airflow_flink_provider.sensors.job_state",
    "airflow_flink_provider.sensors.health",
    "airflow_flink_provider.triggers.job_state",
    "airflow_flink_provider.triggers.health",
    "airflow_flink_provider.hooks.flink_rest",
    "airflow_flink_provider.hooks.sql_gateway",
    "airflow_flink_provider.retry",
    "airflow_flink_provider.get_provider_info",
)
RUNTIME_ONLY = ("requests", "urllib3", "httpx", "httpcore", "tenacity")


def loaded_after(imports: str) -> set[str]:
    """Top-level packages loaded by ``imports`` in a fresh interpreter, beyond what ``airflow.sdk`` loads."""
    code = (
        "import sys, json, airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"{imports}\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in set(sys.modules) - before})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_dag_facing_modules_leave_the_http_and_retry_libraries_to_runtime() -> None:
    loaded = loaded_after("\n".join(f"import {module}" for module in DAG_FACING))
    assert not loaded & set(RUNTIME_ONLY), sorted(loaded & set(RUNTIME_ONLY))
    assert "airflow_flink_provider" in loaded
