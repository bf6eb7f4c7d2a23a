"""Airflow DAG, phase 1: event time from epoch and ISO timestamps, a watermark, tumbling and hopping windows.

Scenario include/sql/phase1_event_time_watermarks. Edit ``window_size``, ``window_slide`` or
``watermark_delay`` in the Variable ``flink_phase1`` (or the run conf) and the next run's windows follow;
expected rows exist for the documented settings (see the scenario's README).
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import EVENT_TIME_WATERMARKS

with lesson_dag(EVENT_TIME_WATERMARKS, doc=__doc__, tags=["phase1"]) as lesson:
    lesson.prepare() >> lesson.run("windows", "RUNNING", "FINISHED") >> lesson.check("windows") >> lesson.report()
