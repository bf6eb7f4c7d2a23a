"""The phase 5 dataset: seeded order deliveries and product versions, its manifest, topics and production.

One timeline of records in arrival order: product versions (to the compacted ``products`` topic) and order
deliveries (to ``orders``, keyed by customer). Each delivery carries its event time ``ts`` (when the order was
placed, the shop's clock) and ``received_at`` (when the collector in front of Kafka received it, as
collectors stamp events), both in the dataset's own clock starting 2024-03-01T00:00:00Z. Lateness is thus a
property of the data, not of the machine that replays it: ``received_at - ts``. The structure:

- several customers (Zipf-like activity) and twelve products in five categories;
- about 90 % of orders arrive within a second of their event time, 8 % out of order by 1-5 s, 2 % late by
  5 s to 15 min;
- about 2 % of orders are delivered twice (a producer retry 50 ms-2 s later, or a replay minutes later);
- two product versions change mid-stream (a price cut and a re-categorisation, a price rise), each
  published ahead of the time it takes effect, as a scheduled change is.

The same seed and size give the same bytes (the manifest's ``sha256``). Command line::

    python -m flink_lessons.phase5.dataset manifest --size S --seed 7 --out manifest.json
    python -m flink_lessons.phase5.dataset produce --size S --seed 7 --orders-topic o --products-topic p \\
        --partitions 2 --rate 2000 --bootstrap 127.0.0.1:9092 --manifest manifest.json
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from flink_lessons.load.kafka import Kafka

BASE_MS = 1_709_251_200_000
"""2024-03-01T00:00:00Z: the dataset's clock starts here."""
NOMINAL_DELAY_MS = 5_000
"""The watermark delay the generator aims its out-of-order and late shares at (the pipeline's default)."""
MANIFEST_VERSION = 1


class Delivery(NamedTuple):
    """One delivery of an order to the ``orders`` topic (a duplicate is a second delivery of the same order).

    :param order_id: the order.
    :param customer_id: who ordered (also the Kafka key: Kafka's partitioner picks the partition from it).
    :param product_id: what.
    :param quantity: how many.
    :param ts_ms: the event time (when the order was placed), epoch ms.
    :param arrival_ms: when the collector received it (``received_at``), epoch ms.
    """

    order_id: int
    customer_id: str
    product_id: str
    quantity: int
    ts_ms: int
    arrival_ms: int

    def encode(self) -> bytes:
        """The JSON value of the Kafka record."""
        # Written directly (ids are [a-z0-9]): a million json.dumps calls would dominate size M's generation.
        return (
            f'{{"order_id":{self.order_id},"customer_id":"{self.customer_id}","product_id":"{self.product_id}",'
            f'"quantity":{self.quantity},"ts":{self.ts_ms},"received_at":{self.arrival_ms}}}'
        ).encode()


class ProductVersion(NamedTuple):
    """One version of a product, valid from ``valid_from_ms`` on (event time).

    :param product_id: the product (the Kafka key of the compacted topic).
    :param name: its name.
    :param category: its category.
    :param unit_price: its price.
    :param valid_from_ms: from when this version applies, epoch ms.
    :param arrival_ms: when it was published, epoch ms.
    """

    product_id: str
    name: str
    category: str
    unit_price: Decimal
    valid_from_ms: int
    arrival_ms: int

    def encode(self) -> bytes:
        """The JSON value of the Kafka record; the price is a JSON number written from the Decimal's own text
        (``29.90``), which Flink reads into ``DECIMAL(10, 2)`` exactly."""
        head = json.dumps(
            {"product_id": self.product_id, "name": self.name, "category": self.category}, separators=(",", ":")
        )
        return f'{head[:-1]},"unit_price":{self.unit_price},"valid_from":{self.valid_from_ms}}}'.encode()


Record = Delivery | ProductVersion


@dataclass(frozen=True)
class Size:
    """A named dataset size.

    :param name: ``XS``, ``S`` or ``M``.
    :param orders: distinct orders (deliveries are about 2 % more).
    :param customers: distinct customers.
    :param mean_gap_ms: mean time between two orders' arrivals.
    """

    name: str
    orders: int
    customers: int
    mean_gap_ms: int

    @property
    def span_ms(self) -> int:
        """About how long the dataset's timeline is."""
        return self.orders * self.mean_gap_ms


