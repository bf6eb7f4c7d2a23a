"""Phase-0 order events for the throughput and recovery benchmarks, and what the phase-0 filter keeps.

Events have the shape of the phase-0 fixture (``include/sql/phase0_print/input.jsonl``): the fixture's
valid lines are cycled, each copy with a fresh ``order_id`` and ``ts_ms``, so sizes and the share of
events the filter (``amount > 0``) drops match the scenario's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from flink_lessons.load.producer import order_id_of

__all__ = ["PHASE0_FIXTURE", "EventFactory", "load_templates", "order_id_of", "passes_filter"]

PHASE0_FIXTURE = Path(__file__).resolve().parents[1] / "include" / "sql" / "phase0_print" / "input.jsonl"

FALLBACK_TEMPLATES: tuple[dict[str, Any], ...] = (
    {"order_id": 1, "customer": "alice", "amount": 12.5, "currency": "EUR", "ts_ms": 0},
    {"order_id": 2, "customer": "bob", "amount": 80.0, "currency": "USD", "ts_ms": 0},
    {"order_id": 3, "customer": "carol", "amount": 0.0, "currency": "EUR", "ts_ms": 0},
    {"order_id": 4, "customer": "dave", "amount": 150.0, "currency": "EUR", "ts_ms": 0},
)
"""Used when the phase-0 fixture is not there; same shape."""


def load_templates(path: Path = PHASE0_FIXTURE) -> list[dict[str, Any]]:
    """The fixture's events that are JSON objects with an ``order_id`` (malformed lines are left out).

    :param path: a JSONL fixture.
    """
    if not path.exists():
        return [dict(t) for t in FALLBACK_TEMPLATES]
    templates = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "order_id" in event:
            templates.append(event)
    return templates or [dict(t) for t in FALLBACK_TEMPLATES]


def passes_filter(event: dict[str, Any]) -> bool:
    """Whether the phase-0 transformation keeps the event (its ``WHERE amount > 0``).

    :param event: an order event.
    """
    amount = event.get("amount")
    return isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount > 0


class EventFactory:
    """Serialized events ``order_id = first, first+1, ...`` built from the templates, cheaply.

    :param templates: event shapes to cycle through.
    """

    def __init__(self, templates: Sequence[dict[str, Any]]) -> None:
        if not templates:
            raise ValueError("no event templates")
        self.templates = list(templates)
        # Pre-split each template around order_id and ts_ms so an event is one string format.
        self._formats = []
        for template in self.templates:
            fields = {**template, "order_id": "\x00ID\x00", "ts_ms": "\x00TS\x00"}
            text = json.dumps(fields, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
            self._formats.append(text.replace('"\\u0000ID\\u0000"', "{id}").replace('"\\u0000TS\\u0000"', "{ts}"))
        self.passing = [passes_filter(t) for t in self.templates]

    def value(self, order_id: int, ts_ms: int) -> bytes:
        """The message value of event ``order_id``.

        :param order_id: the event's id (also picks its template).
        :param ts_ms: its event time, epoch milliseconds.
        """
        return self._formats[order_id % len(self._formats)].format(id=order_id, ts=ts_ms).encode()

    def passes(self, order_id: int) -> bool:
        """Whether event ``order_id`` survives the filter.

        :param order_id: the event's id.
        """
        return self.passing[order_id % len(self.passing)]

    def count_passing(self, first: int, last: int) -> int:
        """How many of the events ``first <= id < last`` survive the filter.

        :param first: first id.
        :param last: one past the last id.
        """
        return sum(1 for i in range(first, last) if self.passes(i))

    def batch(self, first: int, count: int, ts_ms: int) -> tuple[list[bytes | None], list[bytes]]:
        """Events ``first .. first + count - 1`` without keys, as the load command's producer takes them
        (:data:`flink_lessons.load.producer.EventBatch`).

        :param first: first order id.
        :param count: how many.
        :param ts_ms: their event time.
        """
        return [None] * count, [self.value(order_id, ts_ms) for order_id in range(first, first + count)]

    def lines(self, count: int, first: int = 0, ts_ms: int = 0) -> Iterator[bytes]:
        """``count`` events in order.

        :param count: how many.
        :param first: first order id.
        :param ts_ms: event time of all of them.
        """
        for order_id in range(first, first + count):
            yield self.value(order_id, ts_ms)
