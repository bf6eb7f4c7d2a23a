"""What every version of the orders-enrichment job shares: its arguments, its Flink settings, its tables and
the stable operator uids that let one version restore another's savepoint.

This module does not import PyFlink at import time, so the Airflow DAGs (whose virtualenv has no PyFlink)
can validate a job's arguments with :func:`validate_args` before anything is submitted. Only :func:`run`
needs PyFlink, and it runs inside Flink's Python (``python.client.executable``).

Stable uids: a Table API job gets no operator uids unless it runs from a *compiled plan*
(``table.exec.uid.generation`` = ``PLAN_ONLY``, the default); the uids are then ``<id>_<transformation>``
(``table.exec.uid.format``) where ``<id>`` is the plan node's id. The planner numbers nodes from a counter
global to the JVM, so in a session cluster (where every PyFlink job is planned in the JobManager's JVM)
the same query gets other ids on every submission. :func:`stable_plan` renumbers the compiled plan before
it runs: nodes that can hold state (sources, joins, aggregates, sinks...) get 1, 2, 3... in plan order,
stateless ones (calc, exchange, watermark assigner) 1001, 1002... So a new version may change
expressions, projections and filters, or add stateless steps, and still restore the previous version's
savepoint, as long as its stateful operators stay the same and in the same order.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_PRODUCTS = PACKAGE_DIR / "data" / "products.csv"

STATELESS_NODE_TYPES = frozenset({"stream-exec-calc", "stream-exec-exchange", "stream-exec-watermark-assigner"})
"""Plan nodes that hold no state: their uids may change between versions without losing anything."""

STATELESS_ID_BASE = 1000
UID_FORMAT = "<id>_<transformation>"

CHECKPOINT_MODES = {"exactly-once": "EXACTLY_ONCE", "at-least-once": "AT_LEAST_ONCE"}
STATE_BACKENDS = ("hashmap", "rocksdb")
RESTART_STRATEGIES = ("fixed-delay", "exponential-delay", "none")
STARTUP_MODES = ("earliest-offset", "latest-offset", "group-offsets")

ExtraAggregates = Callable[[], Sequence[Any]]
"""What a version adds to the pipeline: called inside Flink's Python, returns aliased PyFlink expressions."""

_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_BOOTSTRAP = re.compile(r"[a-zA-Z0-9._-]+:\d{1,5}(,[a-zA-Z0-9._-]+:\d{1,5})*")
_GROUP = re.compile(r"[a-zA-Z0-9._-]{1,255}")
_JOB_NAME = re.compile(r"[\w .:@/-]{1,200}")


