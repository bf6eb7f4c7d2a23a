"""Hook for the Flink REST API: jobs, jars, savepoints, checkpoints, task managers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from typing import Any, Unpack

from airflow_flink_provider.hooks.base import FlinkBaseHook
from airflow_flink_provider.protocol import job_state, metrics, rest
from airflow_flink_provider.protocol.metrics import Backpressure, CheckpointHealth, JobSignals, MetricAggregate


class FlinkRestHook(FlinkBaseHook):
    """Talk to a Flink JobManager's REST API (default port 8081).

    Every method runs the exchange of the same name in :mod:`airflow_flink_provider.protocol.rest`,
    so a trigger can run that exchange with an ``AsyncTransport`` instead.

    :param flink_conn_id: Airflow connection of type ``flink``.
    """

    conn_name_attr = "flink_conn_id"
    default_conn_name = "flink_default"
    conn_type = "flink"
    hook_name = "Apache Flink REST API"
    default_port = 8081

    def __init__(self, flink_conn_id: str = default_conn_name) -> None:
        super().__init__(flink_conn_id)
        self.flink_conn_id = flink_conn_id

    def test_connection(self) -> tuple[bool, str]:
        """Check that the REST API answers (used by the Airflow UI's Test button)."""
        try:
            overview = self.get_overview()
        except Exception as error:
            return False, str(error)
        return True, f"Flink {overview.get('flink-version')}: {overview.get('slots-available')} free slots"

    def get_overview(self) -> dict[str, Any]:
        """Cluster summary: ``taskmanagers``, ``slots-total``, ``slots-available``, job counts, version."""
        return self.run(rest.get_overview())

    def get_config(self) -> dict[str, Any]:
        """The web UI configuration (``flink-version``, ``features``...)."""
        return self.run(rest.get_config())

    def get_jobmanager_config(self) -> dict[str, str]:
        """The cluster configuration as ``{key: value}``."""
        return self.run(rest.get_jobmanager_config())

    def upload_jar(self, path: str, *, timeout: float | None = None, name: str | None = None) -> str:
        """Upload a local jar; returns the jar id. A lost answer is resolved by name (see ``rest.upload_jar``).

        :param path: local path of the jar.
        :param timeout: request timeout for a large jar.
        :param name: the file name to upload it under (default: the file's own name); a name unique to
            this upload lets a lost answer be resolved and the jar be deleted by name.
        """
        if name is None or name == os.path.basename(path):
            return self.run(rest.upload_jar(path, timeout=timeout))
        with tempfile.TemporaryDirectory(prefix="flink-upload-") as directory:
            alias = os.path.join(directory, name)
            os.symlink(os.path.abspath(path), alias)  # the transport sends the file under the link's name
            return self.run(rest.upload_jar(alias, timeout=timeout))

    def jars_named(self, name: str) -> list[str]:
        """Ids of the uploaded jars listed under the file name ``name``.

        :param name: the uploaded file's name.
        """
        return self.run(rest.jars_named(name))

    def list_jars(self) -> list[dict[str, Any]]:
        """Uploaded jars (``id``, ``name``, ``uploaded``, ``entry``)."""
        return self.run(rest.list_jars())

    def delete_jar(self, jar_id: str) -> None:
        """Delete an uploaded jar.

        :param jar_id: the jar id.
        """
        self.run(rest.delete_jar(jar_id))

    def run_jar(self, jar_id: str, **options: Unpack[rest.RunJarOptions]) -> str:
        """Submit an uploaded jar's job; returns the job id.

        :param jar_id: the jar id.
        :param options: see :class:`~airflow_flink_provider.protocol.rest.RunJarOptions`.
        """
        return self.run(rest.run_jar(jar_id, **options))

    def get_job(self, job_id: str) -> dict[str, Any]:
        """Job details; raises ``FlinkNotFoundError`` for an unknown job.

        :param job_id: the job.
        """
        return self.run(rest.get_job(job_id))

    def get_vertex(self, job_id: str, vertex_id: str) -> dict[str, Any]:
        """One vertex with its subtasks' records in/out and busy, idle and back-pressured time (also for a
        finished job).

        :param job_id: the job.
        :param vertex_id: the vertex (``vertices[].id`` of :meth:`get_job`).
        """
        return self.run(rest.get_vertex(job_id, vertex_id))

    def get_job_overview(self, job_id: str) -> dict[str, Any]:
        """The job's live state and task counts (its ``/jobs/overview`` entry); ``FlinkNotFoundError`` if unknown.

        :param job_id: the job.
        """
        return self.run(rest.get_job_overview(job_id))

    def get_job_state(self, job_id: str) -> str:
        """The job's state (``RUNNING``, ``FINISHED``, ``FAILED``...).

        :param job_id: the job.
        """
        return self.run(rest.get_job_state(job_id))

    def find_job(self, job_id: str) -> dict[str, Any] | None:
        """Job details, or ``None`` when Flink does not know the job.

        :param job_id: the job.
        """
        return self.run(rest.find_job(job_id))

    def find_job_state(self, job_id: str) -> str | None:
        """The job's live state, or ``None`` when Flink does not know the job (see ``rest.find_job_state``).

        :param job_id: the job.
        """
        return self.run(rest.find_job_state(job_id))

    def list_jobs(self, name: str | None = None, states: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Jobs from ``/jobs/overview`` (``jid``, ``name``, ``state``, ``start-time``...), newest first.

        :param name: only jobs with exactly this name.
        :param states: only jobs in these states.
        """
        return self.run(rest.list_jobs(name, states))

    def get_exceptions(self, job_id: str) -> dict[str, Any]:
        """The job's exception history.

        :param job_id: the job.
        """
        return self.run(rest.get_exceptions(job_id))

    def get_root_cause(self, job_id: str) -> str | None:
        """Root cause of the job's newest failure, or ``None``.

        :param job_id: the job.
        """
        return self.run(rest.get_root_cause(job_id))

    def check_job(self, job_id: str) -> str:
        """The job's state; raises a typed error if it FAILED or cannot get its slots.

        :param job_id: the job.
        """
        return self.run(job_state.check_job(job_id))

    def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        """Checkpoint statistics (``counts``, ``latest``, ``history``).

        :param job_id: the job.
        """
        return self.run(rest.get_checkpoints(job_id))

    def get_checkpoint_config(self, job_id: str) -> dict[str, Any]:
        """Checkpoint configuration (``mode``, ``interval``, ``timeout``, ``tolerable_failed_checkpoints``...).

        :param job_id: the job.
        """
        return self.run(rest.get_checkpoint_config(job_id))

    def get_checkpoint_health(
        self, job_id: str, now_ms: int, started_ms: int | None = None, window_ms: int = 600_000
    ) -> CheckpointHealth:
        """Checkpoint statistics and configuration condensed (age, failed, durations).

        :param job_id: the job.
        :param now_ms: the current time, epoch ms.
        :param started_ms: the job's start time, epoch ms.
        :param window_ms: how far back failed checkpoints count as recent.
        """
        return self.run(metrics.get_checkpoint_health(job_id, now_ms, started_ms, window_ms))

    def list_subtask_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        """The metric names a vertex's subtasks report (source metrics carry the operator prefix).

        :param job_id: the job.
        :param vertex_id: the vertex.
        """
        return self.run(metrics.list_subtask_metric_names(job_id, vertex_id))

    def get_subtask_metrics(self, job_id: str, vertex_id: str, names: Collection[str]) -> dict[str, MetricAggregate]:
        """Full-named metrics aggregated over a vertex's subtasks.

        :param job_id: the job.
        :param vertex_id: the vertex.
        :param names: full metric names.
        """
        return self.run(metrics.get_subtask_metrics(job_id, vertex_id, names))

    def get_vertex_metric(self, job_id: str, vertex_id: str, metric: str) -> MetricAggregate | None:
        """A vertex metric by short name (``pendingRecords``), the source prefix resolved; ``None`` until reported.

        :param job_id: the job.
        :param vertex_id: the vertex.
        :param metric: the short metric name.
        """
        return self.run(metrics.get_vertex_metric(job_id, vertex_id, metric))

    def get_job_metrics(self, job_id: str, names: Collection[str]) -> dict[str, float]:
        """Job-level metrics (``numRestarts``, ``lastCheckpointDuration``...).

        :param job_id: the job.
        :param names: metric names.
        """
        return self.run(metrics.get_job_metrics(job_id, names))

    def get_backpressure(self, job_id: str, vertex_id: str) -> Backpressure:
        """A vertex's backpressure level and ratios (level ``None`` for a finished or not yet sampled vertex).

        :param job_id: the job.
        :param vertex_id: the vertex.
        """
        return self.run(metrics.get_backpressure(job_id, vertex_id))

    def get_watermarks(self, job_id: str, vertex_id: str) -> dict[int, int | None]:
        """Each subtask's current input watermark, epoch ms (``None`` before the first one).

        :param job_id: the job.
        :param vertex_id: the vertex.
        """
        return self.run(metrics.get_watermarks(job_id, vertex_id))

    def get_job_signals(self, job_id: str, now_ms: int, window_ms: int = 600_000) -> JobSignals:
        """One look at a running job: source lag, backpressure, watermark delay, checkpoints, restarts.

        :param job_id: the job.
        :param now_ms: the current time, epoch ms.
        :param window_ms: the window restarts and failed checkpoints are counted over.
        """
        return self.run(metrics.get_job_signals(job_id, now_ms, window_ms))

    def get_checkpoint_subtasks(self, job_id: str, checkpoint_id: int, vertex_id: str) -> dict[str, Any]:
        """One task's part of a checkpoint: alignment, start delay, sync/async durations per subtask.

        :param job_id: the job.
        :param checkpoint_id: the checkpoint.
        :param vertex_id: the task.
        """
        return self.run(rest.get_checkpoint_subtasks(job_id, checkpoint_id, vertex_id))

    def get_latest_checkpoint_path(self, job_id: str) -> str | None:
        """External path of the latest completed checkpoint, or ``None``.

        :param job_id: the job.
        """
        return self.run(rest.get_latest_checkpoint_path(job_id))

    def trigger_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        format_type: str | None = None,
        trigger_id: str | None = None,
    ) -> str:
        """Start a savepoint (the job keeps running); returns the request id.

        :param job_id: the job.
        :param target_directory: where to write (cluster default when ``None``).
        :param format_type: ``CANONICAL`` or ``NATIVE``.
        :param trigger_id: 32 hex digits; a repeated request with it returns the same operation.
        """
        return self.run(
            rest.trigger_savepoint(job_id, target_directory, format_type=format_type, trigger_id=trigger_id)
        )

    def find_savepoint(self, job_id: str, trigger_id: str) -> dict[str, Any] | None:
        """Status of the savepoint operation ``trigger_id``, or ``None`` when Flink has none.

        :param job_id: the job.
        :param trigger_id: the trigger id it was requested with.
        """
        return self.run(rest.find_savepoint(job_id, trigger_id))

    def get_savepoint_status(self, job_id: str, request_id: str) -> dict[str, Any]:
        """Status of a savepoint request.

        :param job_id: the job.
        :param request_id: the savepoint request id.
        """
        return self.run(rest.get_savepoint_status(job_id, request_id))

    def wait_for_savepoint(
        self, job_id: str, request_id: str, *, timeout: float = 300, poll_interval: float = 1
    ) -> str:
        """Wait until the savepoint completes; returns its location.

        :param job_id: the job.
        :param request_id: the savepoint request id.
        :param timeout: seconds to wait.
        :param poll_interval: seconds between polls.
        """
        return self.run(rest.wait_for_savepoint(job_id, request_id, timeout=timeout, poll_interval=poll_interval))

    def stop_with_savepoint(
        self,
        job_id: str,
        target_directory: str | None = None,
        *,
        drain: bool = False,
        timeout: float = 300,
        trigger_id: str | None = None,
    ) -> str:
        """Stop the job with a savepoint; returns the savepoint location.

        :param job_id: the job.
        :param target_directory: where to write (cluster default when ``None``).
        :param drain: emit MAX_WATERMARK before stopping.
        :param timeout: seconds to wait for the savepoint.
        :param trigger_id: 32 hex digits; a repeated request with it returns the same operation.
        """
        return self.run(
            rest.stop_with_savepoint(job_id, target_directory, drain=drain, timeout=timeout, trigger_id=trigger_id)
        )

    def trigger_checkpoint(self, job_id: str, checkpoint_type: str = "FULL") -> str:
        """Take a checkpoint now (the job keeps running); returns the request id.

        :param job_id: the job.
        :param checkpoint_type: ``FULL``, ``INCREMENTAL`` or ``CONFIGURED``.
        """
        return self.run(rest.trigger_checkpoint(job_id, checkpoint_type))

    def wait_for_checkpoint(
        self, job_id: str, request_id: str, *, timeout: float = 300, poll_interval: float = 0.5
    ) -> int:
        """Wait until a triggered checkpoint completes; returns its id.

        :param job_id: the job.
        :param request_id: from :meth:`trigger_checkpoint`.
        :param timeout: seconds to wait.
        :param poll_interval: seconds between polls.
        """
        return self.run(rest.wait_for_checkpoint(job_id, request_id, timeout=timeout, poll_interval=poll_interval))

    def cancel_job(self, job_id: str) -> None:
        """Cancel the job (a job already FINISHED/FAILED/CANCELED is left as it is).

        :param job_id: the job.
        """
        self.run(rest.cancel_job(job_id))

    def list_taskmanagers(self) -> list[dict[str, Any]]:
        """Task managers with their slots and resources."""
        return self.run(rest.list_taskmanagers())

    def get_taskmanager_stdout(self, tm_id: str) -> str:
        """A task manager's stdout (where the ``print`` connector writes).

        :param tm_id: task manager id.
        """
        return self.run(rest.get_taskmanager_stdout(tm_id))
