"""Phase 1: ROW_NUMBER deduplication, keep-first (append) and keep-last (upsert).

Runs include/sql/phase1_dedup (see its README): produces the fixture, submits the SQL through the SQL Gateway,
waits for the bounded jobs to finish, reads every sink topic and compares it with the expected rows (a
readable diff on mismatch), then reports. Settings: Variable ``flink_phase1`` (docs/local-setup.md).
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG

# The DAG processor puts the dags folder on sys.path, a plain DagBag (`airflow dags list-import-errors
# --local`) does not: make the shared helpers in dags/common importable either way.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from common.pipeline import TASK_DEFAULTS, scenario_tasks
from common.scenarios import DEDUP as SCENARIO

with DAG(
    dag_id=SCENARIO.dag_id,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=TASK_DEFAULTS,
    tags=["flink", "phase1"],
    doc_md=__doc__,
):
    scenario_tasks(SCENARIO)