class JobArgumentError(ValueError):
    """The job's command-line arguments are invalid; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    """The validated settings of one job run.

    :param version: the job version (``v1``, ``v2``...), written into every output row.
    :param job_name: the Flink job name (``pipeline.name``).
    :param bootstrap_servers: Kafka brokers as Flink reaches them.
    :param source_topic: topic of the JSON order events.
    :param sink_topic: topic the per-window aggregates are written to.
    :param consumer_group: the Kafka consumer group of the source.
    :param startup_mode: where the source starts when not restoring from a snapshot.
    :param products_path: the products reference file (CSV) the orders are enriched from.
    :param window_seconds: size of the tumbling event-time windows.
    :param watermark_delay_seconds: bounded out-of-orderness of the order events.
    :param checkpoint_interval_seconds: seconds between checkpoints.
    :param checkpoint_mode: ``exactly-once`` or ``at-least-once``.
    :param checkpoint_dir: where checkpoints go (``None``: the cluster's ``execution.checkpointing.dir``).
    :param state_backend: ``hashmap`` or ``rocksdb``.
    :param restart_strategy: ``fixed-delay``, ``exponential-delay`` or ``none``.
    :param restart_attempts: fixed-delay: restarts before the job fails.
    :param restart_delay_seconds: fixed-delay: pause between restarts.
    :param restart_initial_backoff_seconds: exponential-delay: first pause.
    :param restart_max_backoff_seconds: exponential-delay: longest pause.
    :param restart_backoff_multiplier: exponential-delay: growth of the pause.
    :param restart_max_attempts: exponential-delay: restarts before the job fails.
    :param parallelism: the job's parallelism (task slots it needs).
    :param dry_run: print the stable plan and its uids instead of submitting.
    """

    version: str
    job_name: str
    bootstrap_servers: str
    source_topic: str
    sink_topic: str
    consumer_group: str
    startup_mode: str
    products_path: str
    window_seconds: int
    watermark_delay_seconds: int
    checkpoint_interval_seconds: int
    checkpoint_mode: str
    checkpoint_dir: str | None
    state_backend: str
    restart_strategy: str
    restart_attempts: int
    restart_delay_seconds: int
    restart_initial_backoff_seconds: int
    restart_max_backoff_seconds: int
    restart_backoff_multiplier: float
    restart_max_attempts: int
    parallelism: int
    dry_run: bool


def _matching(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"invalid {what}: {value!r}")
        return value

    return check


def _at_least(minimum: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return check


def _multiplier(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number >= 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 1.0, got {value}")
    return number


def _checkpoint_dir(value: str) -> str:
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", value) or (value.startswith("/") and " " not in value):
        return value
    raise argparse.ArgumentTypeError(f"must be a URI (file://, s3://...) or an absolute path, got {value!r}")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so callers other than ``main`` can use it."""

    def error(self, message: str) -> Any:
        raise JobArgumentError(f"{self.prog}: {message}")


def build_parser(version: str, description: str) -> argparse.ArgumentParser:
    """The command line of a job version.

    :param version: the version, e.g. ``v1``.
    :param description: what this version does, for ``--help``.
    """
    parser = _Parser(
        prog=f"orders_enrichment/{version}.py",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    kafka = parser.add_argument_group("Kafka")
    kafka.add_argument("--bootstrap-servers", default="127.0.0.1:9092", type=_matching(_BOOTSTRAP, "host:port list"))
    kafka.add_argument(
        "--source-topic",
        default="orders",
        type=_matching(_TOPIC, "topic name"),
        help="JSON order events: order_id, customer_id, product_id, quantity, amount_cents, "
        "status, ts (epoch milliseconds)",
    )
    kafka.add_argument(
        "--sink-topic",
        default="orders-by-category",
        type=_matching(_TOPIC, "topic name"),
        help="per-window, per-category aggregates as JSON",
    )
    kafka.add_argument("--consumer-group", default="orders-enrichment", type=_matching(_GROUP, "group id"))
    kafka.add_argument(
        "--startup-mode",
        default="earliest-offset",
        choices=STARTUP_MODES,
        help="where the source starts when the job does not restore a snapshot",
    )
    logic = parser.add_argument_group("processing")
    logic.add_argument(
        "--products-path",
        default=str(DEFAULT_PRODUCTS),
        help="the products reference CSV (product_id,category,valid_from_ms); an absolute path "
        "readable by the TaskManagers",
    )
    logic.add_argument("--window-seconds", default=60, type=_at_least(1), help="tumbling event-time window size")
    logic.add_argument(
        "--watermark-delay-seconds",
        default=5,
        type=_at_least(0),
        help="bounded out-of-orderness: watermark = max event time - delay",
    )
    flink = parser.add_argument_group("Flink")
    flink.add_argument("--job-name", default=f"orders_enrichment-{version}", type=_matching(_JOB_NAME, "job name"))
    flink.add_argument("--parallelism", default=1, type=_at_least(1))
    flink.add_argument("--checkpoint-interval-seconds", default=10, type=_at_least(1))
    flink.add_argument("--checkpoint-mode", default="exactly-once", choices=sorted(CHECKPOINT_MODES))
    flink.add_argument(
        "--checkpoint-dir",
        default=None,
        type=_checkpoint_dir,
        help="checkpoint storage (default: the cluster's execution.checkpointing.dir)",
    )
    flink.add_argument("--state-backend", default="hashmap", choices=STATE_BACKENDS)
    restart = parser.add_argument_group("restart strategy")
    restart.add_argument("--restart-strategy", default="fixed-delay", choices=RESTART_STRATEGIES)
    restart.add_argument("--restart-attempts", default=3, type=_at_least(0), help="fixed-delay: restarts allowed")
    restart.add_argument("--restart-delay-seconds", default=10, type=_at_least(0), help="fixed-delay: pause")
    restart.add_argument(
        "--restart-initial-backoff-seconds", default=1, type=_at_least(1), help="exponential-delay: first pause"
    )
    restart.add_argument(
        "--restart-max-backoff-seconds", default=60, type=_at_least(1), help="exponential-delay: longest pause"
    )
    restart.add_argument(
        "--restart-backoff-multiplier", default=2.0, type=_multiplier, help="exponential-delay: pause growth factor"
    )
    restart.add_argument(
        "--restart-max-attempts", default=10, type=_at_least(0), help="exponential-delay: restarts allowed"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compile the plan and print it with its operator uids as JSON; submit nothing",
    )
    return parser


def validate_args(argv: Sequence[str], version: str, description: str = "") -> Settings:
    """Parse and check a job version's arguments without PyFlink.

    :param argv: the arguments (without the program name).
    :param version: the version, e.g. ``v1``.
    :param description: the version's description, for ``--help``.
    :raises JobArgumentError: naming the first bad argument.
    """
    args = build_parser(version, description).parse_args(list(argv))
    products = Path(args.products_path)
    if not products.is_absolute():
        raise JobArgumentError(f"--products-path must be an absolute path, got {args.products_path!r}")
    if not products.is_file():
        raise JobArgumentError(f"--products-path does not exist: {args.products_path}")
    if args.restart_initial_backoff_seconds > args.restart_max_backoff_seconds:
        raise JobArgumentError("--restart-initial-backoff-seconds must not exceed --restart-max-backoff-seconds")
    if args.source_topic == args.sink_topic:
        raise JobArgumentError("--source-topic and --sink-topic must differ")
    return Settings(version=version, **vars(args))


def flink_configuration(settings: Settings) -> dict[str, str]:
    """The Flink options a job run sets: checkpoints, state backend, restarts, time zone, uids.

    :param settings: the job's settings.
    """
    config = {
        "pipeline.name": settings.job_name,
        "parallelism.default": str(settings.parallelism),
        "execution.checkpointing.interval": f"{settings.checkpoint_interval_seconds} s",
        "execution.checkpointing.mode": CHECKPOINT_MODES[settings.checkpoint_mode],
        # Kept after a cancel, so a job can be recovered from its latest checkpoint.
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.backend.type": settings.state_backend,
        "restart-strategy.type": settings.restart_strategy,
        "table.local-time-zone": "UTC",
        "table.exec.uid.generation": "PLAN_ONLY",
        "table.exec.uid.format": UID_FORMAT,
    }
    if settings.checkpoint_dir:
        config["execution.checkpointing.dir"] = settings.checkpoint_dir
    if settings.restart_strategy == "fixed-delay":
        config["restart-strategy.fixed-delay.attempts"] = str(settings.restart_attempts)
        config["restart-strategy.fixed-delay.delay"] = f"{settings.restart_delay_seconds} s"
    elif settings.restart_strategy == "exponential-delay":
        config["restart-strategy.exponential-delay.initial-backoff"] = f"{settings.restart_initial_backoff_seconds} s"
        config["restart-strategy.exponential-delay.max-backoff"] = f"{settings.restart_max_backoff_seconds} s"
        config["restart-strategy.exponential-delay.backoff-multiplier"] = str(settings.restart_backoff_multiplier)
        config["restart-strategy.exponential-delay.attempts-before-reset-backoff"] = str(settings.restart_max_attempts)
    return config


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _kafka_table(settings: Settings, topic: str, options: dict[str, str]) -> str:
    """The WITH clause of a Kafka table of JSON rows: connector, topic, brokers and the table's own options.

    :param settings: the job's settings (the brokers).
    :param topic: the table's topic.
    :param options: further connector options, e.g. ``{"scan.startup.mode": "earliest-offset"}``.
    """
    rendered = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": settings.bootstrap_servers,
        "format": "json",
        **options,
    }
    return ",\n            ".join(f"{_sql_string(key)} = {_sql_string(value)}" for key, value in rendered.items())


def source_ddl(settings: Settings) -> str:
    """The Kafka table of order events, with a deterministic (per-event) watermark.

    :param settings: the job's settings.
    """
    source_options = {
        "properties.group.id": settings.consumer_group,
        "scan.startup.mode": settings.startup_mode,
        "scan.watermark.emit.strategy": "on-event",
        "json.ignore-parse-errors": "true",
    }
    return f"""
        CREATE TEMPORARY TABLE orders (
            order_id STRING,
            customer_id STRING,
            product_id STRING,
            quantity INT,
            amount_cents BIGINT,
            status STRING,
            ts BIGINT,
            event_time AS TO_TIMESTAMP_LTZ(ts, 3),
            WATERMARK FOR event_time AS event_time - INTERVAL '{settings.watermark_delay_seconds}' SECOND
        ) WITH (
            {_kafka_table(settings, settings.source_topic, source_options)}
        )"""


def products_ddl(settings: Settings) -> str:
    """The products reference table: a versioned table (primary key + event time) read from a CSV file.

    The file source is bounded: once read, it emits the end-of-time watermark, so the event-time temporal
    join waits only for the orders' watermark. After a restore the join's state still holds every product.

    :param settings: the job's settings.
    """
    return f"""
        CREATE TEMPORARY TABLE products (
            product_id STRING,
            category STRING,
            valid_from_ms BIGINT,
            valid_from AS TO_TIMESTAMP_LTZ(valid_from_ms, 3),
            PRIMARY KEY (product_id) NOT ENFORCED,
            WATERMARK FOR valid_from AS valid_from
        ) WITH (
            'connector' = 'filesystem',
            'path' = {_sql_string(settings.products_path)},
            'format' = 'csv',
            'csv.ignore-parse-errors' = 'false'
        )"""


def sink_ddl(settings: Settings, extra_columns: Sequence[str] = ()) -> str:
    """The Kafka table of per-window aggregates.

    :param settings: the job's settings.
    :param extra_columns: columns a version adds, e.g. ``avg_order_cents BIGINT``.
    """
    columns = [
        "window_start TIMESTAMP_LTZ(3)",
        "window_end TIMESTAMP_LTZ(3)",
        "category STRING",
        "orders BIGINT",
        "units BIGINT",
        "revenue_cents BIGINT",
        *extra_columns,
        "job_version STRING",
    ]
    sink_options = {"sink.partitioner": "fixed", "json.timestamp-format.standard": "ISO-8601"}
    return f"""
        CREATE TEMPORARY TABLE order_stats (
            {", ".join(columns)}
        ) WITH (
            {_kafka_table(settings, settings.sink_topic, sink_options)}
        )"""


ENRICHED_SQL = """
    SELECT o.order_id, o.quantity, o.amount_cents, o.event_time, COALESCE(p.category, 'UNKNOWN') AS category
    FROM paid_orders AS o
    LEFT JOIN products FOR SYSTEM_TIME AS OF o.event_time AS p
    ON o.product_id = p.product_id
"""
"""Enrichment: an event-time temporal join keeps the orders' time attribute, so windows can follow it."""


def window_stats(t_env: Any, settings: Settings, extra_aggregates: Sequence[Any] = ()) -> Any:
    """The pipeline every version runs: paid orders with a positive quantity, enriched with their product's
    category, aggregated per category and tumbling event-time window.

    The stateful operators (sources, temporal join, window aggregate, sink) and so their uids come from
    here; a version changes only what it passes in ``extra_aggregates``.

    :param t_env: the TableEnvironment with the job's tables.
    :param settings: the job's settings (its window size and version).
    :param extra_aggregates: the version's aliased output columns, between ``revenue_cents`` and
        ``job_version`` (matching its ``sink_columns``). An expression over the window's existing aggregates
        keeps the state compatible; a new aggregate function changes the window operator's state.
    """
    from pyflink.table import DataTypes
    from pyflink.table.expressions import col, lit
    from pyflink.table.window import Tumble

    paid = t_env.from_path("orders").filter((col("status") == "PAID") & (col("quantity") > 0))
    t_env.create_temporary_view("paid_orders", paid)
    enriched = t_env.sql_query(ENRICHED_SQL)
    return (
        enriched.window(Tumble.over(lit(settings.window_seconds).seconds).on(col("event_time")).alias("w"))
        .group_by(col("w"), col("category"))
        .select(
            col("w").start.alias("window_start"),
            col("w").end.alias("window_end"),
            col("category"),
            col("order_id").count.alias("orders"),
            col("quantity").sum.cast(DataTypes.BIGINT()).alias("units"),
            col("amount_cents").sum.alias("revenue_cents"),
            *extra_aggregates,
            lit(settings.version).alias("job_version"),
        )
    )


def node_type(node: dict[str, Any]) -> str:
    """A plan node's type without its version suffix, e.g. ``stream-exec-calc``.

    :param node: a node of the JSON plan.
    """
    return re.sub(r"_\d+$", "", str(node["type"]))


def stable_plan(plan_json: str) -> str:
    """Renumber a compiled plan's nodes so their uids do not depend on the JVM's node counter.

    Stateful nodes get ids 1, 2, 3... in plan order; stateless ones (:data:`STATELESS_NODE_TYPES`) get
    ``STATELESS_ID_BASE + 1``, ``+ 2``... Edges follow the new ids.

    :param plan_json: the compiled plan as JSON.
    :return: the renumbered plan as JSON.
    """
    plan = json.loads(plan_json)
    new_ids: dict[int, int] = {}
    stateful = stateless = 0
    for node in plan["nodes"]:
        if node_type(node) in STATELESS_NODE_TYPES:
            stateless += 1
            new_ids[node["id"]] = STATELESS_ID_BASE + stateless
        else:
            stateful += 1
            new_ids[node["id"]] = stateful
        node["id"] = new_ids[node["id"]]
    for edge in plan["edges"]:
        edge["source"] = new_ids[edge["source"]]
        edge["target"] = new_ids[edge["target"]]
    return json.dumps(plan)


def stateful_nodes(plan_json: str) -> list[dict[str, Any]]:
    """The nodes of a (stable) plan that can hold state: id, type and description.

    :param plan_json: the compiled plan as JSON.
    """
    return [
        {"id": node["id"], "type": node_type(node), "description": node.get("description", "")}
        for node in json.loads(plan_json)["nodes"]
        if node_type(node) not in STATELESS_NODE_TYPES
    ]


def run(settings: Settings, extra_aggregates: ExtraAggregates | None = None, sink_columns: Sequence[str] = ()) -> None:
    """Create the tables, build the pipeline (:func:`window_stats`), compile it to a stable plan and submit it.

    :param settings: the job's settings.
    :param extra_aggregates: the version's extra output columns as Table API expressions (see
        :data:`ExtraAggregates`); ``None``: none.
    :param sink_columns: the version's extra output columns as SQL column definitions, in the same order.
    """
    from pyflink.table import CompiledPlan, EnvironmentSettings, PlanReference, TableEnvironment

    config = flink_configuration(settings)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    for key, value in config.items():
        t_env.get_config().set(key, value)
    t_env.execute_sql(source_ddl(settings))
    t_env.execute_sql(products_ddl(settings))
    t_env.execute_sql(sink_ddl(settings, sink_columns))
    table = window_stats(t_env, settings, extra_aggregates() if extra_aggregates else ())
    plan_json = stable_plan(table.insert_into("order_stats").compile_plan().as_json_string())
    if settings.dry_run:
        print(
            json.dumps(
                {
                    "settings": asdict(settings),
                    "flink_configuration": config,
                    "stateful_nodes": stateful_nodes(plan_json),
                },
                indent=2,
            )
        )
        return
    # Not t_env.load_plan(...): PyFlink 2.1's load_plan hands the CompiledPlan the Java environment, whose
    # execute() then fails with "Method _before_execute([]) does not exist".
    reference = PlanReference.from_json_string(plan_json)
    result = CompiledPlan(t_env._j_tenv.loadPlan(reference._j_plan_reference), t_env).execute()
    client = result.get_job_client()
    print(f"Submitted {settings.job_name} ({settings.version}) as job {client.get_job_id() if client else '?'}")


def main(
    version: str,
    description: str,
    extra_aggregates: ExtraAggregates | None = None,
    sink_columns: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> int:
    """Entry point of a job version: parse, validate, run. Bad arguments exit with status 2.

    :param version: the version, e.g. ``v1``.
    :param description: what the version does, for ``--help``: the first paragraph is shown.
    :param extra_aggregates: the version's extra output columns (see :func:`run`).
    :param sink_columns: their SQL column definitions.
    :param argv: arguments; default ``sys.argv[1:]``.
    """
    try:
        summary = description.strip().split("\n\n")[0]
        settings = validate_args(sys.argv[1:] if argv is None else argv, version, summary)
    except JobArgumentError as err:
        print(err, file=sys.stderr)
        return 2
    run(settings, extra_aggregates, sink_columns)
    return 0
