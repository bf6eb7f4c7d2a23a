"""The provider as Airflow's CLI sees it, in a fresh AIRFLOW_HOME: listed, its connection types kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider import __version__
from tests.packaging import fresh_airflow_env

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


# One interpreter runs every command of the module through Airflow's own CLI parser (each `airflow` process would
# spend most of its time importing Airflow again).
DRIVER = """
import contextlib, io, json, sys
from airflow.cli import cli_parser

parser, outputs = cli_parser.get_parser(), []
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        args = parser.parse_args(argv)
        args.func(args)
    outputs.append(out.getvalue())
print("OUTPUTS " + json.dumps(outputs))
"""

CONNECTIONS = [("flink", "8443"), ("flink_sql_gateway", "8083")]


@pytest.fixture(scope="module")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The outputs of the module's ``airflow ...`` commands, run against a migrated SQLite metadata DB of its own."""
    env = fresh_airflow_env(tmp_path_factory.mktemp("airflow_home"))
    migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600,
                             check=False)  # fmt: skip
    assert migrate.returncode == 0, f"airflow db migrate failed:\n{migrate.stdout}\n{migrate.stderr}"
    commands = [["providers", kind, "-o", "json"] for kind in ("list", "hooks", "links", "triggers", "widgets",
                                                                "behaviours")]  # fmt: skip
    for conn_type, port in CONNECTIONS:
        commands += [
            ["connections", "add", f"it_{conn_type}", "--conn-type", conn_type, "--conn-host",
             "https://flink.example.com", "--conn-port", port,
             "--conn-extra", json.dumps({"verify": False, "timeout": 10})],
            ["connections", "get", f"it_{conn_type}", "-o", "json"],
        ]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], env=env, capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUTPUTS ")]
    assert done.returncode == 0 and lines, f"the airflow commands failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    outputs = json.loads(lines[-1][len("OUTPUTS ") :])
    return {" ".join(argv[:3]): output for argv, output in zip(commands, outputs, strict=True)}


def _json(text: str) -> Any:
    """The JSON document in a CLI output (log lines may precede it)."""
    return json.loads(text[text.index("[") :])


def test_providers_list_shows_the_package(airflow_cli: dict[str, str]) -> None:
    providers = {p["package_name"]: p for p in _json(airflow_cli["providers list -o"])}
    assert providers["airflow-flink-provider"]["version"] == __version__


def test_hooks_links_and_triggers_are_registered(airflow_cli: dict[str, str]) -> None:
    hooks = {h["connection_type"]: h for h in _json(airflow_cli["providers hooks -o"])}
    assert hooks["flink"]["class"] == "airflow_flink_provider.hooks.flink_rest.FlinkRestHook"
    assert hooks["flink"]["conn_id_attribute_name"] == "flink_conn_id"
    assert hooks["flink_sql_gateway"]["class"] == "airflow_flink_provider.hooks.sql_gateway.FlinkSqlGatewayHook"
    links = [link["extra_link_class_name"] for link in _json(airflow_cli["providers links -o"])]
    assert "airflow_flink_provider.links.flink_ui.FlinkJobLink" in links
    triggers = [t["class"] for t in _json(airflow_cli["providers triggers -o"])]
    assert "airflow_flink_provider.triggers.job_state" in triggers


def test_connection_form_metadata_is_registered(airflow_cli: dict[str, str]) -> None:
    widgets = {w["connection_parameter_name"] for w in _json(airflow_cli["providers widgets -o"])}
    assert {"extra__flink__verify", "extra__flink__token", "extra__flink__ui_url"} <= widgets
    assert "extra__flink_sql_gateway__auth_type" in widgets
    behaviours = {b["field_behaviours"] for b in _json(airflow_cli["providers behaviours -o"])}
    assert {"flink", "flink_sql_gateway"} <= behaviours


@pytest.mark.parametrize(("conn_type", "port"), CONNECTIONS)
def test_connections_keep_their_type(airflow_cli: dict[str, str], conn_type: str, port: str) -> None:
    (conn,) = _json(airflow_cli[f"connections get it_{conn_type}"])

    assert conn["conn_type"] == conn_type
    assert conn["host"] == "https://flink.example.com" and conn["port"] == port
    assert set(conn["extra_dejson"]) == {"verify", "timeout"}
