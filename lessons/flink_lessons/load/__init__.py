"""The load command and the one rate-controlled producer of the lessons and benchmarks.

``python -m flink_lessons.load --topic t --rate 50000 --keys 10000 --skew zipf:1.2 --partitions 4 --duration 60s``
(:mod:`~flink_lessons.load.cli`); from Python, :func:`~flink_lessons.load.run.load` with a
:class:`~flink_lessons.load.run.LoadSpec`. The parts: :mod:`~flink_lessons.load.keys` (uniform or Zipf keys
from a seed), :mod:`~flink_lessons.load.schemas` (event values), :mod:`~flink_lessons.load.producer` (the rate
loop over confluent-kafka), :mod:`~flink_lessons.load.partitioner` (Kafka's murmur2 partitioner) and
:mod:`~flink_lessons.load.kafka` (admin API, reading topics back).
"""
