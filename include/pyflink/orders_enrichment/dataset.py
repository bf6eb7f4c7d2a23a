"""The orders-enrichment test dataset and its oracle, in plain Python (no PyFlink, no Kafka).

:func:`orders` makes a deterministic stream of order events that exercises every branch of the job: paid
and cancelled orders, orders with quantity 0, known products of several categories and an unknown one.
:func:`expected_windows` computes, independently of Flink, what the job must write for them, and
:func:`totals` sums rows per category, to compare whole runs that span an upgrade.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, also when run as a script

from orders_enrichment.jobkit import DEFAULT_PRODUCTS

BASE_TS = 1_704_067_200_000
"""2024-01-01T00:00:00Z in epoch milliseconds: where the test events start."""

PRODUCT_CYCLE = ("p-100", "p-200", "p-101", "p-300", "p-999", "p-400", "p-201")
"""Products the events cycle through; ``p-999`` is not in the reference file (category ``UNKNOWN``)."""


def load_products(path: str | Path = DEFAULT_PRODUCTS) -> dict[str, str]:
    """The reference file as ``{product_id: category}``.

    :param path: the products CSV (``product_id,category,valid_from_ms``, no header).
    """
    with open(path, newline="") as handle:
        return {row[0]: row[1] for row in csv.reader(handle) if row}


def order(index: int, ts: int) -> dict[str, Any]:
    """Order event number ``index`` at ``ts``: its product, status and quantity follow from the index.

    Every 7th order is CANCELLED and every 11th has quantity 0 (both are filtered out).

    :param index: the order's number.
    :param ts: its event time, epoch milliseconds.
    """
    return {
        "order_id": f"o-{index:05d}",
        "customer_id": f"c-{index % 5}",
        "product_id": PRODUCT_CYCLE[index % len(PRODUCT_CYCLE)],
        "quantity": 0 if index % 11 == 10 else 1 + index % 3,
        "amount_cents": 250 + 125 * (index % 9),
        "status": "CANCELLED" if index % 7 == 6 else "PAID",
        "ts": ts,
    }


def orders(first: int, count: int, *, step_ms: int = 1000, base_ts: int = BASE_TS) -> list[dict[str, Any]]:
    """``count`` order events, numbered from ``first``, one every ``step_ms`` in event time.

    :param first: number of the first order (its event time is ``base_ts + first * step_ms``).
    :param count: how many.
    :param step_ms: event-time distance between consecutive orders.
    :param base_ts: event time of order 0.
    """
    return [order(index, base_ts + index * step_ms) for index in range(first, first + count)]


def heartbeat(ts: int) -> dict[str, Any]:
    """An event the job filters out but whose event time still moves the watermark: it closes windows.

    :param ts: its event time, epoch milliseconds.
    """
    return {
        "order_id": f"heartbeat-{ts}",
        "customer_id": "-",
        "product_id": "-",
        "quantity": 0,
        "amount_cents": 0,
        "status": "HEARTBEAT",
        "ts": ts,
    }


def expected_windows(
    events: Iterable[Mapping[str, Any]], products: Mapping[str, str], window_ms: int, *, watermark: int
) -> list[dict[str, Any]]:
    """What the job writes for ``events``: one row per closed (window, category), sorted.

    A tumbling window ``[start, end)`` is closed once the watermark reaches ``end``; events are assumed in
    event-time order (none late).

    :param events: the order events.
    :param products: ``{product_id: category}``.
    :param window_ms: window size.
    :param watermark: the highest watermark the job has seen (latest event time minus the delay).
    """
    groups: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: {"orders": 0, "units": 0, "revenue": 0})
    for event in events:
        if event["status"] != "PAID" or event["quantity"] <= 0:
            continue
        start = event["ts"] - event["ts"] % window_ms
        if start + window_ms > watermark:
            continue
        group = groups[(start, products.get(event["product_id"], "UNKNOWN"))]
        group["orders"] += 1
        group["units"] += event["quantity"]
        group["revenue"] += event["amount_cents"]
    return [
        {
            "window_start": start,
            "window_end": start + window_ms,
            "category": category,
            "orders": agg["orders"],
            "units": agg["units"],
            "revenue_cents": agg["revenue"],
        }
        for (start, category), agg in sorted(groups.items())
    ]


def totals(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Orders, units and revenue summed per category over all windows.

    :param rows: output rows (or :func:`expected_windows` rows).
    """
    result: dict[str, dict[str, int]] = defaultdict(lambda: {"orders": 0, "units": 0, "revenue_cents": 0})
    for row in rows:
        for key in ("orders", "units", "revenue_cents"):
            result[row["category"]][key] += int(row[key])
    return dict(result)


def main(argv: list[str] | None = None) -> int:
    """``produce`` the dataset to Kafka, ``consume`` a sink topic, or print the ``expected`` windows.

    :param argv: the arguments; default ``sys.argv[1:]``.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description="The orders-enrichment test dataset: produce it or its oracle.")
    parser.add_argument("command", choices=("produce", "consume", "expected"))
    parser.add_argument("--first", type=int, default=0, help="number of the first order")
    parser.add_argument("--count", type=int, default=40, help="how many orders (one per second of event time)")
    parser.add_argument("--close", action="store_true", help="end with a heartbeat that closes every window")
    parser.add_argument("--topic", default="orders", help="produce/consume: the topic")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092", help="produce/consume: the brokers")
    parser.add_argument("--window-seconds", type=int, default=10, help="expected: the job's window size")
    args = parser.parse_args(argv)
    events = orders(args.first, args.count)
    close = events[-1]["ts"] + args.window_seconds * 1000
    if args.command == "produce":
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": args.bootstrap_servers, "enable.idempotence": True})
        for event in [*events, heartbeat(close)] if args.close else events:
            producer.produce(args.topic, json.dumps(event).encode())
        return 0 if producer.flush(30) == 0 else 1
    if args.command == "consume":
        import uuid

        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": args.bootstrap_servers, "group.id": f"show-{uuid.uuid4().hex}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
        consumer.subscribe([args.topic])
        idle = 0
        while idle < 10:  # stop after 5 s without a message
            message = consumer.poll(0.5)
            value = message.value() if message is not None and not message.error() else None
            idle = 0 if value is not None else idle + 1
            if value is not None:
                sys.stdout.write(value.decode() + "\n")
        consumer.close()
        return 0
    watermark = close if args.close else events[-1]["ts"]
    for row in expected_windows(events, load_products(), args.window_seconds * 1000, watermark=watermark):
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
