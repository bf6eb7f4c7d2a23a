"""Exchanges and pure rules for a running job's health signals: source lag, backpressure, watermarks,
checkpoint health and restarts.

Facts they rest on (Flink 2.1 with the Kafka connector 5.0, checked on the local stack):

- Source metrics are only on the *subtask* level and carry the operator's prefix
  (``Source__orders[1].pendingRecords``); the vertex-level ``/metrics?get=pendingRecords`` answers ``[]``.
  :func:`resolve_metric_names` finds the prefixed names, and source metrics appear ~10 s after RUNNING.
- ``pendingRecords`` is the lag signal. ``KafkaConsumer.records-lag-max`` stays at its catch-up peak after the
  catch-up ended, so names under ``KafkaConsumer.`` are never resolved for a metric asked for by its short name.
- ``/backpressure`` answers ``"deprecated"`` for a finished vertex, and ``"ok"`` / ``"low"`` / ``"high"`` once
  sampled.
- A subtask's watermark is ``Long.MIN_VALUE`` until its first watermark.

No I/O here: run the exchanges with a transport (``FlinkRestHook`` methods of the same names).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.http import Exchange, Request, Response, path_segment

NO_WATERMARK = -(2**63)
"""What Flink reports as the watermark of a subtask that has not seen one yet (``Long.MIN_VALUE``)."""

CHECKPOINTING_DISABLED = 2**63 - 1
"""The checkpoint ``interval`` Flink reports when checkpointing is off (``Long.MAX_VALUE``)."""

BACKPRESSURE_LEVELS = ("ok", "low", "high")
"""Backpressure levels from best to worst (Flink's thresholds: ratio <= 0.10 ok, <= 0.5 low, else high)."""

_EXCLUDED_METRIC_GROUPS = (".KafkaConsumer.",)
"""Metric groups never matched by a short name: ``KafkaConsumer.records-lag-max`` keeps its peak after a catch-up."""


def _body(response: Response | None) -> Any:
    assert response is not None, "a transport answers every Request with a Response"
    return response.body


def _vertex_path(job_id: str, vertex_id: str, *rest_: str) -> str:
    return "/".join(("/jobs", path_segment(job_id), "vertices", path_segment(vertex_id), *rest_))


@dataclass(frozen=True)
class MetricAggregate:
    """One metric aggregated over a vertex's subtasks, as ``/subtasks/metrics?get=`` reports it.

    :param name: the full (prefixed) metric name.
    :param min: smallest subtask value.
    :param max: largest subtask value.
    :param avg: mean over subtasks.
    :param sum: sum over subtasks.
    """

    name: str
    min: float
    max: float
    avg: float
    sum: float


def resolve_metric_names(available: Iterable[str], metric: str) -> list[str]:
    """The full names of ``metric`` among a vertex's metric names: the name itself or any ``<prefix>.<metric>``.

    Names in the ``KafkaConsumer`` group are left out (see the module docstring).

    :param available: names listed by ``GET .../subtasks/metrics``.
    :param metric: a short name such as ``pendingRecords``, or a full name.
    """
    return sorted(
        name
        for name in available
        if (name == metric or name.endswith("." + metric))
        and (name == metric or not any(group in "." + name for group in _EXCLUDED_METRIC_GROUPS))
    )


def parse_metric_aggregates(body: Sequence[Mapping[str, Any]]) -> dict[str, MetricAggregate]:
    """``{name: MetricAggregate}`` from a ``/subtasks/metrics?get=`` answer (entries without values are skipped).

    :param body: the answer's list of ``{"id", "min", "max", "avg", "sum"}``.
    """
    found: dict[str, MetricAggregate] = {}
    for entry in body:
        if "sum" not in entry:
            continue
        found[str(entry["id"])] = MetricAggregate(
            name=str(entry["id"]),
            min=float(entry.get("min", entry["sum"])),
            max=float(entry.get("max", entry["sum"])),
            avg=float(entry.get("avg", entry["sum"])),
            sum=float(entry["sum"]),
        )
    return found


def list_subtask_metric_names(job_id: str, vertex_id: str) -> Exchange[list[str]]:
    """``GET /jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics``: the metric names the subtasks report.

    :param job_id: the job.
    :param vertex_id: the vertex (``vertices[].id`` of the job).
    """
    return [
        str(entry["id"])
        for entry in _body((yield Request("GET", _vertex_path(job_id, vertex_id, "subtasks", "metrics"))))
    ]


def get_subtask_metrics(job_id: str, vertex_id: str, names: Collection[str]) -> Exchange[dict[str, MetricAggregate]]:
    """``GET .../subtasks/metrics?get=a,b``: the named metrics aggregated over the vertex's subtasks.

    :param job_id: the job.
    :param vertex_id: the vertex.
    :param names: full metric names (see :func:`resolve_metric_names`); none asked: ``{}``.
    """
    if not names:
        return {}
    response = yield Request(
        "GET", _vertex_path(job_id, vertex_id, "subtasks", "metrics"), params={"get": ",".join(sorted(names))}
    )
    return parse_metric_aggregates(_body(response) or [])


def get_vertex_metric(job_id: str, vertex_id: str, metric: str) -> Exchange[MetricAggregate | None]:
    """A metric of a vertex by its short name, the operator prefix resolved; summed over prefixes when several
    operators of the chain report it; ``None`` while no subtask reports it yet (~10 s after RUNNING for sources).

    :param job_id: the job.
    :param vertex_id: the vertex.
    :param metric: e.g. ``pendingRecords`` or ``currentEmitEventTimeLag``.
    """
    names = resolve_metric_names((yield from list_subtask_metric_names(job_id, vertex_id)), metric)
    values = list((yield from get_subtask_metrics(job_id, vertex_id, names)).values())
    if not values:
        return None
    return MetricAggregate(
        name=values[0].name if len(values) == 1 else metric,
        min=min(value.min for value in values),
        max=max(value.max for value in values),
        avg=sum(value.avg for value in values),
        sum=sum(value.sum for value in values),
    )


def get_job_metrics(job_id: str, names: Collection[str]) -> Exchange[dict[str, float]]:
    """``GET /jobs/{job_id}/metrics?get=``: job-level metrics such as ``numRestarts``; unknown names are absent.

    :param job_id: the job.
    :param names: metric names.
    """
    response = yield Request(
        "GET", "/".join(("/jobs", path_segment(job_id), "metrics")), params={"get": ",".join(sorted(names))}
    )
    return {str(entry["id"]): float(entry["value"]) for entry in _body(response) or [] if "value" in entry}


@dataclass(frozen=True)
class Backpressure:
    """A vertex's backpressure sample.

    :param level: ``ok``, ``low`` or ``high``; ``None`` when there is no sample (a finished vertex answers
        ``deprecated``, a first request may answer before the sample is taken).
    :param ratio: the highest subtask backpressure ratio (0..1), ``None`` without sample.
    :param busy_ratio: the highest subtask busy ratio (0..1), ``None`` without sample.
    """

    level: str | None
    ratio: float | None = None
    busy_ratio: float | None = None


def parse_backpressure(body: Mapping[str, Any]) -> Backpressure:
    """A :class:`Backpressure` from a ``/backpressure`` answer.

    :param body: the answer (``status``, ``backpressureLevel``, ``subtasks[]``).
    """
    level = body.get("backpressureLevel") or body.get("backpressure-level")
    if body.get("status") != "ok" or level not in BACKPRESSURE_LEVELS:
        return Backpressure(level=None)
    subtasks = body.get("subtasks") or []
    return Backpressure(
        level=str(level),
        ratio=max((float(s.get("ratio", 0.0)) for s in subtasks), default=0.0),
        busy_ratio=max((float(s.get("busyRatio", 0.0)) for s in subtasks), default=0.0),
    )


def get_backpressure(job_id: str, vertex_id: str) -> Exchange[Backpressure]:
    """``GET /jobs/{job_id}/vertices/{vertex_id}/backpressure``.

    :param job_id: the job.
    :param vertex_id: the vertex.
    """
    return parse_backpressure(_body((yield Request("GET", _vertex_path(job_id, vertex_id, "backpressure")))) or {})


def worst_backpressure(samples: Iterable[Backpressure]) -> str | None:
    """The worst level among samples, ``None`` when none was sampled.

    :param samples: one per vertex.
    """
    levels = [sample.level for sample in samples if sample.level is not None]
    return max(levels, key=BACKPRESSURE_LEVELS.index) if levels else None


def parse_watermarks(body: Sequence[Mapping[str, Any]]) -> dict[int, int | None]:
    """``{subtask: watermark ms or None}`` from a ``/watermarks`` answer (``None``: no watermark yet).

    :param body: the answer's list of ``{"id": "<subtask>.currentInputWatermark", "value": "<ms>"}``.
    """
    marks: dict[int, int | None] = {}
    for entry in body:
        subtask, _, _ = str(entry["id"]).partition(".")
        value = int(entry["value"])
        marks[int(subtask)] = None if value <= NO_WATERMARK else value
    return marks


def get_watermarks(job_id: str, vertex_id: str) -> Exchange[dict[int, int | None]]:
    """``GET /jobs/{job_id}/vertices/{vertex_id}/watermarks``: each subtask's current input watermark.

    :param job_id: the job.
    :param vertex_id: the vertex.
    """
    return parse_watermarks(_body((yield Request("GET", _vertex_path(job_id, vertex_id, "watermarks")))) or [])


@dataclass(frozen=True)
class CheckpointHealth:
    """What the checkpoint statistics say about a job.

    :param enabled: whether checkpointing is on.
    :param interval_ms: the configured interval.
    :param completed: checkpoints completed since the job (re)started from the JobManager's view.
    :param failed: checkpoints failed.
    :param in_progress: checkpoints in progress.
    :param last_completed_ms: when the latest completed checkpoint was triggered (epoch ms), ``None`` if none.
    :param age_ms: ``now - last_completed_ms``; without any completed checkpoint, the time since the job started.
    :param last_duration_ms: end-to-end duration of the latest completed checkpoint.
    :param durations_ms: end-to-end durations of the completed checkpoints in the history, oldest first.
    :param recent_failed: failed checkpoints in the history triggered within the window (the ``failed`` count
        never goes down; this one clears once checkpoints succeed again).
    """

    enabled: bool
    interval_ms: int | None
    completed: int
    failed: int
    in_progress: int
    last_completed_ms: int | None
    age_ms: int | None
    last_duration_ms: int | None
    durations_ms: tuple[int, ...] = field(default_factory=tuple)
    recent_failed: int = 0


def checkpoint_health(
    stats: Mapping[str, Any],
    config: Mapping[str, Any],
    now_ms: int,
    started_ms: int | None = None,
    window_ms: int = 600_000,
) -> CheckpointHealth:
    """Condense ``/checkpoints`` and ``/checkpoints/config`` answers.

    :param stats: the ``/jobs/{id}/checkpoints`` answer.
    :param config: the ``/jobs/{id}/checkpoints/config`` answer.
    :param now_ms: the current time, epoch ms.
    :param started_ms: when the job started (its ``start-time``), for the age before a first checkpoint.
    :param window_ms: how far back ``recent_failed`` counts.
    """
    interval = config.get("interval")
    enabled = interval is not None and int(interval) < CHECKPOINTING_DISABLED
    counts = stats.get("counts") or {}
    latest = (stats.get("latest") or {}).get("completed") or {}
    last_ms = int(latest["trigger_timestamp"]) if latest.get("trigger_timestamp") else None
    since = last_ms if last_ms is not None else started_ms
    durations = [
        int(entry["end_to_end_duration"])
        for entry in stats.get("history") or []
        if entry.get("status") == "COMPLETED" and entry.get("end_to_end_duration") is not None
    ]
    return CheckpointHealth(
        enabled=enabled,
        interval_ms=int(interval) if enabled and interval is not None else None,
        completed=int(counts.get("completed", 0)),
        failed=int(counts.get("failed", 0)),
        in_progress=int(counts.get("in_progress", 0)),
        last_completed_ms=last_ms,
        age_ms=None if since is None else max(0, now_ms - since),
        last_duration_ms=int(latest["end_to_end_duration"]) if latest.get("end_to_end_duration") is not None else None,
        durations_ms=tuple(reversed(durations)),  # the history lists the newest first
        recent_failed=sum(
            1
            for entry in stats.get("history") or []
            if entry.get("status") == "FAILED" and int(entry.get("trigger_timestamp") or 0) >= now_ms - window_ms
        ),
    )


def get_checkpoint_health(
    job_id: str, now_ms: int, started_ms: int | None = None, window_ms: int = 600_000
) -> Exchange[CheckpointHealth]:
    """Checkpoint statistics and configuration of a job, condensed by :func:`checkpoint_health`.

    :param job_id: the job.
    :param now_ms: the current time, epoch ms.
    :param started_ms: the job's start time, epoch ms.
    :param window_ms: how far back failed checkpoints count as recent.
    """
    stats = yield from rest.get_checkpoints(job_id)
    config = yield from rest.get_checkpoint_config(job_id)
    return checkpoint_health(stats, config, now_ms, started_ms, window_ms)


def restarts_since(exceptions: Mapping[str, Any], since_ms: int) -> int:
    """How many failures (each one restarted or failed the job) the exception history holds since ``since_ms``.

    :param exceptions: the ``/jobs/{id}/exceptions`` answer.
    :param since_ms: window start, epoch ms.
    """
    entries = (exceptions.get("exceptionHistory") or {}).get("entries") or []
    return sum(1 for entry in entries if int(entry.get("timestamp") or 0) >= since_ms)


@dataclass(frozen=True)
class JobSignals:
    """One look at a running job's health signals.

    :param job_id: the job.
    :param name: the job's name.
    :param state: the job's state.
    :param at_ms: when it was taken, epoch ms.
    :param pending_records: ``pendingRecords`` summed over the source vertices, ``None`` while not yet reported.
    :param backpressure: the worst backpressure level over the running vertices, ``None`` without sample.
    :param backpressure_ratio: the highest subtask backpressure ratio.
    :param watermark_delay_ms: ``at_ms`` minus the lowest watermark reported, ``None`` without watermarks.
    :param checkpoints: checkpoint health.
    :param restarts: failures in the window.
    :param window_ms: the window ``restarts`` and ``checkpoints.recent_failed`` count over.
    """

    job_id: str
    name: str
    state: str
    at_ms: int
    pending_records: float | None
    backpressure: str | None
    backpressure_ratio: float | None
    watermark_delay_ms: int | None
    checkpoints: CheckpointHealth
    restarts: int
    window_ms: int


def is_source_vertex(vertex: Mapping[str, Any]) -> bool:
    """Whether a job vertex starts with a source (its name begins ``Source:``).

    :param vertex: an entry of the job's ``vertices``.
    """
    return str(vertex.get("name", "")).startswith("Source")


@dataclass(frozen=True)
class VertexLoad:
    """What the running vertices of a job report: source lag, backpressure and the lowest watermark.

    :param pending_records: ``pendingRecords`` summed over the source vertices, ``None`` while not reported.
    :param backpressure: the worst level, ``None`` without sample.
    :param backpressure_ratio: the highest subtask ratio, ``None`` without sample.
    :param lowest_watermark_ms: the lowest watermark reported, ``None`` without any.
    """

    pending_records: float | None
    backpressure: str | None
    backpressure_ratio: float | None
    lowest_watermark_ms: int | None


def get_vertex_load(job_id: str, job: Mapping[str, Any] | None = None) -> Exchange[VertexLoad]:
    """Read :class:`VertexLoad` from each RUNNING vertex: backpressure and input watermarks, and for sources
    ``pendingRecords`` and their output watermark.

    :param job_id: the job.
    :param job: the job's details (``GET /jobs/{id}``) when already read.
    """
    if job is None:
        job = yield from rest.get_job(job_id)
    pending: float | None = None
    samples: list[Backpressure] = []
    marks: list[int] = []
    for vertex in [v for v in job.get("vertices") or [] if v.get("status") == "RUNNING"]:
        vertex_id = str(vertex["id"])
        marks += [mark for mark in (yield from get_watermarks(job_id, vertex_id)).values() if mark is not None]
        if is_source_vertex(vertex):
            available = yield from list_subtask_metric_names(job_id, vertex_id)
            names = resolve_metric_names(available, "pendingRecords") + resolve_metric_names(
                available, "currentOutputWatermark"
            )
            found = yield from get_subtask_metrics(job_id, vertex_id, names)
            lags = [value.sum for name, value in found.items() if name.endswith("pendingRecords")]
            if lags:
                pending = (pending or 0.0) + sum(lags)
            # A source vertex has no input watermark; its operators' output watermark is the one to watch.
            marks += [
                int(value.min)
                for name, value in found.items()
                if name.endswith("currentOutputWatermark") and value.min > NO_WATERMARK
            ]
        samples.append((yield from get_backpressure(job_id, vertex_id)))
    ratios = [sample.ratio for sample in samples if sample.ratio is not None]
    return VertexLoad(
        pending_records=pending,
        backpressure=worst_backpressure(samples),
        backpressure_ratio=max(ratios) if ratios else None,
        lowest_watermark_ms=min(marks) if marks else None,
    )


def get_job_signals(job_id: str, now_ms: int, window_ms: int = 600_000) -> Exchange[JobSignals]:
    """Collect :class:`JobSignals` of a job: its details, each vertex's backpressure and input watermarks, the
    sources' ``pendingRecords`` and output watermarks, checkpoint health and the exception history.

    :param job_id: the job.
    :param now_ms: the current time, epoch ms.
    :param window_ms: the window restarts and failed checkpoints are counted over.
    """
    job = yield from rest.get_job(job_id)
    load = yield from get_vertex_load(job_id, job)
    checkpoints = yield from get_checkpoint_health(job_id, now_ms, job.get("start-time"), window_ms)
    exceptions = yield from rest.get_exceptions(job_id)
    return JobSignals(
        job_id=job_id,
        name=str(job.get("name", "")),
        state=str(job.get("state", "")),
        at_ms=now_ms,
        pending_records=load.pending_records,
        backpressure=load.backpressure,
        backpressure_ratio=load.backpressure_ratio,
        watermark_delay_ms=None if load.lowest_watermark_ms is None else max(0, now_ms - load.lowest_watermark_ms),
        checkpoints=checkpoints,
        restarts=restarts_since(exceptions, now_ms - window_ms),
        window_ms=window_ms,
    )


@dataclass(frozen=True)
class HealthLimits:
    """Optional limits on a job's signals; ``None`` disables a limit.

    :param max_pending_records: source lag (``pendingRecords`` over all sources).
    :param max_checkpoint_age_s: seconds since the last completed checkpoint.
    :param checkpoint_age_intervals: the same limit as a multiple of the configured interval (used when
        ``max_checkpoint_age_s`` is not given).
    :param max_failed_checkpoints: failed checkpoints within the window.
    :param max_restarts: restarts within the window.
    :param max_backpressure: the worst acceptable level, ``ok`` or ``low``.
    :param max_watermark_delay_s: seconds the lowest watermark may trail the wall clock.
    """

    max_pending_records: float | None = None
    max_checkpoint_age_s: float | None = None
    checkpoint_age_intervals: float | None = None
    max_failed_checkpoints: int | None = None
    max_restarts: int | None = None
    max_backpressure: str | None = None
    max_watermark_delay_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_backpressure is not None and self.max_backpressure not in BACKPRESSURE_LEVELS[:2]:
            raise ValueError(f"max_backpressure must be 'ok' or 'low', got {self.max_backpressure!r}")
        for name in (
            "max_pending_records",
            "max_checkpoint_age_s",
            "checkpoint_age_intervals",
            "max_failed_checkpoints",
            "max_restarts",
            "max_watermark_delay_s",
        ):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class Breach:
    """A limit a job's signal is over.

    :param metric: ``source_lag``, ``checkpoint_age``, ``failed_checkpoints``, ``restarts``, ``backpressure``
        or ``watermark_delay``.
    :param threshold: the limit, as text with its unit.
    :param value: the observed value, as text with its unit.
    """

    metric: str
    threshold: str
    value: str

    def __str__(self) -> str:
        return f"{self.metric} {self.value} over the limit {self.threshold}"


METRICS = ("source_lag", "checkpoint_age", "failed_checkpoints", "restarts", "backpressure", "watermark_delay")
"""The signals limits apply to, in report order."""


def check_limits(signals: JobSignals, limits: HealthLimits) -> list[Breach]:
    """The limits ``signals`` breach (a signal not reported yet breaches nothing).

    :param signals: one look at the job.
    :param limits: the limits.
    """
    breaches: list[Breach] = []
    window = f"in {signals.window_ms // 1000} s"
    if limits.max_pending_records is not None and (signals.pending_records or 0) > limits.max_pending_records:
        breaches.append(
            Breach("source_lag", f"{limits.max_pending_records:g} records", f"{signals.pending_records:g} records")
        )
    checkpoints = signals.checkpoints
    age_limit_s = limits.max_checkpoint_age_s
    if age_limit_s is None and limits.checkpoint_age_intervals is not None and checkpoints.interval_ms:
        age_limit_s = limits.checkpoint_age_intervals * checkpoints.interval_ms / 1000
    if (
        checkpoints.enabled
        and age_limit_s is not None
        and checkpoints.age_ms is not None
        and checkpoints.age_ms / 1000 > age_limit_s
    ):
        breaches.append(Breach("checkpoint_age", f"{age_limit_s:g} s", f"{checkpoints.age_ms / 1000:.1f} s"))
    if limits.max_failed_checkpoints is not None and checkpoints.recent_failed > limits.max_failed_checkpoints:
        breaches.append(
            Breach(
                "failed_checkpoints",
                f"{limits.max_failed_checkpoints} {window}",
                f"{checkpoints.recent_failed} {window}",
            )
        )
    if limits.max_restarts is not None and signals.restarts > limits.max_restarts:
        breaches.append(Breach("restarts", f"{limits.max_restarts} {window}", f"{signals.restarts} {window}"))
    if (
        limits.max_backpressure is not None
        and signals.backpressure is not None
        and BACKPRESSURE_LEVELS.index(signals.backpressure) > BACKPRESSURE_LEVELS.index(limits.max_backpressure)
    ):
        ratio = f" (ratio {signals.backpressure_ratio:.2f})" if signals.backpressure_ratio is not None else ""
        breaches.append(Breach("backpressure", limits.max_backpressure, f"{signals.backpressure}{ratio}"))
    if (
        limits.max_watermark_delay_s is not None
        and signals.watermark_delay_ms is not None
        and signals.watermark_delay_ms / 1000 > limits.max_watermark_delay_s
    ):
        breaches.append(
            Breach(
                "watermark_delay", f"{limits.max_watermark_delay_s:g} s", f"{signals.watermark_delay_ms / 1000:.1f} s"
            )
        )
    return breaches
