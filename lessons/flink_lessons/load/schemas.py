"""The event schemas the load command writes: JSON values built by one byte-format each, cheaply. Pure.

``orders`` has the shape of the phase-0 fixture (``include/sql/phase0_print/input.jsonl``): ``order_id``
(the event's sequence number), ``customer`` (the event's key), ``amount``, ``currency`` and ``ts_ms`` (when it
was produced, epoch milliseconds), so every lesson's ``orders`` table reads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

CURRENCIES = (b"EUR", b"USD", b"GBP")
AMOUNTS = tuple(f"{(7 + 13 * i) % 200 + 0.5 + (i % 4) * 0.25:.2f}".encode() for i in range(101))
"""Amounts cycled by ``order_id`` (0.50 .. 200.25): deterministic, and every one of them > 0."""


class Schema(Protocol):
    """What the load command needs of a schema."""

    @property
    def name(self) -> str:
        """The ``--schema`` value."""

    @property
    def description(self) -> str:
        """The fields, for the help text."""

    def values(self, first_id: int, keys: Sequence[bytes], ts_ms: int) -> list[bytes]:
        """The message values of events ``first_id, first_id + 1, ...``, one per key.

        :param first_id: the first event's sequence number.
        :param keys: each event's key.
        :param ts_ms: their event time, epoch milliseconds.
        """
        ...


@dataclass(frozen=True)
class Orders:
    """``{"order_id", "customer", "amount", "currency", "ts_ms"}``; ``customer`` is the event's key."""

    name: str = "orders"
    description: str = (
        "order_id BIGINT, customer STRING (the key), amount DECIMAL(10, 2), currency STRING, ts_ms BIGINT"
    )

    def values(self, first_id: int, keys: Sequence[bytes], ts_ms: int) -> list[bytes]:
        """See :meth:`Schema.values`."""
        fmt = b'{"order_id":%d,"customer":"%s","amount":%s,"currency":"%s","ts_ms":%d}'
        amounts, currencies = AMOUNTS, CURRENCIES
        return [
            fmt % (order_id, key, amounts[order_id % 101], currencies[order_id % 3], ts_ms)
            for order_id, key in enumerate(keys, first_id)
        ]

    @staticmethod
    def parse(value: bytes) -> dict[str, object]:
        """One value back as a dict (tests, lessons).

        :param value: a message value.
        """
        return dict(json.loads(value))


@dataclass(frozen=True)
class WideOrders(Orders):
    """:class:`Orders` plus ``note``: the event's key repeated to ``pad`` characters, so each event weighs
    about a kilobyte in Kafka and between Flink's tasks (lesson 3: a network buffer then holds tens of
    events, not hundreds, and a slow operator back-pressures its source within a few hundred events)."""

    name: str = "orders_wide"
    description: str = Orders.description + ", note STRING (the key repeated to 1024 characters)"
    pad: int = 1024

    def values(self, first_id: int, keys: Sequence[bytes], ts_ms: int) -> list[bytes]:
        """See :meth:`Schema.values`."""
        notes: dict[bytes, bytes] = {}
        out = []
        for value, key in zip(super().values(first_id, keys, ts_ms), keys, strict=True):
            note = notes.get(key)
            if note is None:
                note = notes[key] = (key * (self.pad // max(len(key), 1) + 1))[: self.pad]
            out.append(b'%s,"note":"%s"}' % (value[:-1], note))
        return out


SCHEMAS: dict[str, Schema] = {"orders": Orders(), "orders_wide": WideOrders()}
"""Schema name (``--schema``) -> schema."""


def schema_named(name: str) -> Schema:
    """The schema called ``name``.

    :param name: the ``--schema`` value.
    :raises ValueError: naming the known schemas.
    """
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(sorted(SCHEMAS))}") from None
