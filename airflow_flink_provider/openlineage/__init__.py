"""OpenLineage for the Flink operators: datasets from the SQL that ran, from declarations and inlets/outlets."""
