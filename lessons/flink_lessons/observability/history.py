"""The short history and the open incidents, in one JSON file under the stack's state.

``<state_dir>/history.json`` holds ``{"jobs": {job name: [point, ...]}, "incidents": IncidentBook JSON}``; each
run appends one point per watched job and keeps the newest ``history_points``. A job not seen for a whole
history's length is dropped. The file is replaced atomically; the DAG runs one at a time (``max_active_runs=1``),
so there is a single writer. Delete the file to start over.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATE_SUBDIR = "observability"


def state_dir(configured: str | None) -> Path:
    """Where history, incidents and reports live.

    :param configured: the ``state_dir`` setting; ``None``: ``observability/`` under the stack's state.
    """
    if configured:
        return Path(configured)
    stack = os.environ.get("FLINK_STACK_DIR") or str(Path(__file__).resolve().parents[3] / ".stack")
    return Path(stack).resolve() / "state" / STATE_SUBDIR


def load(directory: Path) -> dict[str, Any]:
    """The stored history (empty when there is none yet).

    :param directory: the state directory.
    """
    path = directory / "history.json"
    if not path.exists():
        return {"jobs": {}, "incidents": {}}
    data = json.loads(path.read_text())
    return {"jobs": data.get("jobs") or {}, "incidents": data.get("incidents") or {}}


def save(directory: Path, data: Mapping[str, Any]) -> Path:
    """Replace the stored history atomically.

    :param directory: the state directory.
    :param data: ``{"jobs": ..., "incidents": ...}``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "history.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(partial, path)
    return path


def append(
    jobs: dict[str, list[dict[str, Any]]], points: Mapping[str, dict[str, Any]], keep: int, now_ms: int, stale_ms: int
) -> dict[str, list[dict[str, Any]]]:
    """Add this run's points, keep the newest ``keep`` per job, drop jobs last seen before ``now_ms - stale_ms``.

    :param jobs: the stored ``{job name: points}``.
    :param points: ``{job name: point}`` of this run.
    :param keep: points kept per job.
    :param now_ms: the current time, epoch ms.
    :param stale_ms: how long a job may go unseen before its history is dropped.
    """
    merged = {name: list(series) for name, series in jobs.items()}
    for name, point in points.items():
        merged.setdefault(name, []).append(point)
    return {
        name: series[-keep:] for name, series in merged.items() if series and series[-1]["at_ms"] >= now_ms - stale_ms
    }
