"""The OpenLineage methods of the Flink operators, as a mixin.

The OpenLineage provider's listener calls :meth:`get_openlineage_facets_on_complete` (or ``_on_failure``) on
the operator after ``execute``, so the fields it reads are rendered. What it reports:

- for an operator with a ``sql`` script (:class:`FlinkSqlGatewayOperator`): the tables the script's INSERTs
  (and CTAS) read and write, named from their ``CREATE TABLE ... WITH`` options
  (:mod:`airflow_flink_provider.openlineage.naming`), with a schema facet from their columns, and a ``sql``
  job facet holding the script with its secrets masked (dialect ``flink``);
- for a jar or PyFlink job (:class:`FlinkJobSubmitOperator`): what the program declares in its
  ``openlineage.json`` (:mod:`airflow_flink_provider.openlineage.declared`);
- for every operator: its explicit ``inlets`` and ``outlets`` (Airflow ``Asset`` objects, e.g.
  ``Asset("kafka://127.0.0.1:9092/orders")``, or OpenLineage datasets).

On failure the same lineage is reported: it is what the task set out to read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_flink_provider.openlineage.declared import declaration_for, declared_datasets
from airflow_flink_provider.openlineage.naming import DatasetName, asset_dataset, table_datasets
from airflow_flink_provider.openlineage.sql import sql_lineage
from airflow_flink_provider.protocol.redaction import redact

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

SQL_DIALECT = "flink"


def flink_lineage(operator: Any) -> tuple[list[DatasetName], list[DatasetName], str | None]:
    """``(inputs, outputs, redacted script or None)`` of a Flink operator after it ran (or failed).

    :param operator: the operator, its templated fields rendered.
    """
    inputs: list[DatasetName] = []
    outputs: list[DatasetName] = []
    script = getattr(operator, "sql", None)
    query = None
    if isinstance(script, str) and script.strip():
        lineage = sql_lineage(script)
        inputs += [d for table in lineage.inputs for d in table_datasets(table)]
        outputs += [d for table in lineage.outputs for d in table_datasets(table)]
        query = redact(script)
    program = getattr(operator, "py_file", None) or getattr(operator, "jar", None)
    module = getattr(operator, "py_module", None)
    if program or module:
        declaration = declaration_for(program, module, list(getattr(operator, "py_files", None) or []))
        if declaration is not None:
            declared_in, declared_out = declared_datasets(
                declaration, list(getattr(operator, "program_args", None) or [])
            )
            inputs += declared_in
            outputs += declared_out
    inputs += [d for item in getattr(operator, "inlets", None) or [] if (d := asset_dataset(item))]
    outputs += [d for item in getattr(operator, "outlets", None) or [] if (d := asset_dataset(item))]
    return _unique(inputs), _unique(outputs), query


def _unique(datasets: Iterable[DatasetName]) -> list[DatasetName]:
    seen: dict[tuple[str, str], DatasetName] = {}
    for dataset in datasets:
        seen.setdefault((dataset.namespace, dataset.name), dataset)
    return list(seen.values())


def _ol_datasets(datasets: Sequence[DatasetName]) -> list[Dataset]:
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        Identifier,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
        SymlinksDatasetFacet,
    )

    out: list[Dataset] = []
    for dataset in datasets:
        facets: dict[str, Any] = {}
        if dataset.columns:
            fields = [SchemaDatasetFacetFields(name=c.name, type=c.type) for c in dataset.columns]
            facets["schema"] = SchemaDatasetFacet(fields=fields)
        if dataset.symlink:
            identifier = Identifier(namespace=dataset.symlink[0], name=dataset.symlink[1], type="TABLE")
            facets["symlinks"] = SymlinksDatasetFacet(identifiers=[identifier])
        out.append(Dataset(namespace=dataset.namespace, name=dataset.name, facets=facets))
    return out


class FlinkOpenLineageMixin:
    """``get_openlineage_facets_on_complete`` and ``_on_failure`` for the Flink operators (module docstring)."""

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """The lineage of the finished task: inputs, outputs and the SQL job facet.

        :param task_instance: the task instance (unused: the operator holds the rendered fields).
        """
        from airflow.providers.common.compat.openlineage.facet import SQLJobFacet
        from airflow.providers.openlineage.extractors import OperatorLineage

        inputs, outputs, query = flink_lineage(self)
        job_facets: dict[str, Any] = {"sql": SQLJobFacet(query=query, dialect=SQL_DIALECT)} if query else {}
        return OperatorLineage(inputs=_ol_datasets(inputs), outputs=_ol_datasets(outputs), job_facets=job_facets)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        """The lineage of a failed task: what it set out to read and write (as on complete).

        :param task_instance: the task instance.
        """
        return self.get_openlineage_facets_on_complete(task_instance)
