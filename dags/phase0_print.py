"""Phase 0: Kafka -> Flink SQL -> print sink, observed through Flink's REST API.

The order fixture (include/sql/phase0_print/input.jsonl) goes to Kafka, print.sql.j2 runs through the SQL
Gateway, and once the job runs, ``observe_print_output`` reads this attempt's print-sink lines from the
TaskManagers' stdout (``/taskmanagers/<id>/stdout``) into its log; ``compare_print`` checks them against
expected/print.txt. The job is unbounded: the clean-up teardown cancels it. Settings: Variable
``flink_phase0`` (docs/local-setup.md). Try ``airflow dags test flink_phase0_print``.
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import PHASE0_PRINT

with lesson_dag(PHASE0_PRINT, doc=__doc__, tags=["phase0"]) as lesson:
    lesson.prepare() >> lesson.run("print", "RUNNING") >> lesson.check("print") >> lesson.report()
