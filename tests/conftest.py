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
from typing import Any

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
    """Under pytest-xdist (``make test`` runs three workers) each worker gets its own copy of the stack's Airflow
    metadata DB, so the workers' ``airflow dags test`` runs never write one SQLite file at once."""
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


PRIVATE_STACK_MODULES = frozenset({
    "tests/integration/test_observability_restart_drill.py",
    "tests/integration/test_phase3_checkpoints.py",
})
"""The modules marked ``private_stack``, by name: pytest-xdist's controller schedules by node id alone."""


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


SPLIT_MODULES = frozenset({
    "tests/integration/test_dags_phase0_1.py",
    "tests/integration/test_phase4_dags.py",
})
"""Long modules with no module fixture of their own: each of their tests is a work unit (whole, the first took
21 min of a 30 min run on one worker)."""


def _unit(nodeid: str) -> str:
    """The work unit a test runs in under ``make test``: its module, one unit for every private-stack module,
    or the test alone in a :data:`SPLIT_MODULES` module."""
    module = _module(nodeid)
    if module in PRIVATE_STACK_MODULES:
        return "private-stack"
    return nodeid if module in SPLIT_MODULES else module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every integration test gets the stack fixture, so no test can forget it. The order is the order in which
    :class:`ModuleScheduling` hands out work: the private-stack unit first (the longest), then the modules that
    use the stack, then the fast ones.

    :raises pytest.UsageError: when a module's ``private_stack`` mark and ``PRIVATE_STACK_MODULES`` disagree.
    """
    for item in items:
        if item.get_closest_marker("integration") is not None:
            item.fixturenames.insert(0, "stack")
        marked = item.get_closest_marker("private_stack") is not None
        if marked != (_module(item.nodeid) in PRIVATE_STACK_MODULES):
            raise pytest.UsageError(f"{_module(item.nodeid)}: list it in PRIVATE_STACK_MODULES (tests/conftest.py) "
                                    "exactly when it is marked private_stack")  # fmt: skip

    def rank(item: pytest.Item) -> int:
        if _unit(item.nodeid) == "private-stack":
            return 0
        return 1 if item.get_closest_marker("integration") or item.get_closest_marker("packaging") else 2

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` as ``make test`` uses it: each module whole on one worker (its module fixtures, such as
    an Airflow home, are set up once), every private-stack module in one unit (two private stacks at once would
    compete with the shared one for memory and CPU), units handed out in collection order.

    pytest-xdist's own ``loadgroup`` cannot do this with pytest 9: it tags node ids through ``item._nodeid``,
    which pytest 9 no longer reads, so every ``xdist_group`` mark was ignored and modules were split across
    workers, each worker setting up the module's fixtures again.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)
