"""Airflow DAG, phase 1 failure checks: three tasks fail on purpose, each with the error and hint a user should see.

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

from flink_lessons.scenario_dag import lesson_dag
from flink_lessons.scenarios import FAILURE_CHECKS

with lesson_dag(FAILURE_CHECKS, doc=__doc__, tags=["phase1", "failure-checks"]) as lesson:
    lesson.prepare() >> [lesson.run("strict_json", "FINISHED"), lesson.run("too_many_slots"), lesson.run("bad_sql")]
