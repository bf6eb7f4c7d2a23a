"""Benchmarks of the Flink provider against the CLI, raw REST and Kafka's own tools, on the local stack.

Run ``make bench`` (or ``python -m benchmarks.run --help``); see ``benchmarks/README.md``.
"""
