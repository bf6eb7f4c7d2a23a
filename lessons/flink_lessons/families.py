"""The Variable families of the lesson DAGs, each one JSON Variable (see :mod:`flink_lessons.settings`).

- ``flink_phase0`` and ``flink_phase1``: the SQL scenarios of phases 0 and 1 (topics get the run tag);
- ``flink_phase4_pyflink``: what flink_deploy_pyflink, flink_upgrade_with_rollback and
  flink_recover_from_savepoint run and how they judge it;
- ``flink_phase4_sql``: which SQL scenario flink_deploy_sql submits and how it is watched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flink_lessons.phase3.settings import FAMILIES as PHASE3_FAMILIES
from flink_lessons.rules import (
    CONN_ID,
    Boolean,
    Bootstrap,
    Choice,
    DurationRule,
    Integer,
    JsonObject,
    LocalFile,
    Location,
    Name,
    Number,
    Topic,
)
from flink_lessons.settings import Family, Key, Problem

TOPIC_SUFFIX_LENGTH = 9
"""Each phase 0/1 run appends ``-<8 hex digits>`` to every topic, so reruns never read an earlier run's events."""

STARTUP_MODES = Choice("earliest-offset", "latest-offset", "group-offsets")
SCENARIO_TOPIC = Topic(reserve=TOPIC_SUFFIX_LENGTH)
NAME = r"[A-Za-z0-9_.-]{1,100}"


def _scenario_keys(*, consumer: bool) -> tuple[Key, ...]:
    keys = [
        Key("startup_mode", "earliest-offset", STARTUP_MODES,
            "Where the Flink Kafka source starts ('scan.startup.mode'). The expected outputs assume "
            "earliest-offset; latest-offset reads nothing that was produced before the job started."),
        Key("parallelism", 1, Integer(1),
            "Parallelism of the Flink jobs (slots they need). Set it above the cluster's slot count to see the "
            "'not enough task slots' failure."),
        Key("kafka_conn_id", "kafka_default", CONN_ID,
            "Airflow Kafka connection used to create topics and produce the fixtures."),
        Key("flink_bootstrap_servers", None, Bootstrap(),
            "Kafka bootstrap servers as Flink reaches them; null: the Kafka connection's bootstrap.servers.",
            nullable=True),
    ]  # fmt: skip
    if consumer:
        keys.append(Key("kafka_consumer_conn_id", "kafka_practice_consumer", CONN_ID,
                        "Airflow Kafka connection used to read the sink topics; it needs group.id and "
                        "auto.offset.reset=earliest (see docs/local-setup.md)."))  # fmt: skip
    return tuple(keys)


PHASE0 = Family(
    variable="flink_phase0",
    title="Phase 0: Kafka source, transformation, print sink",
    keys=(
        Key("topics.input", "phase0-orders", SCENARIO_TOPIC, "Topic the order fixture is produced to and Flink reads."),
        *_scenario_keys(consumer=False),
        Key("observe_timeout", "60s", DurationRule(1000),
            "How long the observe task waits for the print sink's lines in the TaskManager's stdout."),
    ),
    bootstrap_key="flink_bootstrap_servers",
)

_PHASE1_TOPICS = {
    "malformed_input": "malformed_json: raw events, some malformed",
    "malformed_parsed": "malformed_json (a): rows kept by json.ignore-parse-errors",
    "malformed_clean": "malformed_json (b): valid rows",
    "malformed_dlq": "malformed_json (b): dead letters with reason and payload",
    "schema_input": "schema_evolution: v1 and v2 producers' events",
    "schema_v1": "schema_evolution: read with the original table",
    "schema_v2": "schema_evolution: read again after ALTER TABLE ADD",
    "event_time_input": "event_time_watermarks: readings, epoch and ISO times",
    "event_time_tumble": "event_time_watermarks: tumbling window results",
    "event_time_hop": "event_time_watermarks: hopping window results",
    "dedup_input": "dedup: order status events with duplicates",
    "dedup_first": "dedup: keep-first rows (append)",
    "dedup_last": "dedup: keep-last rows (upsert, keyed by order_id)",
    "late_input": "late_events: events in arrival order",
    "late_windows": "late_events: tumbling window results",
    "late_events": "late_events: the events the windows dropped as late",
    "failure_input": "failure_checks: events with a malformed one",
    "failure_output": "failure_checks: the strict JSON job's sink",
}
"""Topic role -> what it holds; its default topic is the role, dashed, after ``phase1-``."""


