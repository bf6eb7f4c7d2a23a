"""The provider as Airflow's CLI sees it, in a fresh AIRFLOW_HOME: listed, its connection types kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider import __version__

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run ``airflow ...`` against a migrated SQLite metadata DB of its own."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})

    def run(*args: str) -> str:
        done = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("db", "migrate")
    return run


def _json(text: str) -> Any:
    """The JSON document in a CLI output (log lines may precede it)."""
    return json.loads(text[text.index("[") :])


def test_providers_list_shows_the_package(airflow_cli: Any) -> None:
    providers = {p["package_name"]: p for p in _json(airflow_cli("providers", "list", "-o", "json"))}
    assert providers["airflow-flink-provider"]["version"] == __version__


def test_hooks_links_and_triggers_are_registered(airflow_cli: Any) -> None:
    hooks = {h["connection_type"]: h for h in _json(airflow_cli("providers", "hooks", "-o", "json"))}
    assert hooks["flink"]["class"] == "airflow_flink_provider.hooks.flink_rest.FlinkRestHook"
    assert hooks["flink"]["conn_id_attribute_name"] == "flink_conn_id"
    assert hooks["flink_sql_gateway"]["class"] == "airflow_flink_provider.hooks.sql_gateway.FlinkSqlGatewayHook"
    links = [link["extra_link_class_name"] for link in _json(airflow_cli("providers", "links", "-o", "json"))]
    assert "airflow_flink_provider.links.flink_ui.FlinkJobLink" in links
    triggers = [t["class"] for t in _json(airflow_cli("providers", "triggers", "-o", "json"))]
    assert "airflow_flink_provider.triggers.job_state" in triggers


def test_connection_form_metadata_is_registered(airflow_cli: Any) -> None:
    widgets = {w["connection_parameter_name"] for w in _json(airflow_cli("providers", "widgets", "-o", "json"))}
    assert {"extra__flink__verify", "extra__flink__token", "extra__flink__ui_url"} <= widgets
    assert "extra__flink_sql_gateway__auth_type" in widgets
    behaviours = {b["field_behaviours"] for b in _json(airflow_cli("providers", "behaviours", "-o", "json"))}
    assert {"flink", "flink_sql_gateway"} <= behaviours


@pytest.mark.parametrize(("conn_type", "port"), [("flink", "8443"), ("flink_sql_gateway", "8083")])
def test_connections_keep_their_type(airflow_cli: Any, conn_type: str, port: str) -> None:
    conn_id = f"it_{conn_type}"
    airflow_cli(
        "connections", "add", conn_id, "--conn-type", conn_type, "--conn-host", "https://flink.example.com",
        "--conn-port", port, "--conn-extra", json.dumps({"verify": False, "timeout": 10}),
    )  # fmt: skip
    (conn,) = _json(airflow_cli("connections", "get", conn_id, "-o", "json"))

    assert conn["conn_type"] == conn_type
    assert conn["host"] == "https://flink.example.com" and conn["port"] == port
    assert set(conn["extra_dejson"]) == {"verify", "timeout"}
