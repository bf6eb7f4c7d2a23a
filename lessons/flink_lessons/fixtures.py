"""Scenario fixtures: JSONL files whose every line is one Kafka message value, produced verbatim.

Malformed events are lines that are not valid JSON, kept as they are: the scenarios need them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def fixture_lines(path: str | Path) -> list[str]:
    """The message values of a fixture, in file order; blank lines are skipped.

    :param path: the JSONL fixture.
    """
    return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def fixture_messages(path: str) -> Iterator[tuple[None, bytes]]:
    """The ``producer_function`` of ProduceToTopicOperator: ``(key, value)`` pairs of a fixture.

    Messages have no key: every scenario topic has one partition, so the order is the file's order.

    :param path: the JSONL fixture.
    """
    for line in fixture_lines(path):
        yield None, line.encode("utf-8")
