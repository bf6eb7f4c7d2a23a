"""``python -m flink_lessons.load``: write keyed events to Kafka at a fixed rate, with a live progress line.

    python -m flink_lessons.load --topic orders --rate 50000 --keys 10000 --skew zipf:1.2 \\
        --partitions 4 --duration 60s --schema orders [--seed 7] [--null-key-share 0.1]

Every argument is checked, and the topic against ``--partitions``, before anything is produced. The progress
line (stderr) shows the rate achieved and the totals; the summary at the end (stdout, ``--json`` for JSON) has
records per partition, the hottest key's share and the seed that reproduces the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import parse_skew
from flink_lessons.load.producer import Progress
from flink_lessons.load.run import LoadError, LoadSpec, load
from flink_lessons.load.schemas import SCHEMAS
from flink_lessons.rules import Integer, Number, check_bootstrap, check_topic, parse_duration


def default_bootstrap() -> str:
    """``$KAFKA_BOOTSTRAP_SERVERS``, else the local stack's broker (moved by ``$FLINK_STACK_PORT_OFFSET``)."""
    return (
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or f"127.0.0.1:{9092 + int(os.environ.get('FLINK_STACK_PORT_OFFSET', '0'))}"
    )


def _checked(check: Any) -> Any:
    """An argparse type from a rule check: its ValueError becomes the argument's error message."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = getattr(check, "__name__", "value")
    return parse


def _rate(text: str) -> float | None:
    if text.strip().lower() == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"must be events per second (a number > 0) or 'max', got {text!r}") from None
    if not rate > 0:
        raise ValueError(f"must be > 0 events per second (or 'max'), got {text!r}")
    return rate


def _number(minimum: float, maximum: float | None = None, what: str = "") -> Any:
    """An argument type: text (``10_000`` too) -> a number within ``minimum..maximum``, checked by the lessons'
    own rules (:class:`~flink_lessons.rules.Integer` when ``minimum`` is an int, else
    :class:`~flink_lessons.rules.Number`).

    :param minimum: the smallest allowed.
    :param maximum: the largest allowed, if any.
    :param what: what the value means, for the error.
    """
    rule = Integer(minimum) if isinstance(minimum, int) else Number(minimum)
    span = f"within {minimum:g}..{maximum:g}" if maximum is not None else rule.rule

    def check(text: str) -> Any:
        try:
            value = rule(rule.types[0](text.replace("_", "")))
        except ValueError:
            raise ValueError(f"must be {span}{what}, got {text!r}") from None
        if maximum is not None and value > maximum:
            raise ValueError(f"must be {span}{what}, got {text!r}")
        return value

    return check


def _seconds(text: str) -> float:
    return parse_duration(text).ms / 1000


def _property(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"must be key=value (a librdkafka producer setting), got {text!r}")
    return key.strip(), value


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m flink_lessons.load",
        description="Write keyed events to a Kafka topic at a fixed rate (the lessons' load script).",
    )
    p.add_argument("--topic", required=True, type=_checked(check_topic), help="the topic (created when missing)")
    p.add_argument("--rate", required=True, type=_checked(_rate), help="events per second, or 'max'")
    p.add_argument("--keys", type=_checked(_number(1)), default=1000, help="distinct keys (default 1000)")
    p.add_argument(
        "--skew",
        type=_checked(parse_skew),
        default=parse_skew("uniform"),
        help="'uniform' (default) or 'zipf:<exponent>', e.g. zipf:1.2 (key c1 is the hottest)",
    )
    p.add_argument(
        "--partitions",
        type=_checked(_number(1)),
        default=None,
        help="partitions the topic must have; a missing topic is created with them (default 1)",
    )
    p.add_argument("--duration", type=_checked(_seconds), default=None, help="how long, e.g. 60s, 5 min")
    p.add_argument(
        "--count", type=_checked(_number(1)), default=None, help="how many events (with or instead of --duration)"
    )
    p.add_argument("--schema", choices=sorted(SCHEMAS), default="orders", help="event schema (default orders)")
    p.add_argument(
        "--seed", type=_checked(_number(0)), default=None, help="seed of the key sequence (default: random, printed)"
    )
    p.add_argument(
        "--null-key-share",
        type=_checked(_number(0.0, 1.0, " (0.1 = one event in ten without a key)")),
        default=0.0,
        help="share of events sent without a Kafka key (0..1, default 0)",
    )
    p.add_argument("--first-id", type=_checked(_number(0)), default=0, help="the first event's order_id (default 0)")
    p.add_argument(
        "--bootstrap-servers",
        type=_checked(check_bootstrap),
        default=None,
        help="Kafka brokers (default $KAFKA_BOOTSTRAP_SERVERS or the local stack's)",
    )
    p.add_argument("--kafka-conn-id", default=None, help="read the brokers and settings from this Airflow connection")
    p.add_argument(
        "--producer-property",
        type=_checked(_property),
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a librdkafka producer setting (repeatable), e.g. acks=all",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p  # fmt: skip


class ProgressLine:
    """Prints :class:`Progress` as one updating line on a terminal (one line per report elsewhere).

    :param stream: where to write.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def __call__(self, progress: Progress) -> None:
        target = "max" if progress.target is None else f"{progress.target:,.0f}/s"
        line = (
            f"[load] {progress.elapsed:6.1f}s  sent {progress.sent:>12,}  acked {progress.acked:>12,}  "
            f"rate {progress.rate:>10,.0f}/s (target {target})  failed {progress.failed}"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the updating line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; exit code 0 when every event was delivered, 1 when some failed, 2 on bad input.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    opts = parser().parse_args(argv)
    try:
        spec = LoadSpec(
            topic=opts.topic, rate=opts.rate, keys=opts.keys, skew=opts.skew, partitions=opts.partitions,
            seconds=opts.duration, count=opts.count, schema=opts.schema, seed=opts.seed,
            null_key_share=opts.null_key_share, first_id=opts.first_id,
        )  # fmt: skip
        if opts.kafka_conn_id:
            kafka = Kafka.from_connection(opts.kafka_conn_id)
        else:
            kafka = Kafka.from_bootstrap(opts.bootstrap_servers or default_bootstrap())
        _reachable(kafka)
    except (LoadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    line = None if opts.quiet else ProgressLine(sys.stderr)
    try:
        summary = load(spec, kafka, progress=line, producer_config=dict(opts.producer_property))
    except LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n[load] interrupted", file=sys.stderr)
        return 130
    finally:
        if line is not None:
            line.close()
    if opts.json:
        print(json.dumps(summary.to_json(), indent=2))
    else:
        print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def _reachable(kafka: Kafka, timeout: float = 10) -> None:
    """Fail early, naming the brokers, when Kafka does not answer."""
    try:
        kafka.admin().list_topics(timeout=timeout)
    except Exception as error:
        raise ValueError(f"cannot reach Kafka at {kafka.bootstrap_servers} within {timeout:.0f}s: {error}") from None
