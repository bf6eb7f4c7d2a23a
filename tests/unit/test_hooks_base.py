"""Airflow connection -> transport settings, and the hooks' wiring to their connections."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_flink_provider.hooks.base import mask_secrets, mask_secrets_in, transport_config_from_connection
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
        ({"auth_type": "bearer"}, {}, "extra 'auth_type': bearer auth needs a token"),
        ({"auth_type": "basic"}, {}, "extra 'auth_type': basic auth needs the connection login"),
        ({"auth_type": "kerberos"}, {}, "extra 'auth_type': must be 'none', 'basic' or 'bearer'"),
        ({"auth_type": 3}, {}, "extra 'auth_type': must be 'none', 'basic' or 'bearer'"),
        ({"token": ["a"]}, {}, "extra 'token': must be a string, got a list"),
        ({"timeout": "soon"}, {}, "extra 'timeout': must be a finite number of seconds, got 'soon'"),
        ({"timeout": "nan"}, {}, "extra 'timeout': must be a finite number of seconds, got 'nan'"),
        ({"timeout": "inf"}, {}, "extra 'timeout': must be a finite number of seconds"),
        ({"timeout": "-inf"}, {}, "extra 'timeout': must be a finite number of seconds"),
        ({"timeout": 0}, {}, "extra 'timeout': must be from more than 0 to 3600 seconds, got 0"),
        ({"timeout": -1}, {}, "extra 'timeout': must be from more than 0 to 3600 seconds"),
        ({"timeout": 1e9}, {}, "extra 'timeout': must be from more than 0 to 3600 seconds"),
        ({"timeout": True}, {}, "extra 'timeout': must be a finite number of seconds, got True"),
        ({"retries": -1}, {}, "extra 'retries': must be from 1 to 100, got -1"),
        ({"retries": 0}, {}, "extra 'retries': must be from 1 to 100"),
        ({"retries": 1e9}, {}, "extra 'retries': must be from 1 to 100, got 1000000000.0"),
        ({"retries": 2.5}, {}, "extra 'retries': must be a whole number, got 2.5"),
        ({"retries": "nan"}, {}, "extra 'retries': must be a whole number"),
        ({"retry_wait": "inf"}, {}, "extra 'retry_wait': must be a finite number of seconds"),
        ({"retry_wait": 1e6}, {}, "extra 'retry_wait': must be from 0 to 600 seconds"),
        ({"outage_budget": -5}, {}, "extra 'outage_budget': must be from 0 to 86400 seconds"),
        ({"outage_budget": "nan"}, {}, "extra 'outage_budget': must be a finite number of seconds"),
        (
            {"cert": ["/c.pem", "/k.pem", "/x.pem"]},
            {},
            "extra 'cert': must be the path of a PEM file or a list of exactly 2",
        ),
        ({"cert": ["/c.pem"]}, {}, "extra 'cert': .* exactly 2 paths"),
        ({"cert": ["/c.pem", 3]}, {}, "extra 'cert': .* exactly 2 paths"),
        ({"cert": ""}, {}, "extra 'cert': .* exactly 2 paths"),
        ({"cert": {"a": 1}}, {}, "extra 'cert': .* exactly 2 paths"),
        ({"verify": ""}, {}, "extra 'verify': is empty"),
        ({"verify": "  "}, {}, "extra 'verify': is empty"),
        ({"verify": "/no/such/ca.pem"}, {}, "extra 'verify': is not true/false and no CA bundle file exists"),
        ({"verify": 1.5}, {}, "extra 'verify': must be true, false or the path of a CA bundle file"),
        ({}, {"port": 99999}, "port must be from 1 to 65535, got 99999"),
        ({}, {"port": -1}, "port must be from 1 to 65535, got -1"),
        ({}, {"host": "http://h:99999"}, "the host URL's port must be from 1 to 65535"),
        ({}, {"host": "ftp://x"}, "scheme must be http or https"),
    ],
)
def test_bad_extras_are_explained(extra: dict[str, Any], fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^Connection 'c'(, |: ){message}"):
        transport_config_from_connection(conn(extra, **{"host": "h", **fields}), 8081)


def test_extras_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^Connection 'c': the extras must be a JSON object, got list"):
        transport_config_from_connection(conn([1, 2], host="h"), 8081)  # type: ignore[arg-type]


def test_extras_that_are_not_json_are_refused_without_echoing_them() -> None:
    broken = Connection(conn_id="c", conn_type="flink", host="h", extra='{"token": "tok-9876543", ')
    with pytest.raises(ValueError, match=r"^Connection 'c': the extras are not valid JSON") as raised:
        transport_config_from_connection(broken, 8081)
    assert "tok-9876543" not in str(raised.value)


def test_null_extras_take_their_defaults() -> None:
    nulls = {key: None for key in ("auth_type", "token", "verify", "cert", "timeout", "retries", "retry_wait")}
    config = transport_config_from_connection(conn({**nulls, "outage_budget": None}, host="h"), 8081)
    assert config == transport_config_from_connection(conn(host="h"), 8081)
    assert config.verify is True and config.timeout == 30.0 and config.retry.attempts == 5
    assert config.outage_budget == 60.0


def test_token_value_never_appears_in_an_error() -> None:
    with pytest.raises(ValueError) as raised:
        transport_config_from_connection(conn({"token": {"secret": "tok-123456"}}, host="h"), 8081)
    assert "tok-123456" not in str(raised.value)


@pytest.mark.parametrize(
    ("verify", "expected"),
    [(False, False), ("false", False), ("True", True), (" off ", False), ("1", True), (True, True)],
)
def test_verify(verify: Any, expected: bool | str) -> None:
    assert transport_config_from_connection(conn({"verify": verify}, host="h"), 8081).verify == expected


def test_verify_accepts_an_existing_ca_file(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert transport_config_from_connection(conn({"verify": f" {ca} "}, host="h"), 8081).verify == str(ca)


def test_cert_timeout_retries() -> None:
    config = transport_config_from_connection(
        conn(
            {"cert": ["/c.pem", "/k.pem"], "timeout": "12.5", "retries": "2", "retry_wait": 0, "outage_budget": 90},
            host="h",
        ),
        8081,
    )
    assert config.cert == ("/c.pem", "/k.pem")
    assert config.timeout == 12.5
    assert config.retry.attempts == 2 and config.retry.initial == 0
    assert config.outage_budget == 90.0
    assert transport_config_from_connection(conn({"retries": 3.0, "cert": "/both.pem"}, host="h"), 8081).cert == (
        "/both.pem"
    )


def test_hook_masks_the_password_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import mask_secret  # noqa: F401  (the function the hook must reach)

    masked: list[Any] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    monkeypatch.setenv(
        "AIRFLOW_CONN_MASKED_BASIC",
        json.dumps({"conn_type": "flink", "host": "h", "login": "ann", "password": "pw-basic-123"}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MASKED_BEARER",
        json.dumps({"conn_type": "flink", "host": "h", "extra": {"auth_type": "bearer", "token": "tok-bearer-456"}}),
    )
    assert FlinkRestHook(flink_conn_id="masked_basic").transport_config.auth == BasicAuth("ann", "pw-basic-123")
    assert FlinkRestHook(flink_conn_id="masked_bearer").transport_config.auth == BearerAuth("tok-bearer-456")
    assert "pw-basic-123" in masked and "tok-bearer-456" in masked
    assert "YW5uOnB3LWJhc2ljLTEyMw==" in masked  # the basic-auth header value, base64("ann:pw-basic-123")


def test_async_transport_masks_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    masked: list[Any] = []

    async def fake_amask(value: Any, name: str | None = None) -> None:
        masked.append(value)

    async def fake_aget_connection(conn_id: str) -> Connection:
        return conn({"token": "tok-async-789"}, host="h")

    monkeypatch.setattr("airflow.sdk.log.amask_secret", fake_amask)
    monkeypatch.setattr(FlinkRestHook, "aget_connection", staticmethod(fake_aget_connection))
    transport = asyncio.run(FlinkRestHook.aget_async_transport("any"))
    assert transport.config.auth == BearerAuth("tok-async-789")
    assert masked == ["tok-async-789"]


def test_mask_secrets_skips_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[Any] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    mask_secrets(None, "", "kept-secret", 12345)
    assert masked == ["kept-secret", "12345"]


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


def test_async_transport_from_the_connection_without_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    async def fake_aget_connection(conn_id: str) -> Connection:
        assert conn_id == "my_flink"
        return conn(host="https://flink.internal/api", port=443)

    monkeypatch.setattr(FlinkRestHook, "aget_connection", staticmethod(fake_aget_connection))
    transport = asyncio.run(FlinkRestHook.aget_async_transport("my_flink"))
    assert isinstance(transport, AsyncTransport)
    assert transport.config.base_url == "https://flink.internal:443/api"


def test_mask_secrets_in_finds_secrets_in_sql_arguments_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[Any] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    sql = "CREATE TABLE t (n INT) WITH ('connector' = 'kafka', 'properties.ssl.key.password' = 'sql-secret-1');"
    args = ["--bootstrap", "k:9092", "--password", "arg-secret-2"]
    options = {"properties.sasl.jaas.config": 'PlainLoginModule required password="jaas-secret-3";'}
    found = mask_secrets_in(sql, args, options, None)
    assert {"sql-secret-1", "arg-secret-2", "jaas-secret-3"} <= set(found)
    assert set(found) == set(masked)
