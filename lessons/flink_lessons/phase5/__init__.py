"""Roadmap phase 5: Kafka orders -> Flink enrichment and aggregation -> Iceberg, checked against a reference.

The parts, each usable on its own (from a DAG task, a test, a benchmark or the command line):

- :mod:`~flink_lessons.phase5.params`: the pipeline's parameters (topics, window, watermark delay,
  parallelism, checkpoint interval...) and the Iceberg catalog, validated before anything is submitted.
- :mod:`~flink_lessons.phase5.sql`: the Flink SQL scripts (``include/sql/phase5_lakehouse``) rendered from them:
  the idempotent setup (catalog, database, tables), the streaming job, the naive variant, the read-back query.
- :mod:`~flink_lessons.phase5.dataset`: the seeded dataset (sizes ``XS``, ``S``, ``M``), its manifest, the topics
  and the rate-controlled production to Kafka (``python -m flink_lessons.phase5.dataset --help``).
- :mod:`~flink_lessons.phase5.reference`: what the tables must hold, computed in plain Python from the dataset
  by the documented rules (lateness, duplicates, dimension versions), never from Flink's output.
- :mod:`~flink_lessons.phase5.readers`: the tables as written (pyiceberg for the append tables, a batch query
  through the SQL Gateway for the upsert table) and their snapshot/file counts.
- :mod:`~flink_lessons.phase5.acceptance`: the comparison, its table and a readable diff.

The rules (lateness, duplicates, the temporal join) are in ``include/sql/phase5_lakehouse/README.md`` and
``docs/architecture.md``.
"""

from __future__ import annotations

from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[3] / "include" / "sql" / "phase5_lakehouse"
"""The folder of the phase 5 SQL templates, fixtures and expected outputs."""
