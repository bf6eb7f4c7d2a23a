"""The per-job report (a row of values and verdicts) and the PNG plot of lag and checkpoint duration."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COLUMNS = ("job", "verdict", "pending records", "broker lag", "checkpoint age / interval", "failed checkpoints",
           "checkpoint duration (trend)", "restarts", "backpressure", "watermark delay")  # fmt: skip


def _number(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.0f}{unit}"


def _delay(ms: float | None) -> str:
    """A watermark delay people can read: seconds, or hours and days when a replayed or seeded dataset's event
    time lies far behind the wall clock."""
    if ms is None:
        return "n/a"
    seconds = ms / 1000
    if seconds < 3600:
        return f"{seconds:.1f} s"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def _trend(durations: Sequence[int]) -> str:
    if not durations:
        return "n/a"
    last = durations[-1]
    if len(durations) < 3:
        return f"{last} ms"
    median = statistics.median(durations[:-1])
    return f"{last} ms (x{last / median:.1f} of median)" if median else f"{last} ms"


def row(name: str, point: Mapping[str, Any], breached: Sequence[str]) -> dict[str, str]:
    """One report row.

    :param name: the job's name.
    :param point: this run's history point of the job.
    :param breached: the metrics over their limit.
    """
    interval = point.get("checkpoint_interval_ms")
    age = point.get("checkpoint_age_ms")
    age_text = (
        "checkpointing off" if interval is None else f"{_number(age and age / 1000, ' s')} / {interval / 1000:g} s"
    )
    ratio = point.get("backpressure_ratio")
    values = (
        name,
        "OK" if not breached else "ALERT: " + ", ".join(breached),
        _number(point.get("pending_records")),
        _number(point.get("broker_lag")),
        age_text,
        f"{point.get('failed_checkpoints', 0)} recent, {point.get('failed_checkpoints_total', 0)} total",
        _trend(point.get("checkpoint_durations_ms") or []),
        str(point.get("restarts", 0)),
        "n/a" if point.get("backpressure") is None else f"{point['backpressure']} ({ratio:.2f})",
        _delay(point.get("watermark_delay_ms")),
    )
    return dict(zip(COLUMNS, values, strict=True))


def markdown(rows: Sequence[Mapping[str, str]], title: str) -> str:
    """The rows as a Markdown table under a title.

    :param rows: report rows.
    :param title: the heading.
    """
    lines = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r[c] for c in COLUMNS) + " |" for r in rows]
    if not rows:
        lines.append("\n(no running job matched)")
    return "\n".join(lines) + "\n"


LAG_SERIES = (("pending_records", "pendingRecords", "o"), ("broker_lag", "broker group lag", "x"))
"""The lag lines a job's plot draws when its history has them: history key, legend label, marker."""


def plot(history: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """Lag (pendingRecords and broker lag) and checkpoint duration over the history, one column per job.

    :param history: ``{job name: points}``.
    :param path: the PNG to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime, timedelta

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    names = sorted(history) or ["(no job)"]
    figure, axes = plt.subplots(2, len(names), figsize=(5 * len(names), 6), squeeze=False, sharex="col")
    for column, name in enumerate(names):
        points = history.get(name) or []
        times = [datetime.fromtimestamp(p["at_ms"] / 1000, tz=UTC) for p in points]
        lag, duration = axes[0][column], axes[1][column]
        lag.set_title(name[:60], fontsize=9)
        series = [(key, label, marker) for key, label, marker in LAG_SERIES
                  if any(p.get(key) is not None for p in points)]  # fmt: skip
        for key, label, marker in series:
            lag.plot(times, [p.get(key) for p in points], marker=marker, label=label)
        lag.set_ylabel("records behind")
        if series:
            lag.legend(fontsize=7)
        else:  # e.g. a datagen source: no pendingRecords metric, no consumer group
            lag.text(0.5, 0.5, "no lag metric\n(the source reports no pendingRecords\nand no consumer group is set)",
                     ha="center", va="center", fontsize=8, color="grey", transform=lag.transAxes)  # fmt: skip
            lag.set_yticks([])
        duration.plot(times, [p.get("checkpoint_duration_ms") for p in points], marker="o", color="tab:green")
        duration.set_ylabel("last checkpoint duration (ms)")
        duration.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))
        duration.tick_params(axis="x", labelrotation=30, labelsize=7)
        if len(times) == 1:  # one point: a minute around it, not years
            duration.set_xlim(times[0] - timedelta(minutes=1), times[0] + timedelta(minutes=1))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
