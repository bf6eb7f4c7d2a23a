"""Airflow DAG, phase 1: malformed JSON, dropped by json.ignore-parse-errors (a) or routed to a dead-letter topic (b).

Scenario include/sql/phase1_malformed_json: two scripts, run side by side from the same fixture. ``report``
checks (b)'s books: clean rows + dead letters = events produced. Settings: Variable ``flink_phase1``.
"""

from __future__ import annotations

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import MALFORMED_JSON

with lesson_dag(MALFORMED_JSON, doc=__doc__, tags=["phase1"]) as lesson:
    prepared = lesson.prepare()
    dropped = (prepared >> lesson.run("ignore_parse_errors", "RUNNING", "FINISHED")
               >> lesson.check("ignore_parse_errors"))
    routed = prepared >> lesson.run("dead_letter", "RUNNING", "FINISHED") >> lesson.check("dead_letter")
    [dropped, routed] >> lesson.report()
