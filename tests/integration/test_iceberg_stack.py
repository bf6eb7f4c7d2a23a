"""The stack's Iceberg catalog end to end: Flink writes through the real SQL Gateway, pyiceberg reads the files.

The catalog is the one ``stack-up`` prepares (``[iceberg]`` in stack/stack.toml, ``stack.cli.iceberg_catalog``):
Iceberg's JDBC catalog on a SQLite file with a ``file://`` warehouse. Each test works in a namespace of its
own, cancels any job it started and drops what it created, files included.
"""

from __future__ import annotations

import collections
import shutil
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook
from airflow_flink_provider.protocol.errors import FlinkError
from stack import cli

pytestmark = pytest.mark.integration

ROWS = 1000
CUSTOMERS = 7
TERMINAL = {"FINISHED", "FAILED", "CANCELED"}


def sql_literal(value: str) -> str:
    """A Flink SQL string literal.

    :param value: the text
    """
    return "'" + value.replace("'", "''") + "'"


def local_path(uri: str) -> Path:
    """The local path of a ``file:`` URI, in either form Iceberg writes (``file:///x`` or Hadoop's ``file:/x``).

    :param uri: the URI
    """
    parsed = urlparse(uri)
    assert parsed.scheme == "file" and parsed.netloc == "", uri
    return Path(parsed.path)


def wait_for_end(rest: FlinkRestHook, job_id: str, timeout: float = 180) -> str:
    """Poll until the job ends or the deadline passes; returns its last state.

    :param rest: the REST hook
    :param job_id: the job
    :param timeout: seconds (generous: the first Iceberg job of a fresh TaskManager loads many classes)
    """
    deadline = time.monotonic() + timeout
    state = rest.get_job_state(job_id)
    while state not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        state = rest.get_job_state(job_id)
    return state


@pytest.fixture
def catalog() -> cli.IcebergCatalog:
    return cli.iceberg_catalog()


@pytest.fixture
def namespace(
    gateway: FlinkSqlGatewayHook, session: str, catalog: cli.IcebergCatalog
) -> Iterator[str]:
    """The catalog created in the session and a fresh namespace in it; both the namespace's tables and their
    files are gone afterwards."""
    options = ", ".join(f"{sql_literal(k)} = {sql_literal(v)}" for k, v in catalog.flink_options().items())
    try:
        gateway.run_statement(session, f"CREATE CATALOG IF NOT EXISTS {catalog.name} WITH ({options})", timeout=120)
    except FlinkError as exc:
        drift = [f"{name}: {reason}" for name, script in cli.FLINK_SCRIPTS.items() if (reason := cli.lib_drift(script))]
        pytest.fail(f"the stack's Flink cannot open the Iceberg catalog: {exc}\n"
                    f"lib/ drift: {drift or 'none'} (a restart loads new jars: make stack-down && make stack-up)")
    name = f"it_iceberg_{uuid.uuid4().hex[:10]}"
    gateway.run_statement(session, f"CREATE DATABASE {catalog.name}.{name}", timeout=60)
    yield name
    reader = SqlCatalog(catalog.name, uri=catalog.sqlalchemy_uri, warehouse=catalog.warehouse_uri)
    for table in reader.list_tables(name):
        location = local_path(reader.load_table(table).location())
        gateway.run_statement(session, f"DROP TABLE {catalog.name}.{name}.{table[-1]}", timeout=60)
        assert location.is_relative_to(catalog.warehouse), location
        shutil.rmtree(location, ignore_errors=True)
    gateway.run_statement(session, f"DROP DATABASE {catalog.name}.{name}", timeout=60)
    shutil.rmtree(catalog.warehouse / name, ignore_errors=True)
    assert (name,) not in reader.list_namespaces()


@pytest.fixture
def started(rest: FlinkRestHook, namespace: str) -> Iterator[list[str]]:
    """Job ids the test started; each one still running is cancelled before the namespace is dropped."""
    ids: list[str] = []
    yield ids
    for job_id in ids:
        if rest.find_job(job_id) is not None and rest.get_job_state(job_id) not in TERMINAL:
            rest.cancel_job(job_id)


