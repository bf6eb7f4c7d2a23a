"""The helpers of the lesson DAGs in ``dags/``, split by concern.

- :mod:`~flink_lessons.rules`: the value checks (topics, brokers, durations...), pure Python;
- :mod:`~flink_lessons.settings`: the one settings system: keys, families, merging, validation, docs tables;
- :mod:`~flink_lessons.families`: the Variable families of every DAG;
- :mod:`~flink_lessons.scenarios`, :mod:`~flink_lessons.fixtures`, :mod:`~flink_lessons.compare`,
  :mod:`~flink_lessons.reports`: the SQL scenarios of phases 0 and 1;
- :mod:`~flink_lessons.job_names`: the one Flink job-name convention, ``<job>@<version>[#<run tag>]``;
- :mod:`~flink_lessons.pyflink`, :mod:`~flink_lessons.restore_points`, :mod:`~flink_lessons.last_good`: the
  PyFlink jobs of phase 4, their snapshots and the "last good" record;
- :mod:`~flink_lessons.operators` and :mod:`~flink_lessons.scenario_dag`: the lessons' own small operators and
  the arguments of the phase 0/1 DAGs, whose one graph is in ``dags/phase0_1_scenarios.py``.

Importing any of it does no I/O: files, Variables, connections and Flink are touched by tasks, at run time.
"""
