"""The orders-enrichment jobs without Flink: arguments, Flink settings, stable plan ids, the dataset oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "include" / "pyflink"
sys.path.insert(0, str(JOBS))

from orders_enrichment import dataset, jobkit  # noqa: E402

pytestmark = pytest.mark.unit


def settings(*argv: str) -> jobkit.Settings:
    return jobkit.validate_args(list(argv), "v1")


def test_defaults_are_valid_and_point_at_the_shipped_products_file() -> None:
    parsed = settings()
    assert parsed.source_topic == "orders"
    assert parsed.window_seconds == 60
    assert Path(parsed.products_path) == JOBS / "orders_enrichment" / "data" / "products.csv"
    assert parsed.job_name == "orders_enrichment-v1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--window-seconds", "0"], "must be at least 1"),
        (["--window-seconds", "ten"], "not an integer"),
        (["--source-topic", "bad topic"], "invalid topic name"),
        (["--bootstrap-servers", "localhost"], "invalid host:port list"),
        (["--checkpoint-mode", "twice"], "invalid choice"),
        (["--state-backend", "memory"], "invalid choice"),
        (["--restart-strategy", "forever"], "invalid choice"),
        (["--restart-backoff-multiplier", "0.5"], "must be at least 1.0"),
        (["--checkpoint-dir", "relative/dir"], "must be a URI"),
        (["--products-path", "data/products.csv"], "must be an absolute path"),
        (["--products-path", "/nonexistent/products.csv"], "does not exist"),
        (["--source-topic", "same", "--sink-topic", "same"], "must differ"),
        (["--restart-initial-backoff-seconds", "90", "--restart-max-backoff-seconds", "60"], "must not exceed"),
        (["--unknown-flag"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(argv: list[str], message: str) -> None:
    with pytest.raises(jobkit.JobArgumentError, match=message):
        settings(*argv)


FIXED_DELAY = [
    *("--checkpoint-interval-seconds", "7", "--checkpoint-mode", "at-least-once", "--state-backend", "rocksdb"),
    *("--restart-attempts", "2", "--restart-delay-seconds", "4", "--checkpoint-dir", "file:///tmp/cp"),
    *("--job-name", "orders@v1", "--parallelism", "2"),
]
EXPONENTIAL_DELAY = [
    *("--restart-strategy", "exponential-delay", "--restart-initial-backoff-seconds", "2"),
    *("--restart-max-backoff-seconds", "30", "--restart-backoff-multiplier", "1.5", "--restart-max-attempts", "6"),
]


@pytest.mark.parametrize(
    ("argv", "expected", "absent"),
    [
        (
            FIXED_DELAY,
            {
                "execution.checkpointing.interval": "7 s",
                "execution.checkpointing.mode": "AT_LEAST_ONCE",
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                "execution.checkpointing.dir": "file:///tmp/cp",
                "state.backend.type": "rocksdb",
                "restart-strategy.type": "fixed-delay",
                "restart-strategy.fixed-delay.attempts": "2",
                "restart-strategy.fixed-delay.delay": "4 s",
                "pipeline.name": "orders@v1",
                "parallelism.default": "2",
                "table.exec.uid.generation": "PLAN_ONLY",
            },
            ("restart-strategy.exponential-delay",),
        ),
        (
            EXPONENTIAL_DELAY,
            {
                "restart-strategy.type": "exponential-delay",
                "restart-strategy.exponential-delay.initial-backoff": "2 s",
                "restart-strategy.exponential-delay.max-backoff": "30 s",
                "restart-strategy.exponential-delay.backoff-multiplier": "1.5",
                "restart-strategy.exponential-delay.attempts-before-reset-backoff": "6",
            },
            ("execution.checkpointing.dir", "restart-strategy.fixed-delay"),
        ),
        (
            ["--restart-strategy", "none"],
            {"restart-strategy.type": "none"},
            ("restart-strategy.fixed-delay", "restart-strategy.exponential-delay"),
        ),
    ],
    ids=["fixed-delay-and-checkpoints", "exponential-delay", "no-restarts"],
)
def test_flink_configuration_by_restart_strategy(
    argv: list[str], expected: dict[str, str], absent: tuple[str, ...]
) -> None:
    config = jobkit.flink_configuration(settings(*argv))
    assert {key: config.get(key) for key in expected} == expected
    assert not [key for key in config if key.startswith(absent)]


def test_stable_plan_renumbers_stateful_and_stateless_nodes_apart() -> None:
    nodes = [
        (57, "stream-exec-table-source-scan_1"),
        (58, "stream-exec-calc_1"),
        (59, "stream-exec-exchange_1"),
        (60, "stream-exec-table-source-scan_1"),
        (61, "stream-exec-watermark-assigner_1"),
        (62, "stream-exec-temporal-join_1"),
        (63, "stream-exec-group-window-aggregate_1"),
        (64, "stream-exec-sink_2"),
    ]
    edges = [(57, 58), (58, 59), (60, 61), (59, 62), (61, 62), (62, 63), (63, 64)]
    plan = {
        "flinkVersion": "2.1",
        "nodes": [{"id": node_id, "type": kind, "description": kind} for node_id, kind in nodes],
        "edges": [{"source": s, "target": t, "shuffle": {"type": "FORWARD"}} for s, t in edges],
    }
    stable = json.loads(jobkit.stable_plan(json.dumps(plan)))
    assert [node["id"] for node in stable["nodes"]] == [1, 1001, 1002, 2, 1003, 3, 4, 5]
    assert [(edge["source"], edge["target"]) for edge in stable["edges"]] == [
        (1, 1001),
        (1001, 1002),
        (2, 1003),
        (1002, 3),
        (1003, 3),
        (3, 4),
        (4, 5),
    ]
    assert [node["id"] for node in jobkit.stateful_nodes(json.dumps(stable))] == [1, 2, 3, 4, 5]
    # A stateless step more (another calc) leaves every stateful id where it was.
    plan["nodes"].insert(6, {"id": 65, "type": "stream-exec-calc_1", "description": ""})
    plan["edges"] = [{"source": 62, "target": 65}, {"source": 65, "target": 63}] + [
        edge for edge in plan["edges"] if (edge["source"], edge["target"]) != (62, 63)
    ]
    again = jobkit.stateful_nodes(jobkit.stable_plan(json.dumps(plan)))
    assert [(node["id"], node["type"]) for node in again] == [
        (node["id"], node["type"]) for node in jobkit.stateful_nodes(json.dumps(stable))
    ]


def test_sink_ddl_adds_a_versions_columns_before_job_version() -> None:
    ddl = jobkit.sink_ddl(settings(), ["avg_order_cents BIGINT"])
    assert "revenue_cents BIGINT, avg_order_cents BIGINT, job_version STRING" in ddl
    assert "'topic' = 'orders-by-category',\n            'properties.bootstrap.servers' = '127.0.0.1:9092'" in ddl
    assert "'format' = 'json',\n            'sink.partitioner' = 'fixed'" in ddl


def test_source_ddl_renders_its_kafka_options() -> None:
    ddl = jobkit.source_ddl(settings("--consumer-group", "g-1", "--startup-mode", "latest-offset"))
    assert "'connector' = 'kafka',\n            'topic' = 'orders'" in ddl
    assert "'properties.group.id' = 'g-1'" in ddl and "'scan.startup.mode' = 'latest-offset'" in ddl
    assert "'json.ignore-parse-errors' = 'true'" in ddl


def test_expected_windows_by_hand() -> None:
    products = {"p-1": "books", "p-2": "games"}
    events = [
        {"product_id": "p-1", "quantity": 2, "amount_cents": 100, "status": "PAID", "ts": 1_000},
        {"product_id": "p-2", "quantity": 1, "amount_cents": 50, "status": "PAID", "ts": 4_000},
        {"product_id": "p-1", "quantity": 1, "amount_cents": 70, "status": "CANCELLED", "ts": 6_000},
        {"product_id": "p-9", "quantity": 3, "amount_cents": 30, "status": "PAID", "ts": 11_000},
        {"product_id": "p-1", "quantity": 0, "amount_cents": 30, "status": "PAID", "ts": 12_000},
        {"product_id": "p-1", "quantity": 1, "amount_cents": 10, "status": "PAID", "ts": 21_000},
    ]
    rows = dataset.expected_windows(events, products, 10_000, watermark=21_000)
    assert rows == [
        {"window_start": 0, "window_end": 10_000, "category": "books", "orders": 1, "units": 2, "revenue_cents": 100},
        {"window_start": 0, "window_end": 10_000, "category": "games", "orders": 1, "units": 1, "revenue_cents": 50},
        {
            "window_start": 10_000,
            "window_end": 20_000,
            "category": "UNKNOWN",
            "orders": 1,
            "units": 3,
            "revenue_cents": 30,
        },
    ]
    assert dataset.totals(rows) == {
        "books": {"orders": 1, "units": 2, "revenue_cents": 100},
        "games": {"orders": 1, "units": 1, "revenue_cents": 50},
        "UNKNOWN": {"orders": 1, "units": 3, "revenue_cents": 30},
    }


def test_dataset_exercises_every_branch_of_the_job() -> None:
    events = dataset.orders(0, 70)
    products = dataset.load_products()
    assert {e["status"] for e in events} == {"PAID", "CANCELLED"}
    assert any(e["quantity"] == 0 for e in events)
    assert {products.get(e["product_id"], "UNKNOWN") for e in events} == {
        "books",
        "games",
        "garden",
        "music",
        "UNKNOWN",
    }
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


@pytest.mark.parametrize("version", ["v1", "v2", "broken"])
def test_each_version_has_help_and_refuses_bad_arguments_without_pyflink(version: str) -> None:
    script = JOBS / "orders_enrichment" / f"{version}.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    assert f"orders_enrichment {version}" in shown.stdout
    assert "--checkpoint-interval-seconds" in shown.stdout
    refused = subprocess.run(
        [sys.executable, str(script), "--window-seconds", "0"], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2
    assert "--window-seconds: must be at least 1" in refused.stderr
