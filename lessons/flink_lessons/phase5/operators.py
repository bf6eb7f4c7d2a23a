"""The steps of the phase 5 DAGs that are the lesson's own; Flink is driven by the provider's operators.

``flink_phase5_pipeline``: :class:`ValidatePipelineOperator` (settings, dataset, rendered SQL) >>
:class:`DatasetTopicsOperator` >> drop/create tables (``FlinkSqlGatewayOperator``) >> deploy
(``FlinkSqlGatewayOperator``) >> health gate (sensor) >> :class:`ProduceDatasetOperator` >> wait for FINISHED
>> :class:`PublishTablesOperator` (the four Iceberg tables as Asset outlets, with the run in the event's extra).

``flink_phase5_acceptance``, scheduled on those Assets: :class:`AcceptanceRunOperator` (which replay to check,
from the latest Asset event or the run conf) >> the upsert table read through the gateway
(``FlinkSqlGatewayOperator``) >> :class:`CheckTablesOperator` (pyiceberg, the reference, the table and diff).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import Asset, BaseOperator

from flink_lessons.phase5.params import TABLES, IcebergCatalog, PipelineParams
from flink_lessons.scenario_dag import TASK_DEFAULTS

if TYPE_CHECKING:
    from airflow.sdk import Context

ASSETS: dict[str, Asset] = {
    name: Asset(name=f"phase5.{name}", uri=f"iceberg://lakehouse/phase5/{name}", group="iceberg") for name in TABLES
}
"""The pipeline's Iceberg tables as Airflow Assets: the pipeline's outlets, the acceptance DAG's schedule."""


DAG_ARGS: dict[str, Any] = {
    "start_date": dt.datetime(2024, 1, 1),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": TASK_DEFAULTS,
    "tags": ["flink", "phase5", "iceberg"],
}
"""What the two phase 5 DAGs share: one run at a time, no catch-up, the scenario DAGs' task defaults."""


def is_true(value: Any) -> bool:
    """A ShortCircuitOperator's callable: go on only when a setting is true.

    :param value: the setting.
    """
    return bool(value)


def setting_gate(task_id: str, setting: Any) -> ShortCircuitOperator:
    """A task that skips what follows unless a boolean setting is true; teardowns still run.

    :param task_id: the task id.
    :param setting: the setting (an XComArg of ``validate_settings``).
    """
    return ShortCircuitOperator(
        task_id=task_id, python_callable=is_true, op_args=[setting], ignore_downstream_trigger_rules=False
    )


