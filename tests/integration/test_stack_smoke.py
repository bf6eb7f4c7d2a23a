"""The stack's smoke test: 1,000 events through Kafka -> Flink SQL (via the SQL Gateway) -> Kafka."""

from __future__ import annotations

import pytest

from stack.smoke import run_pipeline

pytestmark = pytest.mark.integration


def test_kafka_to_flink_sql_to_kafka_exact_rows() -> None:
    rows, state = run_pipeline(1000)
    assert state == "FINISHED"
    assert rows == [{"id": i, "user": f"U{i % 7}", "doubled": i * 1.0} for i in range(0, 1000, 2)]
