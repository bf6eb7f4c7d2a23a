"""Phase 0: Kafka -> Flink SQL -> print sink, observed through Flink's REST API.

Produces the order fixture (include/sql/phase0_print/input.jsonl), submits print.sql.j2 through the SQL
Gateway, waits until the job runs, reads this run's lines of the print sink from the TaskManagers' stdout
(``/taskmanagers/<id>/stdout``) into the task log of ``observe_print_output``, compares them with
expected/print.txt, and cancels the (unbounded) job. Settings: Variable ``flink_phase0``
(docs/local-setup.md). Try ``airflow dags test flink_phase0_print``.
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

from common.pipeline import TASK_DEFAULTS, print_scenario_tasks
from common.scenarios import PHASE0_PRINT as SCENARIO

with DAG(
    dag_id=SCENARIO.dag_id,
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=TASK_DEFAULTS,
    tags=["flink", "phase0"],
    doc_md=__doc__,
):
    print_scenario_tasks(SCENARIO)
