"""Fuzzing connection extras: any JSON gives a valid transport config or a ValueError naming the connection."""

from __future__ import annotations

import json
import math
from typing import Any
from unittest import mock

import pytest
from airflow.sdk import Connection
from hypothesis import given
from hypothesis import strategies as st

from airflow_flink_provider.hooks.base import (
    OUTAGE_BUDGET_MAX,
    RETRIES_MAX,
    RETRY_WAIT_MAX,
    TIMEOUT_MAX,
    transport_config_from_connection,
)
from airflow_flink_provider.hooks.transport import TransportConfig
from tests.unit._fuzz import fuzz

pytestmark = pytest.mark.unit

KEYS = ["auth_type", "token", "verify", "cert", "timeout", "retries", "retry_wait", "outage_budget", "ui_url"]
numbers_as_text = st.sampled_from(["nan", "inf", "-inf", "1e9", "0", "-1", "30", " 12.5 ", "5", "1e-9", "", "true"])
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12) | numbers_as_text
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
extras = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=6)


def _connection(extra: Any, host: str | None, port: int | None, login: str | None, password: str | None) -> Connection:
    return Connection(
        conn_id="fuzzed", conn_type="flink", host=host, port=port, login=login, password=password,
        extra=json.dumps(extra),
    )  # fmt: skip


def _config(conn: Connection) -> TransportConfig:
    """The config, with Airflow's masker left out: extra_dejson registers every parsed extra with it, and
    thousands of random values would make its pattern ever slower for the rest of the test session."""
    with mock.patch("airflow.sdk.log.mask_secret"):
        return transport_config_from_connection(conn, 8081)


def _check_valid(config: TransportConfig) -> None:
    assert config.base_url.startswith(("http://", "https://"))
    assert 0 < config.timeout <= TIMEOUT_MAX and math.isfinite(config.timeout)
    assert 1 <= config.retry.attempts <= RETRIES_MAX
    assert 0 <= config.retry.initial <= RETRY_WAIT_MAX
    assert 0 <= config.outage_budget <= OUTAGE_BUDGET_MAX
    assert config.verify is True or config.verify is False or isinstance(config.verify, str)
    assert config.cert is None or isinstance(config.cert, str) or len(config.cert) == 2


@fuzz(examples=200)
@given(
    extra=extras,
    host=st.none() | st.sampled_from(["h", "https://h/p", "http://h:8081", "::1", "http://h:99"]) | st.text(max_size=9),
    port=st.none() | st.integers(min_value=-5, max_value=100_000),
    login=st.none() | st.text(max_size=5),
    password=st.none() | st.text(max_size=5),
)
def test_any_extras_give_a_valid_config_or_a_clear_error(
    extra: dict[str, Any], host: str | None, port: int | None, login: str | None, password: str | None
) -> None:
    try:
        config = _config(_connection(extra, host, port, login, password))
    except ValueError as error:
        assert str(error).startswith("Connection 'fuzzed'"), error
        return
    _check_valid(config)


@fuzz(examples=100)
@given(extra=json_values)
def test_extras_that_are_not_an_object_are_refused_or_ignored(extra: Any) -> None:
    try:
        config = _config(_connection(extra, "h", None, None, None))
    except ValueError as error:
        if isinstance(extra, dict):  # an object with a bad value (e.g. {"token": false}) names its extra
            assert str(error).startswith("Connection 'fuzzed', extra "), error
        else:
            assert str(error).startswith("Connection 'fuzzed': the extras must be a JSON object"), error
        return
    assert isinstance(extra, dict) or extra is None  # null: no extras
    _check_valid(config)
