"""The load command's pure parts (flink_lessons.load): Kafka's murmur2 partitioner, the key distributions, the
event values, the settings checks and the command line's errors (no broker needed: bad input fails first)."""

from __future__ import annotations

import json

import pytest
from flink_lessons.load import cli
from flink_lessons.load.kafka import Kafka
from flink_lessons.load.keys import KeyChooser, Skew, parse_skew
from flink_lessons.load.partitioner import murmur2, partition_for
from flink_lessons.load.producer import order_id_of
from flink_lessons.load.run import LoadError, LoadSpec
from flink_lessons.load.schemas import Orders, schema_named

pytestmark = pytest.mark.unit

# Kafka's own test vectors (clients' UtilsTest.testMurmur2): the Java producer's hash of each key.
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_MURMUR2.items())
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_for_is_the_positive_hash_mod_partitions() -> None:
    assert partition_for(b"foobar", 4) == (-790332482 & 0x7FFFFFFF) % 4
    assert {partition_for(f"c{i}".encode(), 4) for i in range(1, 200)} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="at least 1"):
        partition_for(b"x", 0)


def test_skew_parsing_and_errors() -> None:
    assert parse_skew("uniform") == Skew(0.0)
    assert parse_skew(" zipf : 1.2 ").exponent == 1.2
    assert parse_skew("zipf:2").text == "zipf:2"
    for bad in ("zipf", "zipf:0", "zipf:-1", "pareto:1", "", "zipf:x"):
        with pytest.raises(ValueError, match="zipf"):
            parse_skew(bad)


def test_zipf_hottest_share_is_one_over_the_harmonic_number() -> None:
    shares = Skew(2.0).shares(3)
    h = 1 + 1 / 4 + 1 / 9
    assert shares == pytest.approx([1 / h, (1 / 4) / h, (1 / 9) / h])
    assert sum(Skew(0).shares(10)) == pytest.approx(1)


def test_keys_are_reproducible_from_the_seed_and_follow_the_skew() -> None:
    first = KeyChooser(100, Skew(1.5), seed=7).take(20_000)[0]
    assert first == KeyChooser(100, Skew(1.5), seed=7).take(20_000)[0]
    assert first != KeyChooser(100, Skew(1.5), seed=8).take(20_000)[0]
    share = first.count(b"c1") / len(first)
    assert share == pytest.approx(Skew(1.5).shares(100)[0], abs=0.02)
    uniform = KeyChooser(4, Skew(), seed=1).take(40_000)[0]
    assert all(abs(uniform.count(k) / 40_000 - 0.25) < 0.02 for k in (b"c1", b"c2", b"c3", b"c4"))


def test_null_key_share_drops_the_message_key_but_not_the_events_key() -> None:
    keys, message_keys = KeyChooser(10, Skew(), seed=3, null_key_share=0.5).take(10_000)
    nulls = sum(1 for k in message_keys if k is None)
    assert 4_500 < nulls < 5_500
    assert all(m is None or m == k for k, m in zip(keys, message_keys, strict=True))
    assert all(m is None for m in KeyChooser(10, Skew(), seed=3, null_key_share=1.0).take(100)[1])


def test_orders_values_are_json_with_the_key_as_customer() -> None:
    values = Orders().values(41, [b"c1", b"c7"], 1_700_000_000_000)
    rows = [json.loads(v) for v in values]
    assert [r["order_id"] for r in rows] == [41, 42]
    assert [r["customer"] for r in rows] == ["c1", "c7"]
    assert all(r["amount"] > 0 and r["currency"] in ("EUR", "USD", "GBP") for r in rows)
    assert all(r["ts_ms"] == 1_700_000_000_000 for r in rows)
    assert [order_id_of(v) for v in values] == [41, 42]
    with pytest.raises(ValueError, match="known: orders"):
        schema_named("clicks")


def test_load_spec_names_every_problem_at_once() -> None:
    with pytest.raises(LoadError) as caught:
        LoadSpec(topic="bad topic", rate=0, keys=0, partitions=0, null_key_share=2.0, schema="x")
    text = str(caught.value)
    for part in ("topic", "rate must be > 0", "keys must be at least 1", "partitions must be at least 1",
                 "give a duration or a count", "null-key share", "unknown schema"):  # fmt: skip
        assert part in text
    assert LoadSpec(topic="t", rate=None, count=5).with_seed().seed is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "100"], "--topic"),
        (["--topic", "t", "--rate", "-5", "--count", "1"], "must be > 0 events per second"),
        (["--topic", "t", "--rate", "fast", "--count", "1"], "or 'max'"),
        (["--topic", "t", "--rate", "max", "--skew", "zipf:0", "--count", "1"], "zipf:0 is uniform"),
        (["--topic", "t", "--rate", "max", "--duration", "soon"], "--duration"),
        (["--topic", "t", "--rate", "max", "--count", "1", "--null-key-share", "1.5"], "within 0..1"),
        (["--topic", "t", "--rate", "max", "--count", "1", "--producer-property", "acks"], "key=value"),
    ],
)
def test_cli_rejects_bad_arguments_before_connecting(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_needs_an_end_and_a_reachable_broker(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--topic", "t", "--rate", "max"]) == 2
    assert "give a duration or a count" in capsys.readouterr().err
    # Nothing listens on port 1: the command names the brokers instead of producing into a void.
    with pytest.raises(ValueError, match=r"cannot reach Kafka at 127\.0\.0\.1:1 within 1s"):
        cli._reachable(Kafka.from_bootstrap("127.0.0.1:1"), timeout=1)


def test_the_sequence_does_not_depend_on_batching() -> None:
    whole = KeyChooser(30, Skew(1.1), seed=5, null_key_share=0.3).take(1000)
    parts = KeyChooser(30, Skew(1.1), seed=5, null_key_share=0.3)
    pieces = [parts.take(n) for n in (1, 299, 700)]
    assert [k for p in pieces for k in p[0]] == whole[0]
    assert [k for p in pieces for k in p[1]] == whole[1]


def test_wide_orders_carry_a_1kb_note_of_the_key_and_parse_as_orders() -> None:
    wide = schema_named("orders_wide")
    values = wide.values(7, [b"c12", b"c3"], 1_000)
    first, second = (Orders.parse(v) for v in values)
    assert (first["order_id"], first["customer"], second["order_id"]) == (7, "c12", 8)
    assert len(first["note"]) == len(second["note"]) == 1024
    assert first["note"].startswith("c12c12") and second["note"].startswith("c3c3")
    assert Orders().values(7, [b"c12"], 1_000)[0][:-1] in values[0]  # the orders fields, then the note
