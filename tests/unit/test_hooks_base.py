"""Airflow connection -> transport settings, and the hooks' wiring to their connections."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_flink_provider.hooks.base import transport_config_from_connection
from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.transport import AsyncTransport, BasicAuth, BearerAuth, SyncTransport

pytestmark = pytest.mark.unit


def conn(extra: dict[str, Any] | None = None, **fields: Any) -> Connection:
    return Connection(conn_id="c", conn_type="flink", extra=json.dumps(extra) if extra else None, **fields)


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "127.0.0.1"}, "http://127.0.0.1:8081"),
        ({"host": "127.0.0.1", "port": 9000}, "http://127.0.0.1:9000"),
        ({}, "http://localhost:8081"),
        ({"host": "https://flink.example.com"}, "https://flink.example.com:8081"),
        ({"host": "https://flink.example.com:443/flink/"}, "https://flink.example.com:443/flink"),
        ({"host": "https://flink.example.com:443/flink", "port": 8443}, "https://flink.example.com:8443/flink"),
        ({"host": "flink.example.com", "schema": "https"}, "https://flink.example.com:8081"),
        ({"host": "flink.example.com", "schema": "default"}, "http://flink.example.com:8081"),
        ({"host": "::1"}, "http://[::1]:8081"),
    ],
)
def test_base_url(fields: dict[str, Any], url: str) -> None:
    assert transport_config_from_connection(conn(**fields), 8081).base_url == url


def test_scheme_other_than_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http or https"):
        transport_config_from_connection(conn(host="ftp://x"), 8081)


def test_defaults() -> None:
    config = transport_config_from_connection(conn(host="h"), 8083)
    assert config.auth is None and config.verify is True and config.cert is None
    assert config.timeout == 30.0 and config.retry.attempts == 5


def test_login_gives_basic_auth() -> None:
    config = transport_config_from_connection(conn(host="h", login="ann", password="pw"), 8081)
    assert config.auth == BasicAuth("ann", "pw")


def test_bearer_from_extra_token_or_password() -> None:
    by_token = transport_config_from_connection(conn({"auth_type": "bearer", "token": "t1"}, host="h"), 8081)
    assert by_token.auth == BearerAuth("t1")
    implicit = transport_config_from_connection(conn({"token": "t2"}, host="h"), 8081)
    assert implicit.auth == BearerAuth("t2")
    by_password = transport_config_from_connection(conn({"auth_type": "bearer"}, host="h", password="t3"), 8081)
    assert by_password.auth == BearerAuth("t3")


@pytest.mark.parametrize(
    ("extra", "fields", "message"),
    [
        ({"auth_type": "bearer"}, {}, "needs a token"),
        ({"auth_type": "basic"}, {}, "needs the connection login"),
        ({"auth_type": "kerberos"}, {}, "'basic' or 'bearer'"),
        ({"timeout": "soon"}, {}, "must be a number"),
        ({"timeout": 0}, {}, "must be positive"),
        ({"retries": -1}, {}, "must be positive"),
    ],
)
def test_bad_extras_are_explained(extra: dict[str, Any], fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        transport_config_from_connection(conn(extra, host="h", **fields), 8081)


@pytest.mark.parametrize(
    ("verify", "expected"),
    [(False, False), ("false", False), ("True", True), ("/etc/ca.pem", "/etc/ca.pem"), (True, True)],
)
def test_verify(verify: Any, expected: bool | str) -> None:
    assert transport_config_from_connection(conn({"verify": verify}, host="h"), 8081).verify == expected


def test_cert_timeout_retries() -> None:
    config = transport_config_from_connection(
        conn({"cert": ["/c.pem", "/k.pem"], "timeout": "12.5", "retries": 2, "retry_wait": 0.1}, host="h"), 8081
    )
    assert config.cert == ("/c.pem", "/k.pem")
    assert config.timeout == 12.5
    assert config.retry.attempts == 2 and config.retry.initial == 0.1


def test_rest_hook_reads_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MY_FLINK",
        json.dumps({"conn_type": "flink", "host": "flink.internal", "port": 18081, "login": "u", "password": "p"}),
    )
    hook = FlinkRestHook(flink_conn_id="my_flink")
    assert hook.flink_conn_id == "my_flink"
    assert hook.transport_config.base_url == "http://flink.internal:18081"
    assert isinstance(hook.get_conn(), SyncTransport) and hook.get_conn() is hook.transport
    assert isinstance(hook.async_transport(), AsyncTransport)
    assert FlinkRestHook.conn_type == "flink" and FlinkRestHook.hook_name == "Apache Flink REST API"
    assert FlinkRestHook().flink_conn_id == "flink_default"


def test_ui_field_behaviour_mentions_the_default_port() -> None:
    behaviour = FlinkRestHook.get_ui_field_behaviour()
    assert behaviour["placeholders"]["port"] == "8081"


def test_async_transport_from_the_connection_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    async def fake_aget_connection(conn_id: str) -> Connection:
        assert conn_id == "my_flink"
        return conn(host="https://flink.internal/api", port=443)

    monkeypatch.setattr(FlinkRestHook, "aget_connection", staticmethod(fake_aget_connection))
    transport = asyncio.run(FlinkRestHook.aget_async_transport("my_flink"))
    assert isinstance(transport, AsyncTransport)
    assert transport.config.base_url == "https://flink.internal:443/api"
