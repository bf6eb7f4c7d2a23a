"""Fixtures shared by the integration tests: the hooks, a session, the test jar, Kafka topics and clean-up of
started jobs (every job a test starts is cancelled and waited for: other people share the cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from tests.integration._flink_it import KAFKA, build_throttled_jar, cancel_all


@pytest.fixture
def rest() -> FlinkRestHook:
    return FlinkRestHook()


@pytest.fixture
def gateway() -> FlinkSqlGatewayHook:
    return FlinkSqlGatewayHook()


@pytest.fixture
def jobs(rest: FlinkRestHook) -> Iterator[list[str]]:
    """Job ids a test started; the live ones are cancelled at teardown, which waits until they are gone."""
    started: list[str] = []
    yield started
    cancel_all(rest, started)


started_jobs = jobs  # the operator tests' name for the same fixture


@pytest.fixture
def session(gateway: FlinkSqlGatewayHook) -> Iterator[str]:
    """A gateway session at parallelism 1, closed afterwards."""
    handle = gateway.open_session({"parallelism.default": "1"}, session_name=f"it-{uuid.uuid4().hex[:8]}")
    yield handle
    gateway.close_session(handle)


@pytest.fixture(scope="session")
def throttled_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_throttled_jar(tmp_path_factory.mktemp("jar"))


@pytest.fixture
def topics() -> Iterator[Callable[[str], str]]:
    """Make unique Kafka topics (one partition); all deleted at teardown."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": KAFKA})
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"it-{prefix}-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
        made.append(name)
        return name

    yield make
    if made:
        for future in admin.delete_topics(made).values():
            future.result(timeout=30)