SIZES: dict[str, Size] = {
    "XS": Size("XS", 400, 6, 500),
    "S": Size("S", 10_000, 24, 100),
    "M": Size("M", 1_000_000, 500, 100),
}

# (id, name, category, price): the catalogue every size shares.
CATALOGUE: tuple[tuple[str, str, str, str], ...] = (
    ("p01", "Trail running shoes", "outdoor", "89.90"),
    ("p02", "Espresso beans 1 kg", "kitchen", "18.50"),
    ("p03", "Folding camp chair", "garden", "34.90"),
    ("p04", "Board game: Harbour", "games", "39.00"),
    ("p05", "Cast iron pan", "kitchen", "42.00"),
    ("p06", "Paperback: Streams", "books", "14.99"),
    ("p07", "LED headlamp", "outdoor", "24.50"),
    ("p08", "Seed starter kit", "garden", "12.75"),
    ("p09", "Puzzle, 1000 pieces", "games", "16.80"),
    ("p10", "Hardcover: Tables", "books", "32.00"),
    ("p11", "Chef's knife", "kitchen", "64.00"),
    ("p12", "Rain jacket", "outdoor", "119.00"),
)
# (share of the timeline, product, new category or None, new price): the mid-stream dimension changes.
UPDATES: tuple[tuple[float, str, str | None, str], ...] = (
    (0.45, "p03", "outdoor", "29.90"),  # a price cut and a new category
    (0.70, "p05", None, "47.50"),  # a price rise
)
QUANTITIES = (1, 2, 3, 4, 5)
QUANTITY_WEIGHTS = (50, 25, 12, 8, 5)


@dataclass
class Dataset:
    """A generated dataset: its timeline of records in arrival (production) order.

    :param seed: the random seed.
    :param size: the size.
    :param timeline: product versions and deliveries, by arrival time.
    """

    seed: int
    size: Size
    timeline: list[Record] = field(repr=False)

    @property
    def deliveries(self) -> list[Delivery]:
        """The order deliveries in production order (duplicates included)."""
        return [r for r in self.timeline if isinstance(r, Delivery)]

    @property
    def versions(self) -> list[ProductVersion]:
        """The product versions in production order."""
        return [r for r in self.timeline if isinstance(r, ProductVersion)]

    def encoded(self) -> Iterator[tuple[str, bytes, bytes]]:
        """Each record as ``(topic role, key, value)``, in production order; role is ``orders`` or ``products``."""
        for record in self.timeline:
            if isinstance(record, Delivery):
                yield "orders", record.customer_id.encode(), record.encode()
            else:
                yield "products", record.product_id.encode(), record.encode()

    def sha256(self) -> str:
        """A digest of every record (role, key, value): equal for equal seed and size."""
        digest = hashlib.sha256()
        for role, key, value in self.encoded():
            digest.update(b"%s\x00%s\x00%s\n" % (role.encode(), key, value))
        return digest.hexdigest()


