"""OpenLineage of the Flink operators: SQL parsing, dataset naming, declarations, inlets/outlets, the facets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk import Asset
from openlineage.client.serde import Serde

from airflow_flink_provider.openlineage.declared import declaration_for, declared_datasets, program_arguments
from airflow_flink_provider.openlineage.mixin import flink_lineage
from airflow_flink_provider.openlineage.naming import DatasetName, asset_dataset, file_dataset, table_datasets
from airflow_flink_provider.openlineage.sql import sql_lineage
from airflow_flink_provider.operators.job_submit import FlinkJobSubmitOperator
from airflow_flink_provider.operators.sql_gateway import FlinkSqlGatewayOperator

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def kafka(name: str, topic: str, servers: str = "127.0.0.1:9092", connector: str = "kafka") -> str:
    return (
        f"CREATE TEMPORARY TABLE {name} (id BIGINT, v DECIMAL(10, 2), tags ARRAY<STRING>, "
        f"ts AS TO_TIMESTAMP_LTZ(id, 3), part INT METADATA FROM 'partition' VIRTUAL, "
        f"WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = '{connector}', "
        f"'topic' = '{topic}', 'properties.bootstrap.servers' = '{servers}', 'format' = 'json');\n"
    )


def names(datasets: list[DatasetName]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def lineage(script: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    found = sql_lineage(script)
    return (
        names([d for t in found.inputs for d in table_datasets(t)]),
        names([d for t in found.outputs for d in table_datasets(t)]),
    )


def test_statement_set_with_subqueries_reads_the_source_once_and_writes_both_sinks() -> None:
    script = (
        "SET 'parallelism.default' = '1';\n"
        + kafka("events", "in", "broker-1:9092,broker-2:9092").replace(
            "tags ARRAY<STRING>", "tags ARRAY<STRING> NOT NULL"
        )
        + kafka("first_s", "first")
        + kafka("last_s", "last", connector="upsert-kafka")
        + "-- INSERT INTO nowhere SELECT * FROM nothing;\n"
        "EXECUTE STATEMENT SET BEGIN\n"
        "  INSERT INTO first_s SELECT id, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts) AS r "
        "FROM events) WHERE r = 1;\n"
        "  INSERT INTO last_s SELECT id, CASE WHEN v > 0 THEN v END FROM events;\n"
        "END;"
    )
    inputs, outputs = lineage(script)
    assert inputs == [("kafka://broker-1:9092", "in")]
    assert outputs == [("kafka://127.0.0.1:9092", "first"), ("kafka://127.0.0.1:9092", "last")]
    schema = table_datasets(sql_lineage(script).inputs[0])[0].columns
    assert [(c.name, c.type) for c in schema] == [("id", "BIGINT"), ("v", "DECIMAL(10, 2)"), ("tags", "ARRAY<STRING>")]


def test_views_window_functions_temporal_and_comma_joins_resolve_to_their_tables() -> None:
    script = (
        kafka("orders", "orders")
        + kafka("products", "products")
        + kafka("`rates`", "rates")
        + kafka("out_t", "out")
        + "CREATE TEMPORARY VIEW on_time AS SELECT * FROM orders WHERE id > 0;\n"
        "CREATE TEMPORARY VIEW enriched AS SELECT o.* FROM on_time AS o "
        "JOIN products FOR SYSTEM_TIME AS OF o.ts AS p ON o.id = p.id;\n"
        "INSERT INTO out_t WITH w AS (SELECT * FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(ts), "
        "INTERVAL '1' MINUTE))) SELECT w.id, 'FROM not_a_table' FROM w, `rates` r WHERE w.id = r.id;"
    )
    inputs, outputs = lineage(script)
    assert sorted(inputs) == [("kafka://127.0.0.1:9092", t) for t in ("orders", "products", "rates")]
    assert outputs == [("kafka://127.0.0.1:9092", "out")]


def test_flink_sql_insert_forms_ctas_and_sinks_without_data() -> None:
    script = (
        kafka("src", "src")
        + "CREATE TABLE files (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://bucket/data/x/', "
        "'format' = 'csv');\n"
        "CREATE TABLE sink_print (id BIGINT) WITH ('connector' = 'print');\n"
        "CREATE TABLE db_t (id BIGINT) WITH ('connector' = 'jdbc', "
        "'url' = 'jdbc:postgresql://u:pw@db:5432/shop', 'table-name' = 'public.t');\n"
        "INSERT OVERWRITE files SELECT id FROM src;\n"
        "EXECUTE INSERT INTO sink_print SELECT id FROM src;\n"
        "INSERT INTO db_t SELECT id FROM unknown_cte_or_table;\n"
        "CREATE TABLE copy_t WITH ('connector' = 'kafka', 'topic' = 'copy', "
        "'properties.bootstrap.servers' = 'k:9092', 'format' = 'json') AS SELECT * FROM src;"
    )
    inputs, outputs = lineage(script)
    assert inputs == [("kafka://127.0.0.1:9092", "src")]
    assert outputs == [("s3://bucket", "data/x"), ("postgres://db:5432", "shop.public.t"), ("kafka://k:9092", "copy")]


def test_iceberg_tables_are_named_by_location_with_the_catalog_name_as_symlink() -> None:
    script = (
        "CREATE CATALOG lakehouse WITH ('type' = 'iceberg', 'catalog-impl' = 'org.apache.iceberg.jdbc.JdbcCatalog', "
        "'uri' = 'jdbc:sqlite:/state/catalog.db', 'warehouse' = 'file:///state/warehouse/');\n"
        + kafka("orders", "orders")
        + "CREATE TABLE IF NOT EXISTS lakehouse.shop.enriched (id BIGINT) WITH ('format-version' = '2');\n"
        "INSERT INTO lakehouse.shop.enriched SELECT id FROM orders;\n"
        "USE CATALOG lakehouse;\nUSE shop;\n"
        "INSERT INTO totals SELECT id FROM enriched;\n"
        "CREATE TABLE default_catalog.default_database.ice (id BIGINT) WITH ('connector' = 'iceberg', "
        "'catalog-name' = 'hive_prod', 'catalog-type' = 'hive', 'catalog-database' = 'sales', "
        "'uri' = 'thrift://hms:9083', 'warehouse' = 's3://lake/wh');\n"
        "INSERT INTO default_catalog.default_database.ice SELECT id FROM totals;"
    )
    found = sql_lineage(script)
    outputs = [d for t in found.outputs for d in table_datasets(t)]
    assert [(d.namespace, d.name, d.symlink) for d in outputs] == [
        ("file", "/state/warehouse/shop/enriched", ("jdbc:sqlite:/state/catalog.db", "lakehouse.shop.enriched")),
        ("file", "/state/warehouse/shop/totals", ("jdbc:sqlite:/state/catalog.db", "lakehouse.shop.totals")),
        ("s3://lake", "wh/sales.db/ice", ("thrift://hms:9083", "hive_prod.sales.ice")),
    ]
    inputs = names([d for t in found.inputs for d in table_datasets(t)])
    assert inputs == [
        ("kafka://127.0.0.1:9092", "orders"),
        ("file", "/state/warehouse/shop/enriched"),
        ("file", "/state/warehouse/shop/totals"),
    ]


def test_sql_operator_facets_carry_the_redacted_script_and_serialize() -> None:
    script = (
        kafka("src", "src").replace(
            "'format' = 'json'",
            "'format' = 'json', 'properties.sasl.jaas.config' = "
            "'org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="u" password="hunter2-secret";\'',
        )
        + kafka("dst", "dst")
        + "INSERT INTO dst SELECT * FROM src;"
    )
    operator = FlinkSqlGatewayOperator(task_id="t", sql=script, outlets=[Asset("kafka://127.0.0.1:9092/audit")])
    result = operator.get_openlineage_facets_on_complete(None)
    assert [(d.namespace, d.name) for d in result.inputs] == [("kafka://127.0.0.1:9092", "src")]
    assert [(d.namespace, d.name) for d in result.outputs] == [
        ("kafka://127.0.0.1:9092", "dst"),
        ("kafka://127.0.0.1:9092", "audit"),
    ]
    facet = result.job_facets["sql"]
    assert facet.dialect == "flink" and "INSERT INTO dst SELECT * FROM src" in facet.query
    serialized = json.dumps([Serde.to_dict(x) for x in [*result.inputs, *result.outputs, facet]])
    assert "hunter2" not in serialized and "****" in facet.query
    assert operator.get_openlineage_facets_on_failure(None).outputs == result.outputs


def test_program_arguments_and_declarations(tmp_path: Path) -> None:
    assert program_arguments(["--a", "1", "--b=2", "--flag", "--c", "x y"]) == {
        "--a": "1",
        "--b": "2",
        "--flag": "",
        "--c": "x y",
    }
    program = tmp_path / "jobs" / "enrich.py"
    program.parent.mkdir()
    program.write_text("")
    assert declaration_for(str(program)) is None
    (program.parent / "openlineage.json").write_text(json.dumps({"inputs": [], "outputs": []}))
    own = program.parent / "enrich.openlineage.json"
    own.write_text(
        json.dumps(
            {
                "defaults": {"--servers": "k:9092", "--ref": "ref/data.csv"},
                "inputs": [{"kafka_topic": "{--in}", "bootstrap_servers": "{--servers}"}, {"file": "{--ref}"}],
                "outputs": [{"namespace": "kafka://{--servers}", "name": "{--out}"}],
            }
        )
    )
    assert declaration_for(str(program)) == own
    assert declaration_for(None, "jobs.enrich", [str(tmp_path)]) == own
    inputs, outputs = declared_datasets(own, ["--in", "orders", "--out=totals", "--servers", "b1:9092,b2:9092"])
    assert names(inputs) == [("kafka://b1:9092", "orders"), ("file", str(program.parent / "ref" / "data.csv"))]
    assert names(outputs) == [("kafka://b1:9092,b2:9092", "totals")]
    with pytest.raises(ValueError, match=r"\{--out\} has no program argument and no default"):
        declared_datasets(own, ["--in", "orders"])
    own.write_text(json.dumps({"inputs": [{"topic": "x"}]}))
    with pytest.raises(ValueError, match="needs kafka_topic, file, or namespace and name"):
        declared_datasets(own, [])


def test_the_pyflink_orders_enrichment_job_declares_its_topics_and_reference_file() -> None:
    program = ROOT / "include" / "pyflink" / "orders_enrichment" / "v1.py"
    operator = FlinkJobSubmitOperator(
        task_id="submit",
        py_file=str(program),
        program_args=["--bootstrap-servers", "127.0.0.1:9092", "--source-topic", "o-1", "--sink-topic", "c-1"],
        inlets=[Asset("file:///data/extra.csv")],
    )
    inputs, outputs, query = flink_lineage(operator)
    assert names(inputs) == [
        ("kafka://127.0.0.1:9092", "o-1"),
        ("file", str(program.parent / "data" / "products.csv")),
        ("file", "/data/extra.csv"),
    ]
    assert names(outputs) == [("kafka://127.0.0.1:9092", "c-1")] and query is None
    assert "sql" not in operator.get_openlineage_facets_on_complete(None).job_facets


def test_assets_and_locations() -> None:
    assert asset_dataset(Asset("kafka://k:9092/t")) == DatasetName("kafka://k:9092", "t")
    assert asset_dataset(Asset("s3://b/k/x.parquet")) == DatasetName("s3://b", "k/x.parquet")
    assert asset_dataset(DatasetName("ns", "n")) == DatasetName("ns", "n")
    assert asset_dataset("not an asset") is None
    assert file_dataset("/tmp/x") == DatasetName("file", "/tmp/x")
    assert file_dataset("hdfs://nn:8020/w/t") == DatasetName("hdfs://nn:8020", "w/t")
