"""Lesson 3 (backpressure and tuning) without a stack: the variants setting, one script per variant with its
options, the figures from an output topic (throughput on the backlog, latency on the tail), the judge and
the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flink_lessons.phase3.backpressure import VARIANTS, Params, judge, output_figures, plot, scripts
from flink_lessons.phase3.backpressure import topics as topic_roles
from flink_lessons.phase3.settings import BACKPRESSURE, VARIANT_NAMES, parse_names
from flink_lessons.settings import RUN_CONF, VariableError, resolve

pytestmark = pytest.mark.unit


def test_variants_setting_names_the_known_ones() -> None:
    assert tuple(VARIANTS) == VARIANT_NAMES
    assert parse_names("baseline, unchained", VARIANT_NAMES) == ["baseline", "unchained"]
    for bad in ("baseline,turbo", "", "baseline,baseline"):
        with pytest.raises(ValueError, match="distinct names among baseline"):
            parse_names(bad, VARIANT_NAMES)
    with pytest.raises(VariableError, match=r"variants \(from the run conf\)"):
        resolve(BACKPRESSURE, (RUN_CONF, {"variants": "fast"}), tag="0badcafe",
                connection_bootstrap=lambda conn_id: "127.0.0.1:9092")  # fmt: skip


def test_one_script_per_variant_with_its_options() -> None:
    params = Params(backlog_events=100, tail_events=10, variants=("baseline", "buffer_timeout_0", "parallelism_2"))
    names = topic_roles(params, "0badcafe")
    assert set(names) == {"input", "baseline", "buffer_timeout_0", "parallelism_2"}
    texts = scripts(params, names, "broker:9092", "0badcafe")
    assert "SET 'pipeline.name' = 'phase3_backpressure@baseline#0badcafe';" in texts[0]
    assert "'execution.buffer-timeout.interval' = '0 ms'" in texts[1] and "chaining.enabled' = 'false'" in texts[1]
    assert "'parallelism.default' = '2'" in texts[2]
    assert all("'scan.bounded.specific-offsets' = 'partition:0,offset:110'" in t for t in texts)


def _output(params: Params) -> list[tuple[bytes, int]]:
    """Backlog ids 0..99 appended 10 ms apart (100 events/s); tail ids 100..109 each 30 ms after its event."""
    rows = [(json.dumps({"order_id": i, "ts_ms": 0, "weight": 1}).encode(), 1000 + 10 * i) for i in range(100)]
    rows += [(json.dumps({"order_id": i, "ts_ms": 5000 + i}).encode(), 5030 + i) for i in range(100, 110)]
    return rows


def test_figures_judge_and_plot(tmp_path: Path) -> None:
    params = Params(backlog_events=100, tail_events=10, variants=("unchained", "buffer_timeout_0", "buffer_timeout_1s"))
    figures = output_figures(params, _output(params))
    assert figures == {"records": 110, "distinct": 110, "throughput": 100, "latency_p50_ms": 30, "latency_p99_ms": 30}
    later = {**figures, "latency_p50_ms": 500}
    # Idle most of the run (waiting for the tail), but back-pressured for 0.26 of 0.36 working: 0.72.
    shares = [{"task": "Source: orders", "records in": 110, "busy": 0.1, "backpressured": 0.26, "idle": 0.64},
              {"task": "Calc", "records in": 110, "busy": 0.42, "backpressured": 0.0, "idle": 0.58}]  # fmt: skip
    sweep = {"samples": [{"Source: orders": {"level": "low", "backpressured": 0.3, "busy": 0.1}},
                         {"Source: orders": {"level": "ok", "backpressured": 0.0, "busy": 0.2}}]}  # fmt: skip
    outputs = {"unchained": figures, "buffer_timeout_0": figures, "buffer_timeout_1s": later}
    report = judge(params, sweep, outputs, shares, None)
    assert report.ok, report.render()
    same = judge(params, sweep, {**outputs, "buffer_timeout_1s": figures}, shares, None)
    assert [c.name for c in same.failed()] == ["buffer timeout 1 s: latency p50 (ms)"]
    # The sampled level is a snapshot (every 10 s): shown in a note, not judged; the accumulated share is.
    assert "peak sample: low" in report.render()
    unsampled = judge(params, {"samples": []}, outputs, shares, None)
    assert unsampled.ok and "peak sample: not sampled" in unsampled.render()
    calc_waits = [shares[0], {**shares[1], "backpressured": 0.3}]
    assert [c.name for c in judge(params, sweep, outputs, calc_waits, None).failed()] == [
        "unchained: slow Calc's back-pressured share of time"]  # fmt: skip
    drawn = plot(report.tables["sweep (all variants ran at once, on the same machine)"], tmp_path / "sweep.png")
    assert drawn is not None and Path(drawn).stat().st_size > 10_000