def generate(size: str | Size = "S", seed: int = 7) -> Dataset:
    """Generate the dataset (deterministic for a seed and size).

    :param size: ``XS``, ``S``, ``M`` or a :class:`Size`.
    :param seed: the random seed.
    :raises ValueError: for an unknown size name.
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown dataset size {size!r}; choose from {', '.join(SIZES)}")
        size = SIZES[size]
    rng = random.Random(f"phase5:{seed}:{size.name}")
    customers = [f"c{i:04d}" for i in range(1, size.customers + 1)]
    customer_weights = list(itertools.accumulate(1 / (i**1.1) for i in range(1, size.customers + 1)))
    products = [row[0] for row in CATALOGUE]
    product_weights = list(itertools.accumulate(1 / math.sqrt(i) for i in range(1, len(products) + 1)))
    quantity_weights = list(itertools.accumulate(QUANTITY_WEIGHTS))

    timeline: list[Record] = []
    current = {
        pid: ProductVersion(pid, name, cat, Decimal(price), BASE_MS - 86_400_000, BASE_MS)
        for pid, name, cat, price in CATALOGUE
    }
    timeline.extend(current.values())
    lead = min(300_000, size.span_ms // 10)
    pending: list[tuple[int, int, Record]] = []  # (arrival, tie-breaker, record): updates and re-deliveries
    for index, (share, pid, category, price) in enumerate(UPDATES):
        valid_from = BASE_MS + int(size.span_ms * share) // 1000 * 1000
        old = current[pid]
        version = old._replace(
            category=category or old.category,
            unit_price=Decimal(price),
            valid_from_ms=valid_from,
            arrival_ms=valid_from - lead,
        )
        current[pid] = version
        heapq.heappush(pending, (version.arrival_ms, -1 - index, version))

    arrival = BASE_MS + 1000
    for order_id in range(1, size.orders + 1):
        arrival += max(1, round(rng.expovariate(1 / size.mean_gap_ms)))
        kind = rng.random()
        if kind < 0.90:
            delay = rng.randint(0, 1000)
        elif kind < 0.98:
            delay = rng.randint(1000, NOMINAL_DELAY_MS - 1)
        else:
            delay = int(math.exp(rng.uniform(math.log(NOMINAL_DELAY_MS), math.log(900_000))))
        delivery = Delivery(
            order_id,
            rng.choices(customers, cum_weights=customer_weights)[0],
            rng.choices(products, cum_weights=product_weights)[0],
            rng.choices(QUANTITIES, cum_weights=quantity_weights)[0],
            arrival - delay,
            arrival,
        )
        while pending and pending[0][0] <= arrival:
            timeline.append(heapq.heappop(pending)[2])
        timeline.append(delivery)
        if rng.random() < 0.02:
            again = rng.randint(50, 2000) if rng.random() < 0.9 else rng.randint(60_000, 600_000)
            heapq.heappush(pending, (arrival + again, order_id, delivery._replace(arrival_ms=arrival + again)))
    while pending:
        timeline.append(heapq.heappop(pending)[2])
    return Dataset(seed, size, timeline)


# ---------------------------------------------------------------------------------------------- manifest


def manifest(
    dataset: Dataset, *, window_ms: int = 60_000, watermark_delay_ms: int = NOMINAL_DELAY_MS
) -> dict[str, Any]:
    """The dataset's manifest: seed, size, digest, counts, and the expected results per key and window under
    the given rules (computed by :mod:`~flink_lessons.phase5.reference`).

    :param dataset: the dataset.
    :param window_ms: the window the expected aggregates use.
    :param watermark_delay_ms: the lateness rule the expected results use.
    """
    from flink_lessons.phase5.reference import Rules, compute

    deliveries = dataset.deliveries
    expected = compute(dataset, Rules(window_ms=window_ms, watermark_delay_ms=watermark_delay_ms))
    return {
        "manifest_version": MANIFEST_VERSION,
        "dataset": "phase5-orders",
        "seed": dataset.seed,
        "size": dataset.size.name,
        "sha256": dataset.sha256(),
        "base_time_ms": BASE_MS,
        "counts": {
            "records": len(dataset.timeline),
            "orders": len({d.order_id for d in deliveries}),
            "deliveries": len(deliveries),
            "product_versions": len(dataset.versions),
            "customers": len({d.customer_id for d in deliveries}),
            "products": len({v.product_id for v in dataset.versions}),
            "first_event_ms": min(d.ts_ms for d in deliveries),
            "last_arrival_ms": max(d.arrival_ms for d in deliveries),
        },
        "expected": expected.to_json(),
    }


def write_manifest(path: Path, data: Mapping[str, Any]) -> Path:
    """Write a manifest as indented JSON (atomically: a reader never sees half a file).

    :param path: where.
    :param data: the manifest.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest and check it is one of this version.

    :param path: the file.
    :raises ValueError: when it is not a phase 5 manifest of a known version.
    """
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("dataset") != "phase5-orders":
        raise ValueError(f"{path} is not a phase 5 dataset manifest")
    if data.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: manifest version {data.get('manifest_version')!r}, expected {MANIFEST_VERSION}")
    return data


def from_manifest(data: Mapping[str, Any]) -> Dataset:
    """Regenerate a manifest's dataset and check it is the same (its digest).

    :param data: a manifest (:func:`read_manifest`).
    :raises ValueError: when the generator no longer produces the manifest's bytes.
    """
    dataset = generate(str(data["size"]), int(data["seed"]))
    if dataset.sha256() != data["sha256"]:
        raise ValueError(
            f"the generator no longer reproduces this manifest (seed {data['seed']}, size {data['size']}): "
            "it changed since the manifest was written; regenerate and produce the dataset again"
        )
    return dataset


# ---------------------------------------------------------------------------------------------- Kafka


@dataclass(frozen=True)
class Production:
    """What :func:`produce` wrote.

    :param orders_topic: the orders topic.
    :param products_topic: the products topic.
    :param records: records produced (both topics).
    :param seconds: how long it took.
    :param end_offsets: per topic, partition -> the end offset after production (a bounded job stops there).
    """

    orders_topic: str
    products_topic: str
    records: int
    seconds: float
    end_offsets: dict[str, dict[int, int]]

    def to_json(self) -> dict[str, Any]:
        """For the manifest's ``production`` section."""
        return {
            "orders_topic": self.orders_topic,
            "products_topic": self.products_topic,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "end_offsets": {t: {str(p): o for p, o in offs.items()} for t, offs in self.end_offsets.items()},
        }


