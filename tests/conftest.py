"""Shared fixtures: the real local stack (Kafka, Flink, SQL Gateway) and the Airflow connections to it."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The same ports as stack/cli.py, including its FLINK_STACK_PORT_OFFSET for a private stack.
PORTS = {
    name: port + int(os.environ.get("FLINK_STACK_PORT_OFFSET", "0"))
    for name, port in tomllib.loads((ROOT / "stack" / "stack.toml").read_text())["ports"].items()
}
HOST = "127.0.0.1"

# Connections the provider's hooks and the Kafka provider read, as Airflow env connections.
os.environ.setdefault(
    "AIRFLOW_CONN_FLINK_DEFAULT", json.dumps({"conn_type": "flink", "host": HOST, "port": PORTS["flink_rest"]})
)
os.environ.setdefault(
    "AIRFLOW_CONN_FLINK_SQL_GATEWAY_DEFAULT",
    json.dumps({"conn_type": "flink_sql_gateway", "host": HOST, "port": PORTS["sql_gateway"]}),
)
os.environ.setdefault(
    "AIRFLOW_CONN_KAFKA_DEFAULT",
    json.dumps(
        {
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": f"{HOST}:{PORTS['kafka']}", "enable.idempotence": "true"},
        }
    ),
)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs two workers) each worker gets its own copy of the stack's Airflow
    metadata DB, so two workers' ``airflow dags test`` runs never write one SQLite file at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".stack" / "airflow")) / "airflow.db"
    if not worker or not shared.exists():
        return
    own = Path(tempfile.mkdtemp(prefix=f"airflow-home-{worker}-"))
    # closing(): a connection's own context manager commits but leaves it open
    with closing(sqlite3.connect(shared)) as source, closing(sqlite3.connect(own / "airflow.db")) as copy:
        source.backup(copy)  # consistent even while another process writes the shared DB
    os.environ["AIRFLOW_HOME"] = os.environ["FLINK_STACK_AIRFLOW_HOME"] = str(own)
    config.add_cleanup(lambda: shutil.rmtree(own, ignore_errors=True))


def _stack(*args: str) -> int:
    return subprocess.run([sys.executable, str(ROOT / "stack" / "cli.py"), *args], check=False).returncode


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, int]]:
    """The real local stack: reused when already healthy, else brought up here; taken down at the end only when
    none of it was running before (a partly running stack belongs to someone else, who keeps it)."""
    already_up = (
        subprocess.run(
            [sys.executable, str(ROOT / "stack" / "cli.py"), "status"], capture_output=True, check=False
        ).returncode
        == 0
    )
    partly_up = any(_listening(PORTS[name]) for name in ("kafka", "flink_rest", "sql_gateway_backend"))
    if not already_up and _stack("up", "--skip-airflow") != 0:
        pytest.fail("the local stack did not come up; see the [stack] lines above")
    yield PORTS
    if not already_up and not partly_up:
        _stack("down")


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every integration test gets the stack fixture, so no test can forget it. For pytest-xdist's loadgroup
    each module is one group (its module fixtures, such as an Airflow home, are set up once), and all modules that
    run a private stack form one group: two private stacks at once would not fit in memory beside the shared one."""
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.fixturenames.insert(0, "stack")
        group = "private-stack" if item.get_closest_marker("private_stack") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
