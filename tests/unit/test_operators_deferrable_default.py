"""``deferrable`` defaults to Airflow's ``[operators] default_deferrable``, like the official providers.

The default is read when the module is imported (as in the official providers), so each setting is checked in a
fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

BUILD_ALL = """
import json
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
from airflow_flink_provider.sensors.health import FlinkJobHealthSensor
from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

job = "0123456789abcdef0123456789abcdef"
built = {
    "sql": FlinkSqlGatewayOperator(task_id="sql", sql="SELECT 1"),
    "submit": FlinkJobSubmitOperator(task_id="submit", jar_id="x.jar"),
    "state": FlinkJobStateSensor(task_id="state", job_id=job),
    "health": FlinkJobHealthSensor(task_id="health", job_id=job),
}
print(json.dumps({name: op.deferrable for name, op in built.items()}))
"""


@pytest.mark.parametrize("setting", ["True", "False", None])
def test_every_operator_and_sensor_follows_the_setting(setting: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if key != "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"}
    if setting is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    done = subprocess.run([sys.executable, "-c", BUILD_ALL], env=env, capture_output=True, text=True, check=True)
    expected = setting == "True"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == dict.fromkeys(
        ("sql", "submit", "state", "health"), expected
    )