def test_stack_up_prepared_the_catalog_and_exports_it(catalog: cli.IcebergCatalog) -> None:
    assert catalog.db.is_file() and catalog.warehouse.is_dir()
    assert catalog.db.parent == catalog.root and catalog.root.is_relative_to(cli.STACK)
    assert any(jar.startswith("iceberg-flink-runtime-") for jar in cli.lib_jars())
    env = cli.airflow_env()
    assert env["FLINK_STACK_ICEBERG_CATALOG_NAME"] == catalog.name
    assert env["FLINK_STACK_ICEBERG_WAREHOUSE"] == catalog.warehouse.as_uri()


def test_flink_writes_through_the_gateway_and_pyiceberg_reads_exact_rows(
    gateway: FlinkSqlGatewayHook,
    rest: FlinkRestHook,
    session: str,
    catalog: cli.IcebergCatalog,
    namespace: str,
    started: list[str],
) -> None:
    table = f"{catalog.name}.{namespace}.orders"
    gateway.run_statement(
        session, f"CREATE TABLE {table} (id BIGINT, customer STRING, amount DECIMAL(10, 2))", timeout=60
    )
    gateway.configure_session(session, "SET 'execution.runtime-mode' = 'batch'")
    gateway.run_statement(
        session,
        "CREATE TEMPORARY TABLE seq (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1000', "
        "'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '1000')",
        timeout=60,
    )
    insert = gateway.run_statement(
        session,
        f"INSERT INTO {table} SELECT id, CONCAT('c', CAST(id % {CUSTOMERS} AS STRING)), "
        "CAST(id AS DECIMAL(10, 2)) / 100 FROM seq",
        timeout=120,
    )
    assert insert.job_id is not None
    started.append(insert.job_id)
    assert wait_for_end(rest, insert.job_id) == "FINISHED", rest.get_root_cause(insert.job_id)

    # The reference, computed here from the generator's definition, not from anything Flink wrote.
    expected: dict[str, list[Decimal]] = collections.defaultdict(list)
    for i in range(1, ROWS + 1):
        expected[f"c{i % CUSTOMERS}"].append(Decimal(i) / 100)

    reader = SqlCatalog(catalog.name, uri=catalog.sqlalchemy_uri, warehouse=catalog.warehouse_uri)
    written = reader.load_table(f"{namespace}.orders")
    assert written.location().startswith(catalog.warehouse_uri + "/")
    rows = written.scan().to_arrow().to_pylist()
    assert len(rows) == ROWS
    assert sorted(row["id"] for row in rows) == list(range(1, ROWS + 1))
    got: dict[str, list[Decimal]] = collections.defaultdict(list)
    for row in rows:
        got[row["customer"]].append(row["amount"])
    assert {c: (len(v), sum(v)) for c, v in got.items()} == {c: (len(v), sum(v)) for c, v in expected.items()}
    assert sum(row["amount"] for row in rows) == Decimal("5005.00")
    # The data files are real Parquet files under the warehouse, readable without Flink.
    files = [local_path(task.file.file_path) for task in written.scan().plan_files()]
    assert files
    for path in files:
        assert path.is_relative_to(catalog.warehouse / namespace) and path.suffix == ".parquet", path
        assert path.is_file() and path.read_bytes()[:4] == b"PAR1", path

    # Flink reads the same table back through the gateway.
    back = gateway.run_statement(session, f"SELECT COUNT(*), SUM(id) FROM {table}", timeout=180)
    if back.job_id:
        started.append(back.job_id)
    assert back.rows == [[ROWS, ROWS * (ROWS + 1) // 2]]

    # The catalog name is stored with each table: a reader under another name sees none of them.
    stranger = SqlCatalog(f"not_{catalog.name}", uri=catalog.sqlalchemy_uri, warehouse=catalog.warehouse_uri)
    assert (namespace,) not in stranger.list_namespaces()
