"""Airflow DAG, phase 1: ROW_NUMBER deduplication, keep-first (append) and keep-last (upsert).

Scenario include/sql/phase1_dedup (its README explains the duplicates and what each sink keeps). The
keep-last sink is an upsert topic: ``compare_dedup`` compacts it by key before comparing, so the table's
final state is checked, not its changelog. Settings: Variable ``flink_phase1``; the expected rows depend on
``watermark_delay``.
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import DEDUP

with lesson_dag(DEDUP, doc=__doc__, tags=["phase1"]) as lesson:
    lesson.prepare() >> lesson.run("dedup", "RUNNING", "FINISHED") >> lesson.check("dedup") >> lesson.report()
