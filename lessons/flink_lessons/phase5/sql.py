"""The phase 5 SQL scripts, rendered from ``include/sql/phase5_lakehouse/*.sql.j2`` with :class:`PipelineParams`.

Each function returns one script for one SQL Gateway session, ready for ``FlinkSqlGatewayOperator(sql=...)``:
``setup_script`` (catalog, database, tables; no job), ``teardown_script`` (drops them), ``pipeline_script``
(one streaming job), ``naive_script`` (the regular-join enrichment whose state grows with every order) and
``totals_query`` (a batch read of the upsert table). Every value inside quotes goes through the
``sql_literal`` filter (:func:`flink_lessons.scenarios.sql_literal`), in the scenarios' Jinja environment.
"""

from __future__ import annotations

from typing import Any

from flink_lessons.phase5 import SQL_DIR
from flink_lessons.phase5.params import TABLES, IcebergCatalog, PipelineParams
from flink_lessons.rules import Duration
from flink_lessons.scenarios import template_environment


def render(template: str, **context: Any) -> str:
    """Render one template of ``include/sql/phase5_lakehouse``.

    :param template: the file name, e.g. ``pipeline.sql.j2``.
    :param context: the template's names.
    """
    return str(template_environment(SQL_DIR).get_template(template).render(**context))


def _tables(catalog: IcebergCatalog, database: str) -> dict[str, str]:
    return {name: f"{catalog.name}.{database}.{name}" for name in TABLES}


def setup_script(catalog: IcebergCatalog, database: str) -> str:
    """Create the catalog (in the session), the database and the four tables, each only if missing.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    PipelineParams.check_database(database)
    return render("setup.sql.j2", catalog=catalog, database=database, tables=_tables(catalog, database))


def teardown_script(catalog: IcebergCatalog, database: str) -> str:
    """Drop the four tables and the database (their data with them): for tests and resets.

    :param catalog: the Iceberg catalog.
    :param database: the namespace.
    """
    PipelineParams.check_database(database)
    return render("teardown.sql.j2", catalog=catalog, database=database, tables=_tables(catalog, database))


def pipeline_script(params: PipelineParams) -> str:
    """The streaming job: Kafka orders and product versions in, the four tables (or topics) out.

    :param params: the pipeline's parameters.
    """
    kafka_sinks = params.output_topics is not None
    sinks = {name: f"out_{name}" for name in TABLES} if kafka_sinks else _tables(params.catalog, params.database)
    end_offsets = ";".join(f"partition:{p},offset:{o}" for p, o in sorted((params.end_offsets or {}).items()))
    return render(
        "pipeline.sql.j2",
        p=params,
        catalog=params.catalog,
        sinks=sinks,
        kafka_sinks=kafka_sinks,
        end_offsets=end_offsets,
        delay=Duration(params.watermark_delay_ms).sql,
        window=Duration(params.window_ms).sql,
    )


def naive_script(params: PipelineParams) -> str:
    """The enrichment as a regular join against the product topic read as a plain table, into a blackhole:
    the variant whose state keeps every order (for the state-size comparison).

    :param params: the pipeline's parameters (topics, parallelism, checkpoints, job name).
    """
    return render("naive_enrichment.sql.j2", p=params)


def totals_query(params: PipelineParams) -> str:
    """A batch query of the upsert table ``customer_totals``, decimals as text (exact through JSON).

    :param params: the pipeline's parameters (catalog and database).
    """
    return render("totals_query.sql.j2", catalog=params.catalog, table=params.table("customer_totals"))
