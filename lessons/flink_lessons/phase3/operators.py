"""The phase-3 lesson DAGs' own tasks: validate the settings, load the topics, render the SQL, measure and
judge, delete the run's topics. Everything else (submitting, waiting, cancelling) is the provider's.

Each task reads Variables, connections and Flink at run time only; XComs carry JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

ENDED = ("CANCELED", "FINISHED", "FAILED")
"""Job states a job does not leave."""

WAIT_FINISHED: dict[str, Any] = {"target_states": ["FINISHED"], "deferrable": True, "poke_interval": 2, "timeout": 900}
"""``FlinkJobStateSensor`` of the lessons' bounded jobs: until FINISHED, waiting in the triggerer."""


class ResolvePhase3Operator(BaseOperator):
    """Validate a phase-3 lesson's Variable and the run conf; hand the run its settings.

    A bad value fails this first task, naming every key at fault and where its value came from, before any
    topic is created or job submitted. Outputs (XCom keys): ``settings`` (JSON values), ``tag`` (the run tag),
    ``kafka_conn_id``, ``bootstrap`` (Kafka as Flink reaches it) and ``topics`` (role -> this run's topic).

    :param variable: the lesson's Variable, e.g. ``flink_phase3_partitioning``.
    """

    ui_color = "#fff7e6"

    def __init__(self, *, variable: str, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.variable = variable

    def execute(self, context: Context) -> dict[str, Any]:
        """Resolve; see the class docstring."""
        from flink_lessons.phase3.settings import FAMILIES, topic_names
        from flink_lessons.settings import resolve_for_task

        settings = resolve_for_task(FAMILIES[self.variable], context)
        values = settings.to_json()["values"]
        for name, value in values.items():
            self.log.info("  %s = %s", name, value)
        return {"settings": values, "tag": settings.tag, "kafka_conn_id": settings["kafka_conn_id"],
                "bootstrap": settings.bootstrap_servers,
                "topics": topic_names(self.variable, settings["topic_prefix"], settings.tag)}  # fmt: skip


class LoadPartitioningTopicsOperator(BaseOperator):
    """Lesson 1: create this run's three topics and fill them with the load command's producer.

    Returns ``{"topics": {role: name}, "loads": {role: load summary}}``; each summary is also logged.

    :param settings: the resolved settings (templated).
    :param tag: the run tag (templated).
    :param kafka_conn_id: the Kafka connection (templated).
    """

    template_fields: Sequence[str] = ("settings", "tag", "kafka_conn_id")

    def __init__(self, *, settings: Any, tag: Any, kafka_conn_id: Any, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.settings, self.tag, self.kafka_conn_id = settings, tag, kafka_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Create and load; see the class docstring."""
        from flink_lessons.load.kafka import Kafka
        from flink_lessons.load.run import LoadSummary
        from flink_lessons.phase3.partitioning import Params, prepare

        prepared = prepare(Params.from_settings(self.settings), Kafka.from_connection(self.kafka_conn_id), self.tag)
        for role, summary in prepared["loads"].items():
            self.log.info("%s:\n  %s", role, "\n  ".join(LoadSummary.from_json(summary).lines()))
        return prepared


class RenderPartitioningOperator(BaseOperator):
    """Lesson 1: the two SQL scripts, ``skewed`` (one-phase) and ``fixed`` (two-phase + mini-batch).

    :param settings: the resolved settings (templated).
    :param topics: role -> topic (templated).
    :param bootstrap: Kafka as Flink reaches it (templated).
    :param tag: the run tag (templated).
    """

    template_fields: Sequence[str] = ("settings", "topics", "bootstrap", "tag")

    def __init__(self, *, settings: Any, topics: Any, bootstrap: Any, tag: Any, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.settings, self.topics, self.bootstrap, self.tag = settings, topics, bootstrap, tag

    def execute(self, context: Context) -> dict[str, str]:
        """Render; each script is logged."""
        from flink_lessons.phase3.partitioning import Params, scripts

        texts = scripts(Params.from_settings(self.settings), self.topics, self.bootstrap, self.tag)
        for name, text in texts.items():
            self.log.info("-- %s\n%s", name, text)
        return texts


class PartitioningReportOperator(BaseOperator):
    """Lesson 1's final report: per-subtask records in from the REST API, judged against the lesson.

    Logs the tables and each measurement next to what the lesson expects, returns the report as JSON, and
    fails (no retry) when an expectation does not hold.

    :param settings: the resolved settings (templated).
    :param prepared: the load task's output (templated).
    :param outcomes: variant -> the FlinkSqlGatewayOperator's XCom (templated).
    :param flink_conn_id: the Flink REST connection.
    """

    template_fields: Sequence[str] = ("settings", "prepared", "outcomes")

    def __init__(self, *, settings: Any, prepared: Any, outcomes: Any, flink_conn_id: str = "flink_default",
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.settings, self.prepared, self.outcomes, self.flink_conn_id = settings, prepared, outcomes, flink_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Measure, judge, log; see the class docstring."""
        from airflow.sdk.exceptions import AirflowFailException
        from flink_lessons.phase3.partitioning import Params, judge, measure

        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        jobs = {variant: _one_job(variant, outcome) for variant, outcome in dict(self.outcomes).items()}
        report = judge(Params.from_settings(self.settings), self.prepared,
                       measure(FlinkRestHook(self.flink_conn_id), jobs))  # fmt: skip
        report.settings["jobs"] = jobs
        self.log.info("\n%s", report.render())
        if not report.ok:
            raise AirflowFailException("; ".join(c.text for c in report.failed()))
        return report.to_json()


class _LessonStep(BaseOperator):
    """Lessons 2 and 3 steps share their arguments: the resolved settings, the run tag, the Kafka connection and
    this run's topics (all templated)."""

    template_fields: Sequence[str] = ("settings", "tag", "kafka_conn_id", "topics")

    def __init__(self, *, settings: Any, tag: Any, kafka_conn_id: Any, topics: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.tag, self.kafka_conn_id, self.topics = settings, tag, kafka_conn_id, topics

    def _params(self) -> Any:
        from flink_lessons.phase3.offsets import Params

        return Params.from_settings(self.settings)

    def _kafka(self) -> Any:
        from flink_lessons.load.kafka import Kafka

        return Kafka.from_connection(self.kafka_conn_id)


class PrepareOffsetsOperator(_LessonStep):
    """Lesson 2: create the topics, produce batch A, remember the instant T, produce batch B.

    Returns ``{"topics", "timestamp_ms", "loads"}`` (see :func:`flink_lessons.phase3.offsets.prepare`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        """Create and load."""
        from flink_lessons.load.run import LoadSummary
        from flink_lessons.phase3.offsets import prepare

        prepared = prepare(self._params(), self._kafka(), self.tag)
        for batch, summary in prepared["loads"].items():
            self.log.info("batch %s:\n  %s", batch, "\n  ".join(LoadSummary.from_json(summary).lines()))
        self.log.info("T (between A and B) = %s", prepared["timestamp_ms"])
        return prepared


class RenderOffsetsOperator(_LessonStep):
    """Lesson 2: the ``stream`` and ``modes`` scripts.

    :param bootstrap: Kafka as Flink reaches it (templated).
    :param timestamp_ms: the instant T (templated).
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "bootstrap", "timestamp_ms")

    def __init__(self, *, bootstrap: Any, timestamp_ms: Any, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.bootstrap, self.timestamp_ms = bootstrap, timestamp_ms

    def execute(self, context: Context) -> dict[str, str]:
        """Render; each script is logged."""
        from flink_lessons.phase3.offsets import scripts

        texts = scripts(self._params(), self.topics, self.bootstrap, self.tag, int(self.timestamp_ms))
        for name, text in texts.items():
            self.log.info("-- %s\n%s", name, text)
        return texts


class CommitOnCheckpointOperator(_LessonStep):
    """Lesson 2: once the streaming job has read its batches, show the group's committed offsets, take a
    checkpoint, and wait until the group's offsets are the source topic's end offsets.

    :param outcome: the streaming job's FlinkSqlGatewayOperator XCom (templated).
    :param read_start: records the ``read`` topic held before this job started (templated).
    :param batches: batches this job reads.
    :param flink_conn_id: the Flink REST connection.
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "outcome", "read_start")

    def __init__(self, *, outcome: Any, read_start: Any = 0, batches: int, flink_conn_id: str = "flink_default",
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(multiple_outputs=True, **kwargs)
        self.outcome, self.read_start, self.batches, self.flink_conn_id = outcome, read_start, batches, flink_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Wait, look, checkpoint, look again."""
        from flink_lessons.phase3.offsets import commit_drill

        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        params = self._params()
        job_id = _one_job("streaming", self.outcome)
        drill = commit_drill(params, self._kafka(), FlinkRestHook(self.flink_conn_id), job_id, self.topics, self.tag,
                             int(self.read_start) + self.batches * params.batch_events)  # fmt: skip
        self.log.info("group %s before the checkpoint: %s; after checkpoint %s: %s (end offsets %s)",
                      params.group(self.tag), drill["before"] or "no committed offsets", drill["checkpoint_id"],
                      drill["after"], drill["end_offsets"])  # fmt: skip
        return {**drill, "job_id": job_id}


class ResetGroupOperator(_LessonStep):
    """Lesson 2: reset the group's offsets to ``reset_offset`` through the admin API, after producing batch C
    when ``produce_batch_c`` is set. Returns ``{"reset": offsets shown after the reset, "load": summary}``.

    :param produce_batch_c: produce batch C first (the job is stopped).
    """

    def __init__(self, *, produce_batch_c: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.produce_batch_c = produce_batch_c

    def execute(self, context: Context) -> dict[str, Any]:
        """Produce, reset, read the offsets back."""
        from flink_lessons.phase3.offsets import load_batch, reset_group

        params, kafka = self._params(), self._kafka()
        loaded = None
        if self.produce_batch_c:
            summary = load_batch(params, kafka, self.topics["source"], 2)
            self.log.info("batch C:\n  %s", "\n  ".join(summary.lines()))
            loaded = summary.to_json()
        offsets = reset_group(params, kafka, self.topics["source"], self.tag)
        self.log.info("group %s reset through the admin API: %s", params.group(self.tag), offsets)
        return {"reset": offsets, "load": loaded}


class OffsetsReportOperator(_LessonStep):
    """Lesson 2's final report: read back what every job read, judge it against each startup mode's exact set.

    :param prepared: the prepare task's output (templated).
    :param drills: ``{"first", "reset", "restored", "reset_again"}``: the commit and reset tasks' outputs
        (templated).
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "prepared", "drills")

    def __init__(self, *, prepared: Any, drills: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepared, self.drills = prepared, drills

    def execute(self, context: Context) -> dict[str, Any]:
        """Read, judge, log; fails (no retry) when an expectation does not hold."""
        import json

        from airflow.sdk.exceptions import AirflowFailException
        from flink_lessons.phase3.offsets import SourceRecord, judge, reads_by_job

        params, kafka = self._params(), self._kafka()
        source = [SourceRecord(int(json.loads(r.value)["order_id"]), r.partition, r.offset, r.timestamp)
                  for r in kafka.read(self.topics["source"])]  # fmt: skip
        first_end = int(self.drills["first"]["read_end"])
        reads = reads_by_job([r.value for r in kafka.read(self.topics["read"])], first_end)
        drills = {**self.drills, "reset": self.drills["reset"]["reset"],
                  "reset_again": self.drills["reset_again"]["reset"]}  # fmt: skip
        report = judge(params, self.prepared, source, reads, drills)
        self.log.info("\n%s", report.render())
        if not report.ok:
            raise AirflowFailException("; ".join(c.text for c in report.failed()))
        return report.to_json()


class PrepareBackpressureOperator(_LessonStep):
    """Lesson 3: create the input and output topics and write the backlog. Returns ``{"topics", "backlog"}``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        """Create and load."""
        from flink_lessons.load.run import LoadSummary
        from flink_lessons.phase3.backpressure import Params, prepare

        prepared = prepare(Params.from_settings(self.settings), self._kafka(), self.tag)
        self.log.info("backlog:\n  %s", "\n  ".join(LoadSummary.from_json(prepared["backlog"]).lines()))
        return prepared


class RenderBackpressureOperator(_LessonStep):
    """Lesson 3: one script per variant (a list, to map the submit over).

    :param bootstrap: Kafka as Flink reaches it (templated).
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "bootstrap")

    def __init__(self, *, bootstrap: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap

    def execute(self, context: Context) -> list[str]:
        """Render; each script is logged."""
        from flink_lessons.phase3.backpressure import Params, scripts

        texts = scripts(Params.from_settings(self.settings), self.topics, self.bootstrap, self.tag)
        for text in texts:
            self.log.info("%s", text)
        return texts


class BackpressureSweepOperator(_LessonStep):
    """Lesson 3: while the variants drain the backlog, sample the unchained job's backpressure; then write the
    tail and wait for every variant's output. Returns ``{"jobs": {variant: id}, "job_ids", "samples", "tail"}``.

    :param outcomes: the mapped submit's XComs, in variant order (templated).
    :param flink_conn_id: the Flink REST connection.
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "outcomes")

    def __init__(self, *, outcomes: Any, flink_conn_id: str = "flink_default", **kwargs: Any) -> None:
        super().__init__(multiple_outputs=True, **kwargs)
        self.outcomes, self.flink_conn_id = outcomes, flink_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Sample, write the tail, wait."""
        from flink_lessons.phase3.backpressure import Params, run_sweep

        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        params = Params.from_settings(self.settings)
        jobs = {name: _one_job(name, outcome) for name, outcome in zip(params.variants, self.outcomes, strict=True)}
        sweep = run_sweep(params, self._kafka(), FlinkRestHook(self.flink_conn_id), self.topics, jobs)
        for sample in sweep["samples"]:
            self.log.info("unchained job backpressure: %s", sample)
        return {**sweep, "jobs": jobs, "job_ids": list(jobs.values())}


class BackpressureReportOperator(_LessonStep):
    """Lesson 3's final report: the sweep's table and plot (PNG), the unchained job's time shares, judged.

    :param sweep: the sweep task's output (templated).
    :param plot_dir: where the PNG goes (default: the temp directory).
    :param flink_conn_id: the Flink REST connection.
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "sweep")

    def __init__(self, *, sweep: Any, plot_dir: str | None = None, flink_conn_id: str = "flink_default",
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.sweep, self.plot_dir, self.flink_conn_id = sweep, plot_dir, flink_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Read the outputs, measure, plot, judge; fails (no retry) when an expectation does not hold."""
        import tempfile
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowFailException
        from flink_lessons.phase3.backpressure import Params, judge, output_figures, plot, task_shares

        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        params, kafka = Params.from_settings(self.settings), self._kafka()
        outputs = {name: output_figures(params, [(r.value, r.timestamp) for r in kafka.read(self.topics[name])])
                   for name in params.variants}  # fmt: skip
        jobs = dict(self.sweep["jobs"])
        shares = task_shares(FlinkRestHook(self.flink_conn_id), jobs["unchained"]) if "unchained" in jobs else []
        report = judge(params, self.sweep, outputs, shares, None)
        folder = Path(self.plot_dir or tempfile.gettempdir())
        path = plot(report.tables["sweep (all variants ran at once, on the same machine)"],
                    folder / f"flink_phase3_backpressure-{self.tag}.png")  # fmt: skip
        report.settings["plot"] = path or "not drawn: matplotlib is not installed (pip install '.[bench]')"
        self.log.info("\n%s\nplot: %s", report.render(), report.settings["plot"])
        if not report.ok:
            raise AirflowFailException("; ".join(c.text for c in report.failed()))
        return report.to_json()


class _CheckpointsStep(_LessonStep):
    """Lesson 4's steps: the settings' Flink REST and SQL Gateway connections are those of the drill's stack."""

    def _hooks(self) -> tuple[Any, Any]:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook
        from airflow_flink_provider.hooks.sql_gateway import FlinkSqlGatewayHook

        return FlinkRestHook(self.settings["flink_conn_id"]), FlinkSqlGatewayHook(self.settings["gateway_conn_id"])


class CheckpointSweepOperator(_CheckpointsStep):
    """Lesson 4: one job per checkpoint setting, side by side; after ``sweep_seconds`` each job's checkpoint
    figures, then every job cancelled. Returns ``{"jobs": {setting: id}, "figures": {setting: {...}}}``."""

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the sweep; each setting's figures are logged."""
        from flink_lessons.phase3.checkpoints import SweepParams, run_sweep
        from flink_lessons.phase3.failover import gateway_submitter

        flink, gateway = self._hooks()
        sweep = run_sweep(SweepParams.from_settings(self.settings), flink, gateway_submitter(gateway), self.tag)
        for name, figures in sweep["figures"].items():
            self.log.info("%s: %s", name, figures)
        return sweep


class FailureDrillOperator(_CheckpointsStep):
    """Lesson 4: the exactly-once copy job; its TaskManager killed ``kills`` times mid-stream on the stack in
    ``stack_dir`` (never the shared one: the settings refuse ``.stack``); the committed output read back with
    ``read_committed``. Returns :func:`flink_lessons.phase3.failover.run_drill`'s result."""

    def execute(self, context: Context) -> dict[str, Any]:
        """Start a standby TaskManager, run the drill, cancel the job."""
        from pathlib import Path

        from flink_lessons.phase3.failover import ROOT, DrillParams, LocalStack, gateway_submitter, run_drill
        from flink_lessons.waiting import wait_for

        flink, gateway = self._hooks()
        kafka, values = self._kafka(), self.settings
        stack = LocalStack(ROOT / Path(values["stack_dir"]), values["stack_port_offset"])
        for topic in self.topics.values():
            kafka.create_topic(topic, 1)
        stack.start_taskmanager()  # the standby the job restarts on
        result: dict[str, Any] = {}
        try:
            result = run_drill(DrillParams.from_settings(values), stack, flink, kafka, gateway_submitter(gateway),
                               self.topics, f"{values['topic_prefix']}-drill-{self.tag}",
                               values["flink_bootstrap_servers"] or kafka.bootstrap_servers)  # fmt: skip
        finally:
            job_id = result.get("job_id")
            if job_id and flink.find_job_state(job_id) not in (None, *ENDED):
                flink.cancel_job(job_id)
                # Until it is CANCELED its Kafka clients may still ask for the topics: deleted then, a broker that
                # creates topics on demand would create them again.
                wait_for(f"job {job_id} CANCELED", lambda: flink.find_job_state(job_id) in (None, *ENDED), 120)
        for kill in result["kills"]:
            self.log.info("kill of TaskManager %s (pid %s): %s", kill["taskmanager"], kill["pid"], kill["moments"])
        self.log.info("events: %s", result["counts"])
        return result


class CheckpointsReportOperator(_LessonStep):
    """Lesson 4's final report: the sweep's table and the drill's table, judged.

    :param sweep: the sweep task's output (templated).
    :param drill: the drill task's output (templated).
    """

    template_fields: Sequence[str] = (*_LessonStep.template_fields, "sweep", "drill")

    def __init__(self, *, sweep: Any, drill: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep, self.drill = sweep, drill

    def execute(self, context: Context) -> dict[str, Any]:
        """Judge and log; fails (no retry) when an expectation does not hold."""
        from airflow.sdk.exceptions import AirflowFailException
        from flink_lessons.phase3.checkpoints import SweepParams, report

        report_ = report(SweepParams.from_settings(self.settings), self.sweep["figures"], self.drill)
        self.log.info("\n%s", report_.render())
        if not report_.ok:
            raise AirflowFailException("; ".join(c.text for c in report_.failed()))
        return report_.to_json()


class DeleteTopicsOperator(BaseOperator):
    """Delete this run's topics (a teardown: it runs whatever failed). A topic that is gone is fine.

    :param kafka_conn_id: the Kafka connection (templated).
    :param topics: topic names, or role -> name (templated).
    """

    template_fields: Sequence[str] = ("kafka_conn_id", "topics")

    def __init__(self, *, kafka_conn_id: Any, topics: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id, self.topics = kafka_conn_id, topics

    def execute(self, context: Context) -> list[str]:
        """Delete them."""
        from flink_lessons.load.kafka import Kafka

        if not self.kafka_conn_id or not self.topics:
            self.log.info("No topics were created")
            return []
        names = sorted(self.topics.values() if isinstance(self.topics, Mapping) else self.topics)
        Kafka.from_connection(self.kafka_conn_id).delete_topics(names)
        self.log.info("Deleted %s", names)
        return names


def _one_job(variant: str, outcome: Mapping[str, Any]) -> str:
    ids = list(outcome["job_ids"])
    if len(ids) != 1:
        raise ValueError(f"the {variant} script should start one job (one statement set), it started {ids}")
    return str(ids[0])


class OpsReportOperator(BaseOperator):
    """Collect every operations-checklist item for a running job and judge it (docs/operations-checklist.md).

    Logs a table of item, value, verdict and healthy range; returns ``{"job_id", "items", "bad", "warn"}``;
    fails when an item is bad and ``fail_on_bad`` is set.

    :param job: a job id or the exact name of a RUNNING job (templated).
    :param fail_on_bad: fail the task when any item is bad (templated).
    :param kafka_group: a consumer group whose lag to add (templated; empty: none).
    :param kafka_conn_id: the Kafka connection for the group's offsets.
    :param flink_conn_id: the Flink REST connection.
    """

    template_fields: Sequence[str] = ("job", "fail_on_bad", "kafka_group")

    def __init__(
        self, *, job: Any, fail_on_bad: Any = False, kafka_group: Any = "", kafka_conn_id: str = "kafka_default",
        flink_conn_id: str = "flink_default", **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.job, self.fail_on_bad, self.kafka_group = job, fail_on_bad, kafka_group
        self.kafka_conn_id, self.flink_conn_id = kafka_conn_id, flink_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Collect, judge, log; see the class docstring."""
        import time

        from airflow.sdk.exceptions import AirflowFailException
        from flink_lessons.load.kafka import Kafka
        from flink_lessons.phase3.checklist import BAD, WARN, evaluate, group_lag, job_id_of
        from flink_lessons.phase3.report import table_lines

        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        if not isinstance(self.job, str) or not self.job.strip():
            raise AirflowFailException("param 'job' is required: a Flink job id or the exact name of a RUNNING job")
        flink = FlinkRestHook(self.flink_conn_id)
        try:
            job_id = job_id_of(flink, self.job.strip())
        except ValueError as error:
            raise AirflowFailException(str(error)) from None
        signals = flink.get_job_signals(job_id, int(time.time() * 1000))
        kafka = (
            {"group_lag": group_lag(Kafka.from_connection(self.kafka_conn_id), self.kafka_group)}
            if self.kafka_group
            else {}
        )
        items = evaluate(signals, kafka)
        self.log.info("Operations report of %s (%s):\n%s", signals.name, job_id, "\n".join(table_lines(
            [{k: row[k] for k in ("item", "value", "verdict", "healthy")} for row in items])))  # fmt: skip
        bad = [row["item"] for row in items if row["verdict"] == BAD]
        warn = [row["item"] for row in items if row["verdict"] == WARN]
        if bad and _truthy(self.fail_on_bad):
            raise AirflowFailException(f"bad: {', '.join(bad)} (see docs/operations-checklist.md)")
        return {"job_id": job_id, "name": signals.name, "items": items, "bad": bad, "warn": warn}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))
