"""Lesson 2 (consumer groups and offsets) without a stack: the settings' cross-checks, the exact record set
each start designates, how the read topic is split by job, the rendered SQL, and the judge naming what fails."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flink_lessons.phase3.offsets import (
    FIRST,
    RESTORED,
    Params,
    SourceRecord,
    expected_sets,
    id_ranges,
    judge,
    reads_by_job,
    scripts,
)
from flink_lessons.phase3.settings import OFFSETS, topic_names
from flink_lessons.settings import RUN_CONF, VariableError, resolve

pytestmark = pytest.mark.unit

BATCH = 20
T = 1_000_000


def _resolve(conf: dict[str, Any]) -> dict[str, Any]:
    settings = resolve(OFFSETS, ("Variable 'flink_phase3_offsets'", None), (RUN_CONF, conf), tag="0badcafe",
                       connection_bootstrap=lambda conn_id: "127.0.0.1:9092")  # fmt: skip
    return settings.to_json()["values"]


def test_settings_check_the_offsets_lie_inside_the_first_batch() -> None:
    params = Params.from_settings(_resolve({"batch_events": 800, "timeout": "30s"}))
    assert (params.batch_events, params.timeout, params.reset_offset) == (800, 30.0, 150)
    with pytest.raises(VariableError, match=r"reset_offset \(from the run conf\).*below batch_events / \(2 x "):
        _resolve({"batch_events": 400, "reset_offset": 100})
    with pytest.raises(VariableError, match=r"batch_events \(from the run conf\)"):
        _resolve({"batch_events": 5})


def _topic() -> list[SourceRecord]:
    """Three batches of 20 ids over two partitions: even ids on 0, odd on 1; B and C stamped at/after T."""
    offsets = {0: 0, 1: 0}
    rows = []
    for order_id in range(3 * BATCH):
        p = order_id % 2
        rows.append(SourceRecord(order_id, p, offsets[p], T - 1 if order_id < BATCH else T + order_id))
        offsets[p] += 1
    return rows


def test_expected_sets_follow_each_start() -> None:
    params = Params(batch_events=BATCH, partitions=2, specific_offset=5, reset_offset=8)
    sets = expected_sets(params, _topic(), T)
    assert sets["earliest"] == set(range(60)) and sets["latest"] == set()
    assert sets["timestamp"] == set(range(20, 60)) == sets["B and C (ids)"]
    assert sets["specific"] == set(range(10, 60)) and sets["group"] == set(range(16, 60))  # offset n holds 2n, 2n+1
    assert sets[FIRST] == set(range(40)) and sets[RESTORED] == set(range(40, 60))


def test_id_ranges_and_reads_by_job() -> None:
    assert id_ranges([3, 1, 2, 7, 9, 8]) == "1..3, 7..9" and id_ranges([]) == "-" and id_ranges([4]) == "4"
    assert id_ranges(range(0, 30, 2)).endswith("(15 ranges)")
    values = [json.dumps({"mode": m, "order_id": i}).encode() for m, i in
              [("stream", 0), ("stream", 1), ("stream", 2), ("earliest", 0), ("latest", 5)]]  # fmt: skip
    reads = reads_by_job(values, first_job_end=2)
    assert reads[FIRST] == [0, 1] and reads[RESTORED] == [2] and reads["earliest"] == [0] and reads["latest"] == [5]


def test_judge_holds_on_the_exact_reads_and_names_a_rereading_restore() -> None:
    params = Params(batch_events=BATCH, partitions=2, specific_offset=5, reset_offset=8)
    prepared = {"timestamp_ms": T}
    sets = expected_sets(params, _topic(), T)
    reads = {name: sorted(sets[name]) for name in ("earliest", "latest", "group", "timestamp", "specific", FIRST,
                                                   RESTORED)}  # fmt: skip
    ends = {"0": 30, "1": 30}
    drills = {"first": {"before": {}, "after": {"0": 20, "1": 20}, "end_offsets": {"0": 20, "1": 20},
                        "checkpoint_id": 1},
              "restored": {"before": {"0": 8, "1": 8}, "after": ends, "end_offsets": ends, "checkpoint_id": 2},
              "reset": {"0": 8, "1": 8}, "reset_again": {"0": 8, "1": 8}}  # fmt: skip
    assert judge(params, prepared, _topic(), reads, drills).ok
    rereading = {**reads, RESTORED: sorted(sets["group"])}  # what a restore that honoured the reset would read
    failed = [c.name for c in judge(params, prepared, _topic(), rereading, drills).failed()]
    assert failed == [f"{RESTORED}: order ids read vs expected", f"{RESTORED}: records read"]
    wrong = next(c for c in judge(params, prepared, _topic(), rereading, drills).checks if c.name == failed[0])
    assert wrong.measured == {"missing": "-", "unexpected": "16..39"}  # it re-read from the reset
    committed_early = {**drills, "first": {**drills["first"], "before": {"0": 5, "1": 5}}}
    assert [c.name for c in judge(params, prepared, _topic(), reads, committed_early).failed()] == [
        "committed offsets before any checkpoint"]  # fmt: skip


def test_scripts_one_streaming_source_and_a_bounded_source_per_mode() -> None:
    params = Params(topic_prefix="p3", partitions=2, specific_offset=5)
    texts = scripts(params, topic_names(OFFSETS.variable, "p3", "0badcafe"), "broker:9092", "0badcafe", T)
    stream, modes = texts["stream"], texts["modes"]
    assert "'execution.checkpointing.interval' = '1 h'" in stream and "checkpointing" not in modes
    assert "'properties.group.id' = 'p3-group-0badcafe'" in stream and "scan.bounded.mode" not in stream
    assert modes.count("'scan.bounded.mode' = 'latest-offset'") == 5 and modes.count("INSERT INTO records_read") == 5
    assert f"'scan.startup.timestamp-millis' = '{T}'" in modes
    assert "'scan.startup.specific-offsets' = 'partition:0,offset:5;partition:1,offset:5'" in modes
    assert "'p3-group-0badcafe'" in modes  # the group-offsets source reads the (reset) group of the streaming job