def ensure_topics(kafka: Kafka, orders_topic: str, products_topic: str, partitions: int) -> None:
    """Create the two topics if missing: ``orders`` with ``partitions`` partitions, ``products`` compacted with
    one (a compacted topic keeps the latest version of every product for a job that starts later).

    :param kafka: the cluster.
    :param orders_topic: the orders topic.
    :param products_topic: the products topic.
    :param partitions: the orders topic's partitions.
    :raises ValueError: when a topic exists with another partition count.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    for topic, count, config in ((orders_topic, partitions, {}), (products_topic, 1, {"cleanup.policy": "compact"})):
        existing = kafka.partitions(topic)
        if existing is None:
            kafka.create_topic(topic, count, config)
        elif existing != count:
            raise ValueError(
                f"topic {topic!r} exists with {existing} partition(s), the dataset needs {count}: use a new topic name"
            )


def produce(
    dataset: Dataset,
    *,
    kafka: Kafka,
    orders_topic: str,
    products_topic: str,
    partitions: int = 1,
    rate: float | None = None,
    progress: Callable[[str], None] | None = print,
) -> Production:
    """Create the topics if needed and produce the dataset in its order, orders at ``rate`` records/s.

    The project's rate-controlled producer (:mod:`flink_lessons.load.producer`) writes each run of
    consecutive orders, then each product version between them, waiting for every acknowledgement in
    between: a product version is in Kafka before any order that follows it in the timeline. Per key (and so
    per partition) the orders keep the timeline's order.

    :param dataset: the dataset.
    :param kafka: the cluster (:class:`flink_lessons.load.kafka.Kafka`).
    :param orders_topic: the orders topic.
    :param products_topic: the products topic.
    :param partitions: the orders topic's partitions.
    :param rate: order records per second (``None``: as fast as the broker takes them).
    :param progress: called with a progress line about once a second (``None``: quiet).
    :raises RuntimeError: when a record could not be delivered.
    """
    from flink_lessons.load.producer import RateProducer

    ensure_topics(kafka, orders_topic, products_topic, partitions)
    records: dict[str, list[tuple[bytes, bytes]]] = {"orders": [], "products": []}
    segments: list[tuple[str, int]] = []  # (role, how many consecutive records)
    for role, key, value in dataset.encoded():
        records[role].append((key, value))
        if segments and segments[-1][0] == role:
            segments[-1] = (role, segments[-1][1] + 1)
        else:
            segments.append((role, 1))

    def batch(role: str) -> Callable[[int, int, int], tuple[list[bytes | None], list[bytes]]]:
        def events(first: int, count: int, _ts_ms: int) -> tuple[list[bytes | None], list[bytes]]:
            chunk = records[role][first : first + count]
            return [k for k, _ in chunk], [v for _, v in chunk]

        return events

    config = {**kafka.config, "enable.idempotence": True}
    producers = {
        role: RateProducer(topic, batch(role), config=config)
        for role, topic in (("orders", orders_topic), ("products", products_topic))
    }
    total = len(dataset.timeline)
    began = time.monotonic()
    done = 0

    def report(_progress: Any) -> None:
        if progress is not None:
            sent = done + _progress.sent
            elapsed = time.monotonic() - began
            progress(
                f"[dataset] produced {sent:,}/{total:,} records ({sent / total:.0%}) "
                f"at {sent / max(elapsed, 1e-6):,.0f}/s"
            )

    for role, count in segments:
        stats = producers[role].run(
            rate if role == "orders" else None, count=count, progress=report if role == "orders" else None
        )
        if stats.failed:
            raise RuntimeError(f"{stats.failed} record(s) not delivered to {producers[role].topic}: {stats.errors[:1]}")
        done += count
    seconds = time.monotonic() - began
    offsets = {topic: kafka.end_offsets(topic) for topic in (orders_topic, products_topic)}
    return Production(orders_topic, products_topic, total, seconds, offsets)


# ---------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m flink_lessons.phase5.dataset", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (
        ("manifest", "write the manifest (and optionally the records as JSON lines)"),
        ("produce", "produce the dataset to Kafka and write the manifest"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--size", choices=list(SIZES), default="S")
        cmd.add_argument("--seed", type=int, default=7)
        cmd.add_argument("--window", type=int, default=60, help="seconds: the window of the expected aggregates")
        cmd.add_argument(
            "--watermark-delay",
            type=int,
            default=NOMINAL_DELAY_MS // 1000,
            help="seconds: the lateness rule of the expected results",
        )
    sub.choices["manifest"].add_argument("--out", type=Path, required=True, help="the manifest file")
    sub.choices["manifest"].add_argument("--jsonl", type=Path, help="also write every record as a JSON line")
    produce_cmd = sub.choices["produce"]
    produce_cmd.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    produce_cmd.add_argument("--orders-topic", required=True)
    produce_cmd.add_argument("--products-topic", required=True)
    produce_cmd.add_argument("--partitions", type=int, default=1, help="partitions of the orders topic")
    produce_cmd.add_argument("--rate", type=float, default=None, help="orders per second (default: no limit)")
    produce_cmd.add_argument("--manifest", type=Path, required=True, help="the manifest file to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring).

    :param argv: the arguments (default ``sys.argv[1:]``).
    """
    opts = _parser().parse_args(argv)
    began = time.monotonic()
    dataset = generate(opts.size, opts.seed)
    print(
        f"[dataset] generated size {opts.size} seed {opts.seed}: {len(dataset.timeline):,} records "
        f"in {time.monotonic() - began:.1f}s",
        file=sys.stderr,
    )
    data = manifest(dataset, window_ms=opts.window * 1000, watermark_delay_ms=opts.watermark_delay * 1000)
    if opts.command == "manifest":
        if opts.jsonl:
            with opts.jsonl.open("w") as out:
                for role, key, value in dataset.encoded():
                    out.write(json.dumps({"topic": role, "key": key.decode(), "value": json.loads(value)}) + "\n")
        write_manifest(opts.out, data)
        print(f"[dataset] manifest: {opts.out}", file=sys.stderr)
        return 0
    from flink_lessons.load.kafka import Kafka

    production = produce(
        dataset,
        kafka=Kafka.from_bootstrap(opts.bootstrap),
        orders_topic=opts.orders_topic,
        products_topic=opts.products_topic,
        partitions=opts.partitions,
        rate=opts.rate,
        progress=lambda line: print(line, file=sys.stderr),
    )
    data["production"] = production.to_json()
    write_manifest(opts.manifest, data)
    print(
        f"[dataset] {production.records:,} records in {production.seconds:.1f}s; manifest: {opts.manifest}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
