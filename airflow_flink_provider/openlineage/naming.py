"""OpenLineage dataset names for Flink tables, Airflow assets and declared datasets (pure, no I/O).

Naming follows the OpenLineage naming spec where it has an entry, and the convention below where it has none:

- Kafka (``kafka``, ``upsert-kafka``): namespace ``kafka://{host}:{port}`` of the first bootstrap server,
  name = the topic (one dataset per topic of a ``'topic' = 'a;b'`` list; a ``topic-pattern`` is named by the
  pattern).
- Files (``filesystem`` connector ``path``): ``file`` and the absolute path for local files; for a URI with a
  host or bucket, ``{scheme}://{authority}`` and the path without its leading ``/``.
- Iceberg (the spec has no entry, so this is the provider's convention): a table is named by its **location**,
  as a file dataset (the warehouse URI plus ``{database}/{table}``, the layout of the JDBC, Hadoop and REST
  catalogs; ``{database}.db/{table}`` for a Hive catalog; a ``location`` option wins), and carries a
  ``symlinks`` facet with one identifier of type ``TABLE``: namespace = the catalog ``uri`` (credentials
  masked) or, without one, the warehouse; name = ``{catalog}.{database}.{table}``. This covers tables of an
  Iceberg catalog created in the script and ``'connector' = 'iceberg'`` tables (``catalog-name``,
  ``catalog-database``, ``catalog-table``, ``warehouse``, ``uri``).
- JDBC (``jdbc`` connector ``url``): ``{scheme}://{host}:{port}`` (``postgresql`` becomes ``postgres``), name
  ``{database}.{table-name}``.
- Connectors that hold no data outside the job (``print``, ``blackhole``, ``datagen``) and unknown connectors
  give no dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_flink_provider.openlineage.sql import Column, Table
from airflow_flink_provider.protocol.redaction import redact


@dataclass(frozen=True)
class DatasetName:
    """One OpenLineage dataset, before it becomes an OpenLineage object.

    :param namespace: the dataset namespace.
    :param name: the dataset name.
    :param symlink: ``(namespace, name)`` of the catalog table this dataset is the location of.
    :param columns: the schema, when the script declares it.
    """

    namespace: str
    name: str
    symlink: tuple[str, str] | None = None
    columns: tuple[Column, ...] = ()


def kafka_namespace(bootstrap_servers: str) -> str:
    """``kafka://host:port`` of the first server of a bootstrap list (``host:port,host:port``)."""
    first = bootstrap_servers.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    return f"kafka://{first}"


def kafka_datasets(bootstrap_servers: str, topics: str, columns: tuple[Column, ...] = ()) -> list[DatasetName]:
    """One dataset per topic of a ``;``- or ``,``-separated topic list."""
    namespace = kafka_namespace(bootstrap_servers)
    names = [topic.strip() for topic in topics.replace(",", ";").split(";") if topic.strip()]
    return [DatasetName(namespace, topic, columns=columns) for topic in names]


def file_dataset(location: str, columns: tuple[Column, ...] = ()) -> DatasetName:
    """A file or folder: ``file`` + absolute path, or ``{scheme}://{authority}`` + the path."""
    parts = urlsplit(location)
    if not parts.scheme or parts.scheme == "file" or len(parts.scheme) == 1:  # a path, file:/// or C:\
        path = parts.path if parts.scheme == "file" else location
        if parts.scheme == "file" and parts.netloc:
            return DatasetName(f"file://{parts.netloc}", path, columns=columns)
        return DatasetName("file", path, columns=columns)
    return DatasetName(f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/", columns=columns)


def iceberg_dataset(
    catalog: str, database: str, table: str, catalog_options: Mapping[str, str], columns: tuple[Column, ...] = ()
) -> DatasetName | None:
    """An Iceberg table, by location, with its catalog name as a symlink (see the module docstring).

    :param catalog: the catalog name.
    :param database: the database (Iceberg namespace).
    :param table: the table name.
    :param catalog_options: the catalog's options (``warehouse``, ``uri``, ``catalog-type``, ``location``).
    :param columns: the table's columns, when known.
    """
    location = catalog_options.get("location")
    warehouse = catalog_options.get("warehouse", "").rstrip("/")
    if not location:
        if not warehouse:
            return None
        folder = f"{database}.db" if catalog_options.get("catalog-type") == "hive" else database
        location = f"{warehouse}/{folder}/{table}"
    uri = catalog_options.get("uri")
    symlink_namespace = redact(uri) if uri else warehouse or location
    dataset = file_dataset(location.rstrip("/"), columns)
    return DatasetName(dataset.namespace, dataset.name, (symlink_namespace, f"{catalog}.{database}.{table}"), columns)


def _jdbc_dataset(options: Mapping[str, str]) -> DatasetName | None:
    url, table = options.get("url", ""), options.get("table-name")
    if not url.startswith("jdbc:") or not table:
        return None
    parts = urlsplit(url[len("jdbc:") :])
    scheme = "postgres" if parts.scheme == "postgresql" else parts.scheme
    database = parts.path.strip("/")
    return DatasetName(f"{scheme}://{parts.netloc.rsplit('@', 1)[-1]}", f"{database}.{table}" if database else table)


def table_datasets(table: Table) -> list[DatasetName]:
    """The datasets behind one table of a script (see the module docstring); empty when none is known."""
    options = table.options
    connector = options.get("connector", "")
    if connector in ("kafka", "upsert-kafka"):
        servers = options.get("properties.bootstrap.servers", "")
        topics = options.get("topic") or options.get("topic-pattern", "")
        return kafka_datasets(servers, topics, table.columns) if servers and topics else []
    if connector == "filesystem" and options.get("path"):
        return [file_dataset(options["path"].rstrip("/"), table.columns)]
    if connector == "jdbc":
        return [d for d in [_jdbc_dataset(options)] if d]
    if connector == "iceberg":
        found = iceberg_dataset(
            options.get("catalog-name", table.catalog),
            options.get("catalog-database", "default"),
            options.get("catalog-table", table.name),
            options,
            table.columns,
        )
        return [found] if found else []
    if not connector and table.catalog_options.get("type") == "iceberg":
        found = iceberg_dataset(
            table.catalog, table.database, table.name, {**table.catalog_options, **options}, table.columns
        )
        return [found] if found else []
    return []


def asset_dataset(item: Any) -> DatasetName | None:
    """A dataset from an ``inlets``/``outlets`` item: an Airflow ``Asset`` (by its URI) or anything with
    ``namespace`` and ``name`` (an OpenLineage ``Dataset``); ``None`` for anything else.

    ``kafka://host:port/topic`` becomes ``kafka://host:port`` + ``topic``; ``file:///path`` becomes ``file`` +
    ``/path``; any other URI ``{scheme}://{authority}`` + its path.
    """
    namespace, name = getattr(item, "namespace", None), getattr(item, "name", None)
    if isinstance(namespace, str) and isinstance(name, str):
        return DatasetName(namespace, name)
    uri = getattr(item, "uri", None)
    if not isinstance(uri, str) or "://" not in uri:
        return None
    parts = urlsplit(uri)
    if parts.scheme == "kafka":
        return DatasetName(f"kafka://{parts.netloc}", parts.path.lstrip("/"))
    return file_dataset(uri)