class ValidatePipelineOperator(BaseOperator):
    """Read ``flink_phase5`` and the run conf, validate them, generate the dataset and render the SQL.

    A bad value fails here, naming the key and where it came from, before anything is created. Outputs (XCom
    keys): ``params`` (:meth:`PipelineParams.to_json`), ``tag``, ``dataset`` (size, seed, sha256, rate,
    partitions), ``kafka_conn_id``, ``reset``, ``bounded``, ``wait_timeout`` (s), ``setup_sql``,
    ``teardown_sql``, ``pipeline_sql``, ``job_name``.
    """

    ui_color = "#fff7e6"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate and render; see the class docstring."""
        from flink_lessons.phase5.dataset import generate
        from flink_lessons.phase5.pipeline import expected_end_offsets
        from flink_lessons.phase5.settings import PHASE5, pipeline_params
        from flink_lessons.phase5.sql import pipeline_script, setup_script, teardown_script
        from flink_lessons.settings import VariableError, connection_bootstrap, layers, resolve, run_tag

        dag_run = context["dag_run"]
        settings = resolve(PHASE5, *layers(PHASE5.variable, dag_run.conf), tag=run_tag(dag_run.dag_id, dag_run.run_id),
                           connection_bootstrap=connection_bootstrap)  # fmt: skip
        try:
            catalog = IcebergCatalog.from_env()
        except ValueError as err:
            raise VariableError(f"Invalid settings (nothing was submitted): the Iceberg catalog: {err}") from None
        dataset = generate(settings["dataset.size"], settings["dataset.seed"])
        # Bounded by the dataset's own end offsets: the job starts before the data is produced.
        bounded = settings["bounded"]
        ends = expected_end_offsets(dataset, settings["partitions"]) if bounded else None
        params = pipeline_params(settings, catalog, end_offsets=ends,
                                 products_end_offset=len(dataset.versions) if bounded else None)  # fmt: skip
        self.log.info("Settings: %s", settings.to_json()["values"])
        self.log.info("Job %s reads %s and %s, writes %s.%s.*; dataset %s seed %s: %d records",
                      params.job_name, params.orders_topic, params.products_topic, catalog.name, params.database,
                      dataset.size.name, dataset.seed, len(dataset.timeline))  # fmt: skip
        return {
            "params": params.to_json(),
            "tag": settings.tag,
            "job_name": params.job_name,
            "dataset": {"size": dataset.size.name, "seed": dataset.seed, "sha256": dataset.sha256(),
                        "rate": settings["dataset.rate"], "partitions": settings["partitions"]},
            "kafka_conn_id": settings["kafka_conn_id"],
            "reset": settings["reset"],
            "bounded": settings["bounded"],
            "wait_timeout": settings.duration("wait_timeout").seconds,
            "setup_sql": setup_script(catalog, params.database),
            "teardown_sql": teardown_script(catalog, params.database),
            "pipeline_sql": pipeline_script(params),
        }  # fmt: skip


class _RunOperator(BaseOperator):
    """A step that works on one run's pipeline parameters and dataset (both templated XComArgs)."""

    template_fields: Sequence[str] = ("params_json", "dataset", "kafka_conn_id")

    def __init__(self, *, params_json: Any, dataset: Any, kafka_conn_id: Any = "kafka_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.params_json = params_json
        self.dataset = dataset
        self.kafka_conn_id = kafka_conn_id

    def pipeline(self) -> PipelineParams:
        """The run's parameters, with the catalog of this worker's environment."""
        return PipelineParams.from_json(self.params_json, IcebergCatalog.from_env())

    def kafka(self) -> Any:
        """Kafka through the run's connection."""
        from flink_lessons.load.kafka import Kafka

        return Kafka.from_connection(self.kafka_conn_id)


class DatasetTopicsOperator(_RunOperator):
    """Create the run's two topics: orders (``partitions``), products (compacted, one partition)."""

    def execute(self, context: Context) -> list[str]:
        """Create them when missing."""
        from flink_lessons.phase5.dataset import ensure_topics

        p = self.pipeline()
        ensure_topics(self.kafka(), p.orders_topic, p.products_topic, int(self.dataset["partitions"]))
        return [p.orders_topic, p.products_topic]


class ProduceDatasetOperator(_RunOperator):
    """Produce the dataset to the run's topics (its order kept, at the ``dataset.rate`` setting), with progress
    in the log; returns what was produced and the topics' end offsets.

    Once per run: a cleared or retried try finds the topics already holding the dataset and produces nothing
    (``records`` 0, ``already_produced`` true); topics holding anything else fail the task before a record is
    written (:func:`~flink_lessons.phase5.pipeline.already_produced`)."""

    def execute(self, context: Context) -> dict[str, Any]:
        """Generate (the digest is checked against the validated one) and produce unless already there."""
        from airflow.sdk.exceptions import AirflowFailException

        from flink_lessons.phase5.dataset import Production, from_manifest, produce
        from flink_lessons.phase5.pipeline import PipelineError, already_produced

        p = self.pipeline()
        data = from_manifest(self.dataset)
        kafka, partitions = self.kafka(), int(self.dataset["partitions"])
        try:
            there = already_produced(kafka, data, p.orders_topic, p.products_topic, partitions)
        except PipelineError as err:
            raise AirflowFailException(f"Not producing: {err}") from None
        if there:
            self.log.info("%s and %s already hold dataset %s (an earlier try produced it): nothing produced",
                          p.orders_topic, p.products_topic, data.size.name)  # fmt: skip
            ends = {topic: kafka.end_offsets(topic) for topic in (p.orders_topic, p.products_topic)}
            return {**Production(p.orders_topic, p.products_topic, 0, 0.0, ends).to_json(), "already_produced": True}
        production = produce(data, kafka=kafka, orders_topic=p.orders_topic, products_topic=p.products_topic,
                             partitions=partitions, rate=self.dataset.get("rate"), progress=self.log.info)  # fmt: skip
        self.log.info("Produced %d records in %.1f s", production.records, production.seconds)
        return {**production.to_json(), "already_produced": False}


class PublishTablesOperator(_RunOperator):
    """Announce the four tables as updated (this task's outlets), with the run in each event's ``extra``: the
    acceptance DAG reads which database, dataset and rules to check from it. Logs the tables' snapshot and
    file counts (every checkpoint commits a snapshot: why the upsert table needs compaction)."""

    def execute(self, context: Context) -> dict[str, Any]:
        """Read the tables' metadata and attach the run to the Asset events."""
        from flink_lessons.phase5.readers import table_stats

        p = self.pipeline()
        stats = table_stats(p.catalog, p.database)
        for name, row in stats.items():
            self.log.info("%s.%s: %s", p.database, name, row)
        extra = {"params": self.params_json, "dataset": self.dataset, "run_id": context["dag_run"].run_id}
        for asset in ASSETS.values():
            context["outlet_events"][asset].extra = extra
        return stats


class AcceptanceRunOperator(BaseOperator):
    """Which replay to check: the run conf's ``params`` and ``dataset`` when given, else the extra of the latest
    event of the pipeline's Assets (this task's inlets). Outputs: ``params``, ``dataset``, ``totals_sql``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, inlets=list(ASSETS.values()), **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        """Find the run; render the gateway query of the upsert table."""
        from airflow.sdk.exceptions import AirflowFailException

        from flink_lessons.phase5.sql import totals_query

        conf: Mapping[str, Any] = context["dag_run"].conf or {}
        if conf.get("params") and conf.get("dataset"):
            run = {"params": conf["params"], "dataset": conf["dataset"]}
            self.log.info("Checking the replay given in the run conf")
        else:
            events = list(context["inlet_events"][ASSETS["orders_enriched"]])
            if not events:
                raise AirflowFailException("flink_phase5_pipeline has not published the tables yet: run it first")
            run = dict(events[-1].extra)
            self.log.info("Checking the replay of flink_phase5_pipeline run %s", run.get("run_id"))
        params = PipelineParams.from_json(run["params"], IcebergCatalog.from_env())
        return {"params": run["params"], "dataset": run["dataset"], "totals_sql": totals_query(params)}


class CheckTablesOperator(_RunOperator):
    """Compare the four tables with the reference computed from the dataset: the acceptance table in the
    log, and a failure with the readable diff when any count, key or value differs.

    :param totals: the gateway query's outcome (``FlinkSqlGatewayOperator``'s XCom, templated).
    """

    template_fields: Sequence[str] = (*_RunOperator.template_fields, "totals")

    def __init__(self, *, totals: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.totals = totals

    def execute(self, context: Context) -> dict[str, Any]:
        """Check; see the class docstring."""
        from airflow.sdk.exceptions import AirflowFailException

        from flink_lessons.phase5.acceptance import check
        from flink_lessons.phase5.readers import totals_from_rows

        result = self.totals["results"][-1]
        report = check(self.pipeline(), self.dataset, totals=totals_from_rows(result["columns"], result["rows"]),
                       raise_on_failure=False)  # fmt: skip
        self.log.info("Acceptance (%s):\n%s", report.info, report.table())
        if not report.passed:
            raise AirflowFailException(f"The tables differ from the reference:\n{report.diff()}")
        return report.to_json()
