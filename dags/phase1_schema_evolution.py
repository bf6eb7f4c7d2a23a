"""Airflow DAG, phase 1: schema evolution: new and missing fields, COALESCE defaults, ALTER TABLE ADD.

Scenario include/sql/phase1_schema_evolution: one script, two jobs (``<scenario>@schema_evolution.v1`` and
``.v2`` in the Flink UI), the second after ALTER TABLE ADD. Settings: Variable ``flink_phase1``.
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import SCHEMA_EVOLUTION

with lesson_dag(SCHEMA_EVOLUTION, doc=__doc__, tags=["phase1"]) as lesson:
    (lesson.prepare() >> lesson.run("schema_evolution", "RUNNING", "FINISHED")
     >> lesson.check("schema_evolution") >> lesson.report())
