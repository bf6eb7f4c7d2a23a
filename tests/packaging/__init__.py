"""Shared by the packaging and registration tests: Airflow as a fresh install sees it."""

from __future__ import annotations

import os
from pathlib import Path


def fresh_airflow_env(home: Path) -> dict[str, str]:
    """This process's environment without the project's Airflow, stack and venv settings, in an empty ``home``.

    :param home: the AIRFLOW_HOME to use (an empty folder: SQLite metadata DB, no examples).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "FLINK_STACK_"))
        and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return env | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