def _hop_windows(values: Mapping[str, Any]) -> Iterator[Problem]:
    size, slide = values.get("window_size"), values.get("window_slide")
    if size is None or slide is None:
        return
    if slide.ms > size.ms:
        yield Problem(("window_slide", "window_size"),
                      f"window_slide must not be larger than window_size ({size.text}), got {slide.text}")  # fmt: skip
    elif size.ms % slide.ms:
        yield Problem(("window_slide", "window_size"), f"window_size ({size.text}) must be a whole multiple of "
                      f"window_slide (Flink's HOP window TVF requires it), got {slide.text}")  # fmt: skip


PHASE1 = Family(
    variable="flink_phase1",
    title="Phase 1: data quality and transformation scenarios",
    keys=(
        *(Key(f"topics.{role}", f"phase1-{role.replace('_', '-')}", SCENARIO_TOPIC, text)
          for role, text in _PHASE1_TOPICS.items()),
        Key("window_size", "10s", DurationRule(1000), "Size of the tumbling and hopping windows."),
        Key("window_slide", "5s", DurationRule(1000),
            "Slide of the hopping windows: no larger than window_size, and window_size must be a whole "
            "multiple of it (Flink's HOP window TVF requires it)."),
        Key("watermark_delay", "2s", DurationRule(0),
            "Bounded out-of-orderness: WATERMARK FOR event_time AS event_time - <delay>."),
        *_scenario_keys(consumer=True),
    ),
    checks=(_hop_windows,),
    bootstrap_key="flink_bootstrap_servers",
)

NO_FAULT = "none"
FAULTS = (NO_FAULT, "savepoint_failure")
"""The choices of ``fault_injection``: no fault, or the fault a drill injects."""


def _distinct_topics(values: Mapping[str, Any]) -> Iterator[Problem]:
    if values.get("topics.source") is not None and values.get("topics.source") == values.get("topics.sink"):
        yield Problem(("topics.sink", "topics.source"), "the sink topic must differ from the source topic")


def _backoff(values: Mapping[str, Any]) -> Iterator[Problem]:
    initial, longest = values.get("restart.initial_backoff"), values.get("restart.max_backoff")
    if initial is not None and longest is not None and initial.ms > longest.ms:
        yield Problem(("restart.initial_backoff", "restart.max_backoff"),
                      f"the first pause ({initial.text}) must not exceed the longest ({longest.text})")  # fmt: skip


