"""Lesson 4's checkpoint sweep and report, their pure parts: the scripts of each setting, the figures read from
a checkpoint-statistics answer captured from the local Flink 2.1.3 stack (a RocksDB incremental keyed aggregation,
``data/flink_rest/checkpoint_stats_rocksdb.json``), the relations judged, and the settings' validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.phase3.checkpoints import SETTINGS, SweepParams, measure, report, scripts
from flink_lessons.phase3.settings import CHECKPOINT_SETTING_NAMES, CHECKPOINTS
from flink_lessons.settings import RUN_CONF, VariableError, resolve

pytestmark = pytest.mark.unit

CAPTURED = json.loads((Path(__file__).parent / "data" / "flink_rest" / "checkpoint_stats_rocksdb.json").read_text())


class CapturedFlink:
    """The REST hook's answers for the captured job (one vertex, its latest checkpoint's subtask details)."""

    def get_checkpoints(self, job_id: str) -> dict[str, Any]:
        return dict(CAPTURED["checkpoints"])

    def get_job(self, job_id: str) -> dict[str, Any]:
        return {"vertices": [{"id": "bc764cd8ddf7a0cff126f51c16239658"}]}

    def get_checkpoint_subtasks(self, job_id: str, checkpoint_id: int, vertex_id: str) -> dict[str, Any]:
        assert checkpoint_id == CAPTURED["checkpoints"]["latest"]["completed"]["id"]
        return dict(CAPTURED["subtasks"])


def test_measure_reads_counts_durations_sizes_and_gaps_from_the_captured_answer() -> None:
    figures = measure(CapturedFlink(), CAPTURED["job"])  # type: ignore[arg-type]
    assert (figures["completed"], figures["failed"]) == (5, 4)
    assert figures["duration_p50_ms"] == 121.0 and figures["duration_max_ms"] == 989.0
    assert figures["checkpointed_kb"] < figures["state_kb"]  # incremental: 55 937 B of 92 084 B on average
    assert figures["persisted_in_flight_kb"] == 0 and figures["alignment_max_ms"] == 0
    assert figures["start_delay_max_ms"] == 18.0
    assert figures["min_pause_seen_s"] is not None and figures["min_pause_seen_s"] < 1


def test_each_setting_renders_its_options_and_only_backpressure_has_the_slow_step() -> None:
    texts = scripts(SweepParams(), "0badcafe")
    assert list(texts) == list(SETTINGS) == list(CHECKPOINT_SETTING_NAMES)
    assert "'execution.checkpointing.unaligned.enabled' = 'true'" in texts["unaligned_backpressure"]
    assert "'state.backend.type' = 'rocksdb'" in texts["rocksdb_incremental"]
    assert "'state.backend.type' = 'hashmap'" in texts["hashmap_1s"]
    assert "REGEXP_REPLACE" in texts["aligned_backpressure"] and "REGEXP_REPLACE" not in texts["hashmap_1s"]
    assert "'rows-per-second' = '5000'" in texts["aligned_backpressure"]


def _figures(**changes: Any) -> dict[str, Any]:
    base = {"completed": 5, "failed": 0, "duration_p50_ms": 100.0, "duration_max_ms": 200.0, "checkpointed_kb": 10.0,
            "state_kb": 10.0, "persisted_in_flight_kb": 0.0, "min_pause_seen_s": 0.1, "alignment_max_ms": 0.0,
            "start_delay_max_ms": 5.0}  # fmt: skip
    return {**base, **changes}


def test_the_report_judges_the_sweep_and_the_drill() -> None:
    figures = {
        "hashmap_1s": _figures(), "interval_5s": _figures(), "min_pause_3s": _figures(min_pause_seen_s=3.02),
        "rocksdb_incremental": _figures(checkpointed_kb=4.0), "aligned_backpressure": _figures(duration_p50_ms=9000.0),
        "unaligned_backpressure": _figures(duration_p50_ms=900.0, persisted_in_flight_kb=300.0),
        "timeout_1s_backpressure": _figures(completed=0, failed=20),
    }  # fmt: skip
    drill = {"heartbeats": {"heartbeat.interval": "1000"}, "counts": {"expected": 9, "lost": 0, "duplicated": 0},
             "kills_asked": 3,
             "kills": [{"taskmanager": f"tm{n}", "pid": n, "moments": {"job_rescheduled": 3.1, "running_again": 12.0}}
                       for n in range(3)]}  # fmt: skip
    good = report(SweepParams(), figures, drill)
    assert good.ok, good.render()
    assert [row["kill"] for row in good.tables["failure drill: seconds from each TaskManager kill"]] == [1, 2, 3]
    slow = {**drill, "kills": [*drill["kills"][:2], {**drill["kills"][2], "moments": {"job_rescheduled": 22.0}}]}
    lossy = {**drill, "counts": {"expected": 9, "lost": 1, "duplicated": 2}}
    full = {**figures, "rocksdb_incremental": _figures()}
    short = {**drill, "kills_asked": 4}
    assert [c.name for c in report(SweepParams(), figures, short).failed()] == [
        "drill: TaskManager kills the job recovered from"]  # fmt: skip
    assert [c.name for c in report(SweepParams(), figures, slow).failed()] == ["drill: slowest kill-to-rescheduled (s)"]
    assert [c.name for c in report(SweepParams(), figures, lossy).failed()] == [
        "drill: events lost", "drill: events duplicated"]  # fmt: skip
    assert [c.name for c in report(SweepParams(), full, drill).failed()] == [
        "rocksdb_incremental: checkpointed / full state size"]  # fmt: skip


def test_settings_refuse_the_shared_stack_and_unknown_settings() -> None:
    for bad, key in (({"stack_dir": ".stack"}, "stack_dir"), ({"settings": "hashmap_1s,turbo"}, "settings")):
        with pytest.raises(VariableError, match=key):
            resolve(CHECKPOINTS, (RUN_CONF, bad), tag="0badcafe", connection_bootstrap=lambda conn_id: "127.0.0.1:9092")
    values = resolve(CHECKPOINTS, (RUN_CONF, {"settings": "rocksdb_incremental"}), tag="0badcafe",
                     connection_bootstrap=lambda conn_id: "127.0.0.1:9092").to_json()["values"]  # fmt: skip
    assert SweepParams.from_settings(values).settings == ("rocksdb_incremental",)
