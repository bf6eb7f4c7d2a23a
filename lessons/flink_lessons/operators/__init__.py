"""The lessons' own small operators, used next to the provider's and the Kafka provider's.

- :mod:`~flink_lessons.operators.kafka`: create topics; where a topic's next output starts;
- :mod:`~flink_lessons.operators.jobs`: the job ids a script submitted, this run's unfinished jobs, the
  running versions of a PyFlink job (by the job-name convention);
- :mod:`~flink_lessons.operators.scenario`: the phase 0/1 steps: validate, render, observe, compare, report;
- :mod:`~flink_lessons.operators.pyflink`: the phase 4 steps: resolve a version, find a restore point,
  record the last good version;
- :mod:`~flink_lessons.operators.sensors`: the provider's health and job-state sensors, with their
  thresholds and timeouts from the run's settings;
- :mod:`~flink_lessons.operators.sql_deploy`: flink_deploy_sql's own steps.

Plain operators rather than TaskFlow functions: the DAG files stay fast to parse, and everything expensive
(hooks, Jinja, files) is imported or read inside ``execute``, at run time.
"""