PYFLINK = Family(
    variable="flink_phase4_pyflink",
    title="flink_deploy_pyflink, flink_upgrade_with_rollback, flink_recover_from_savepoint",
    keys=(
        Key("job", "orders_enrichment", Name("a job package under include/pyflink", r"[A-Za-z_][A-Za-z0-9_]{0,99}"),
            "The job: the package `include/pyflink/<job>/`, whose `VERSIONS` are its programs `<version>.py`."),
        Key("job_name", "orders_enrichment", Name("a job name", NAME),
            "`<job>` of the Flink job name `<job>@<version>`; the running version is found by it."),
        Key("version", "v1", Name("a version of the job", r"[A-Za-z0-9_]{1,50}"),
            "The version to deploy (flink_deploy_pyflink) or upgrade to (flink_upgrade_with_rollback)."),
        Key("topics.source", "orders", Topic(), "Topic of the order events."),
        Key("topics.sink", "orders-by-category", Topic(), "Topic the per-window aggregates are written to."),
        Key("create_topics", True, Boolean(),
            "flink_deploy_pyflink creates the source and sink topics (one partition) when they are missing."),
        Key("consumer_group", "orders-enrichment", Name("a Kafka consumer group id", NAME),
            "Consumer group of the job's Kafka source."),
        Key("startup_mode", "earliest-offset", STARTUP_MODES, "Where a job that does not restore a snapshot starts."),
        Key("window_size", "60s", DurationRule(1000), "Size of the tumbling event-time windows."),
        Key("watermark_delay", "5s", DurationRule(0), "Bounded out-of-orderness of the events."),
        Key("parallelism", 1, Integer(1), "Parallelism of the job (task slots it takes)."),
        Key("checkpoint.interval", "10s", DurationRule(1000), "Time between checkpoints."),
        Key("checkpoint.mode", "exactly-once", Choice("exactly-once", "at-least-once"), "Checkpointing mode."),
        Key("checkpoint.dir", None, Location(), "Checkpoint storage; null: the cluster's execution.checkpointing.dir.",
            nullable=True),
        Key("state_backend", "hashmap", Choice("hashmap", "rocksdb"), "State backend."),
        Key("restart.strategy", "fixed-delay", Choice("fixed-delay", "exponential-delay", "none"),
            "Flink restart strategy of the job."),
        Key("restart.attempts", 3, Integer(0), "fixed-delay: restarts before the job fails."),
        Key("restart.delay", "10s", DurationRule(0), "fixed-delay: pause between restarts."),
        Key("restart.initial_backoff", "1s", DurationRule(1000), "exponential-delay: first pause."),
        Key("restart.max_backoff", "60s", DurationRule(1000), "exponential-delay: longest pause."),
        Key("restart.multiplier", 2.0, Number(1.0), "exponential-delay: growth of the pause."),
        Key("savepoint_dir", None, Location(),
            "Where the upgrade's savepoints go; null: the cluster's execution.checkpointing.savepoint-dir.",
            nullable=True),
        Key("health.min_checkpoints", 2, Integer(0), "Health gate: completed checkpoints the new job must have."),
        Key("health.stable_for", "30s", DurationRule(0),
            "Health gate: how long the job must run with all tasks RUNNING and no new restart."),
        Key("health.max_restarts", 0, Integer(0),
            "Health gate: restarts (failures in the job's exception history) tolerated before it fails."),
        Key("health.timeout", "5 min", DurationRule(1000), "Health gate: give up (unhealthy) after this long."),
        Key("health.poll_interval", "2s", DurationRule(1000), "Health gate: time between looks at the job."),
        Key("kafka_conn_id", "kafka_default", CONN_ID,
            "Kafka connection whose bootstrap.servers the job uses when bootstrap_servers is null."),
        Key("bootstrap_servers", None, Bootstrap(), "Kafka brokers as Flink reaches them; null: from kafka_conn_id.",
            nullable=True),
        Key("python_jar", None, LocalFile(),
            "The flink-python jar to submit with; null: `$FLINK_STACK_HOME/opt/flink-python-*.jar`.", nullable=True),
        Key("fault_injection", NO_FAULT, Choice(*FAULTS),
            "Drills only: `savepoint_failure` makes the upgrade's first stop-with-savepoint fail (retry branch); "
            "`none` (or null): no fault.", nullable=True),
    ),
    checks=(_distinct_topics, _backoff),
    bootstrap_key="bootstrap_servers",
)

SQL_DEPLOY = Family(
    variable="flink_phase4_sql",
    title="flink_deploy_sql; the scenario's own settings come from its phase 0/1 Variable, `settings` overriding it",
    keys=(
        Key("scenario", "phase1_event_time_watermarks", Name("a scenario folder under include/sql", NAME),
            "The SQL scenario (a folder of include/sql) to submit."),
        Key("variant", "windows", Name("a script of the scenario", NAME),
            "Which of the scenario's scripts (`<variant>.sql.j2`)."),
        Key("settings", None, JsonObject(),
            "Overrides of the scenario's own Variable (flink_phase1/flink_phase0): topics, window_size, "
            "window_slide, watermark_delay, parallelism...", nullable=True),
        Key("wait_for", "FINISHED", Choice("RUNNING", "FINISHED"),
            "FINISHED: the bounded phase 1 scripts' jobs must finish; RUNNING: streaming jobs must run healthy, "
            "and keep running after the DAG run."),
        Key("max_restarts", 0, Integer(0), "wait_for RUNNING: restarts of a job tolerated while it is watched."),
        Key("timeout", "5 min", DurationRule(1000), "How long the jobs may take to reach wait_for."),
    ),
)

FAMILIES = {family.variable: family for family in (PHASE0, PHASE1, PYFLINK, SQL_DEPLOY)}
"""Every family by its Variable's name."""
FAMILIES.update(PHASE3_FAMILIES)  # the phase-3 lessons' families (flink_phase3_partitioning, flink_phase3_offsets)
