"""Provider metadata: schema-valid, everything it names imports, hooks carry the connection attributes."""

from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow.sdk import BaseOperatorLink

from airflow_flink_provider.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit


def _import(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_entry_point_points_at_get_provider_info() -> None:
    (entry,) = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_flink")]
    assert entry.load() is get_provider_info


def test_matches_airflows_provider_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_every_module_and_class_imports() -> None:
    info = get_provider_info()
    for section in ("operators", "sensors", "triggers", "hooks"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in info["extra-links"]:
        assert issubclass(_import(link), BaseOperatorLink)  # type: ignore[arg-type]


@pytest.mark.parametrize("conn", get_provider_info()["connection-types"], ids=lambda conn: conn["connection-type"])
def test_connection_types_match_their_hooks(conn: dict) -> None:
    hook = _import(conn["hook-class-name"])
    assert hook.conn_type == conn["connection-type"]  # type: ignore[attr-defined]
    assert hook.hook_name == conn["hook-name"]  # type: ignore[attr-defined]
    assert isinstance(hook.conn_name_attr, str) and isinstance(hook.default_conn_name, str)  # type: ignore[attr-defined]
    assert f"{conn['connection-type']}_default" == hook.default_conn_name  # type: ignore[attr-defined]


def test_connection_form_fields() -> None:
    for conn in get_provider_info()["connection-types"]:
        fields = conn["conn-fields"]
        assert {"auth_type", "token", "verify", "timeout", "retries"} <= set(fields)
        assert fields["token"]["schema"]["format"] == "password"
        assert conn["ui-field-behaviour"]["hidden-fields"] == ["schema"]


def test_every_operator_and_the_sensor_has_the_flink_ui_link() -> None:
    from airflow_flink_provider.links.flink_ui import FlinkJobLink
    from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
    from airflow_flink_provider.operators.savepoint import (
        FlinkCancelJobOperator,
        FlinkStopJobOperator,
        FlinkTriggerSavepointOperator,
    )
    from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator
    from airflow_flink_provider.sensors.job_state import FlinkJobStateSensor

    for cls in (
        FlinkSqlGatewayOperator,
        FlinkJobSubmitOperator,
        FlinkTriggerSavepointOperator,
        FlinkStopJobOperator,
        FlinkCancelJobOperator,
        FlinkJobStateSensor,
    ):
        assert any(isinstance(link, FlinkJobLink) for link in cls.operator_extra_links), cls


_BOUNDED_FIELDS = {"timeout", "retries", "retry_wait", "outage_budget"}


def _form_fields() -> dict[str, dict]:
    (conn, *_) = get_provider_info()["connection-types"]
    return conn["conn-fields"]


def _config_with(extra: dict) -> object:
    from airflow.sdk import Connection

    from airflow_flink_provider.hooks.base import transport_config_from_connection

    return transport_config_from_connection(
        Connection(conn_id="form", conn_type="flink", host="h", extra=json.dumps(extra)), 8081
    )


def test_form_bounds_are_the_hooks_bounds() -> None:
    from airflow_flink_provider import connection_fields as base

    fields = _form_fields()
    assert set(fields) >= _BOUNDED_FIELDS
    assert fields["timeout"]["schema"]["maximum"] == base.TIMEOUT_MAX
    assert fields["retries"]["schema"]["maximum"] == base.RETRIES_MAX
    assert fields["retry_wait"]["schema"]["maximum"] == base.RETRY_WAIT_MAX
    assert fields["outage_budget"]["schema"]["maximum"] == base.OUTAGE_BUDGET_MAX


@pytest.mark.parametrize("name", sorted(_BOUNDED_FIELDS))
def test_what_the_form_allows_the_hook_accepts_and_no_more(name: str) -> None:
    """The form's default, its bounds and null are accepted; just past the maximum is refused."""
    schema = _form_fields()[name]["schema"]
    assert "null" in schema["type"]
    lowest = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 0.001)
    for value in (schema["default"], lowest, schema["maximum"], None):
        _config_with({name: value})
    with pytest.raises(ValueError, match=f"extra '{name}'"):
        _config_with({name: schema["maximum"] + 1})


@pytest.mark.parametrize("name", ["auth_type", "token", "verify"])
def test_unbounded_form_fields_accept_null(name: str) -> None:
    _config_with({name: None})


def test_versions_is_the_package_version() -> None:
    from airflow_flink_provider import __version__

    assert get_provider_info()["versions"] == [__version__]


def test_auth_type_offers_no_null_and_its_default_means_no_auth() -> None:
    schema = _form_fields()["auth_type"]["schema"]
    assert schema["type"] == "string" and None not in schema["enum"] and "null" not in str(schema)
    assert _config_with({"auth_type": schema["default"]}).auth is None  # type: ignore[attr-defined]
    assert schema["enum"] == ["none", "basic", "bearer"]
    assert _config_with({"auth_type": "bearer", "token": "t"}).auth is not None  # type: ignore[attr-defined]


def test_tls_verification_is_a_boolean_defaulting_to_true_with_a_ca_bundle_and_a_client_cert(tmp_path: Path) -> None:
    fields = _form_fields()
    assert fields["verify"]["schema"] == {"type": "boolean", "default": True}
    assert _config_with({}).verify is True and _config_with({"verify": False}).verify is False  # type: ignore[attr-defined]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----")
    assert _config_with({"verify": True, "ca_bundle": str(ca)}).verify == str(ca)  # type: ignore[attr-defined]
    assert _config_with({"verify": False, "ca_bundle": str(ca)}).verify is False  # type: ignore[attr-defined]
    assert _config_with({"cert": str(ca)}).cert == str(ca)  # type: ignore[attr-defined]


# A value of each field the parser refuses, and the words of its error: every field of the form is read.
_BAD_VALUES = {
    "auth_type": ("kerberos", "must be 'none', 'basic' or 'bearer'"),
    "token": (5, "must be a string"),
    "verify": (1.5, "must be true, false or the path of a CA bundle file"),
    "ca_bundle": ("/no/such/ca.pem", "must be the path of an existing CA bundle file"),
    "cert": (5, "must be the path of a PEM file"),
    "timeout": (-1, "must be from more than 0"),
    "retries": (0, "must be from 1"),
    "retry_wait": (-1, "must be from 0"),
    "outage_budget": (-1, "must be from 0"),
}


@pytest.mark.parametrize("conn", get_provider_info()["connection-types"], ids=lambda conn: conn["connection-type"])
def test_the_form_and_the_parser_agree_on_every_field(conn: dict) -> None:
    """Each form field is read by the parser (its bad value is refused, naming it), and its default accepted."""
    fields = dict(conn["conn-fields"])
    if conn["connection-type"] == "flink":
        assert fields.pop("ui_url")  # read by the extra link (links/flink_ui.flink_ui_url), not by the transport
    assert set(fields) == set(_BAD_VALUES)
    for name, (value, words) in _BAD_VALUES.items():
        with pytest.raises(ValueError, match=f"extra '{name}': {words}"):
            _config_with({name: value})
        if "default" in fields[name]["schema"]:
            _config_with({name: fields[name]["schema"]["default"]})
