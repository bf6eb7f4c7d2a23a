"""Fixtures shared by the hook integration tests: the hooks, a session, and clean-up of started jobs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook


@pytest.fixture
def rest() -> FlinkRestHook:
    return FlinkRestHook()


@pytest.fixture
def gateway() -> FlinkSqlGatewayHook:
    return FlinkSqlGatewayHook()


@pytest.fixture
def jobs(rest: FlinkRestHook) -> Iterator[list[str]]:
    """Job ids a test started; every one still running is cancelled afterwards."""
    started: list[str] = []
    yield started
    for job_id in started:
        if rest.find_job(job_id) is not None:
            rest.cancel_job(job_id)


@pytest.fixture
def session(gateway: FlinkSqlGatewayHook) -> Iterator[str]:
    """A gateway session at parallelism 1, closed afterwards."""
    handle = gateway.open_session({"parallelism.default": "1"}, session_name=f"it-{uuid.uuid4().hex[:8]}")
    yield handle
    gateway.close_session(handle)
