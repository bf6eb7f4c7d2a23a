"""Phase 1 failure checks: three tasks that fail on purpose, each with the error and hint a user should see.

- ``wait_finished_strict_json``: without 'json.ignore-parse-errors' the malformed second event fails the
  job; the log shows the JsonParseException (the message and the offending payload) and a hint.
- ``submit_too_many_slots``: a job whose parallelism is the cluster's slot count + 1 is refused before it is
  submitted, with "Not enough task slots" and a hint.
- ``submit_bad_sql``: a syntax error (a trailing comma before FROM) is reported with its script line and
  column, and the line itself.

A run of this DAG therefore ends ``failed``: read the three failed tasks' logs (docs/local-setup.md,
"Diagnosing failures", says what to look for). Settings: Variable ``flink_phase1``.
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

from common.pipeline import TASK_DEFAULTS, failure_check_tasks
from common.scenarios import FAILURE_CHECKS as SCENARIO

with DAG(
    dag_id=SCENARIO.dag_id,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=TASK_DEFAULTS,
    tags=["flink", "phase1", "failure-checks"],
    doc_md=__doc__,
):
    failure_check_tasks(SCENARIO)
