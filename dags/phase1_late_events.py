"""Airflow DAG, phase 1: late events: which events a window drops for a watermark delay, captured to their own topic.

Scenario include/sql/phase1_late_events. ``report`` checks that the events counted in windows plus the
events captured as late add up to what was produced. The expected rows depend on ``window_size`` and
``watermark_delay`` (Variable ``flink_phase1``).
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import LATE_EVENTS

with lesson_dag(LATE_EVENTS, doc=__doc__, tags=["phase1"]) as lesson:
    (lesson.prepare() >> lesson.run("late_events", "RUNNING", "FINISHED")
     >> lesson.check("late_events") >> lesson.report())
