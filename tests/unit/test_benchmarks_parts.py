"""Pure parts of the individual benchmarks: events, tool-output parsers, call profiles, sweep analysis,
recovery accounting and the job-running rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.env import java_opts_missing, job_is_running
from benchmarks.events import EventFactory, load_templates, order_id_of, passes_filter
from benchmarks.httprec import Call, group_calls, normalize_path
from benchmarks.kafkatools import parse_consumer_performance, parse_producer_performance
from benchmarks.recovery import (
    Timeline,
    account,
    drop_dead_pids,
    ident_of,
    new_checkpoint,
    read_pids,
    wait_for_ids,
)
from benchmarks.throughput import SweepStep, analyse_step, render_job, saturation

pytestmark = pytest.mark.unit

# ---------------------------------------------------------------------------------------------- events

TEMPLATES = [
    {"order_id": 1, "customer": "alice", "amount": 12.5, "currency": "EUR", "ts_ms": 1},
    {"order_id": 2, "customer": "bob", "amount": 0.0, "currency": "USD", "ts_ms": 2},
    {"order_id": 3, "customer": "carol", "amount": -5.0, "currency": "EUR", "ts_ms": 3},
]


def test_events_are_the_templates_with_new_ids_and_times() -> None:
    factory = EventFactory(TEMPLATES)
    event = json.loads(factory.value(6, 1_700_000_000_123))
    assert event == {"order_id": 6, "customer": "alice", "amount": 12.5, "currency": "EUR", "ts_ms": 1_700_000_000_123}
    assert json.loads(factory.value(7, 5))["customer"] == "bob"  # ids cycle through the templates
    assert [json.loads(line)["order_id"] for line in factory.lines(3, first=10)] == [10, 11, 12]


def test_filter_mirrors_the_phase0_where_clause() -> None:
    assert [passes_filter(t) for t in TEMPLATES] == [True, False, False]
    assert passes_filter({"amount": "12"}) is False and passes_filter({"amount": True}) is False
    factory = EventFactory(TEMPLATES)
    assert [factory.passes(i) for i in range(6)] == [True, False, False, True, False, False]  # id % 3 == 0: alice
    assert factory.count_passing(0, 9) == 3


def test_templates_come_from_the_fixture_without_malformed_lines(tmp_path: Path) -> None:
    fixture = tmp_path / "input.jsonl"
    fixture.write_text(
        '{"order_id": 1, "amount": 2.5}\nnot json\n[1, 2]\n{"no_id": true}\n{"order_id": 2, "amount": 0}\n'
    )
    assert load_templates(fixture) == [{"order_id": 1, "amount": 2.5}, {"order_id": 2, "amount": 0}]
    assert load_templates(tmp_path / "missing.jsonl")  # falls back to built-in shapes


def test_order_id_is_read_without_parsing_json() -> None:
    assert order_id_of(b'{"order_id":42,"customer":"X"}') == 42
    assert order_id_of(b'{"customer":"X", "order_id" : 7}') == 7
    assert order_id_of(b'{"customer":"X"}') is None


# ---------------------------------------------------------------------------------------------- Kafka tools

PRODUCER_OUTPUT = """\
249001 records sent, 49790.2 records/sec (4.72 MB/sec), 310.5 ms avg latency, 612.0 ms max latency.
500000 records sent, 52631.6 records/sec (4.99 MB/sec), 290.75 ms avg latency, 640.00 ms max latency, 270 ms 50th, 520 ms 95th, 600 ms 99th, 630 ms 99.9th.
"""  # noqa: E501 - the tool's real line

CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-27 13:00:00:000, 2026-11-27 13:00:04:000, 47.6837, 11.9209, 500000, 125000.0000, 3000, 1000, 47.6837, 500000.0000
"""  # noqa: E501 - the tool's real lines


def test_producer_performance_summary_is_the_last_line() -> None:
    stats = parse_producer_performance(PRODUCER_OUTPUT)
    assert stats == {
        "records": 500000.0,
        "records_per_s": 52631.6,
        "mb_per_s": 4.99,
        "avg_latency_ms": 290.75,
        "max_latency_ms": 640.0,
    }
    with pytest.raises(ValueError, match="no ProducerPerformance summary"):
        parse_producer_performance("Exception in thread main")


def test_consumer_performance_columns_by_header() -> None:
    stats = parse_consumer_performance("WARN something\n" + CONSUMER_OUTPUT)
    assert stats["nMsg.sec"] == 125000.0 and stats["fetch.nMsg.sec"] == 500000.0
    assert stats["data.consumed.in.nMsg"] == 500000.0 and "start.time" not in stats
    with pytest.raises(ValueError, match="no ConsumerPerformance stats"):
        parse_consumer_performance("")


# ---------------------------------------------------------------------------------------------- HTTP profile


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("/jobs/0123456789abcdef0123456789abcdef", "/jobs/{id}"),
        ("/jobs/0123456789abcdef0123456789abcdef/checkpoints?x=1", "/jobs/{id}/checkpoints"),
        ("/jars/9f1c2e3d-1111-2222-3333-444455556666_flink-python-2.1.3.jar/run", "/jars/{uuid}/run"),
        (
            "/v4/sessions/9f1c2e3d-1111-2222-3333-444455556666/operations/x/result/12",
            "/v4/sessions/{uuid}/operations/x/result/{n}",
        ),
        ("/overview", "/overview"),
    ],
)
def test_paths_group_by_operation(path: str, normalized: str) -> None:
    assert normalize_path(path) == normalized


def test_calls_are_grouped_slowest_first() -> None:
    calls = [
        Call("GET", "/jobs/{id}", 200, 0.01),
        Call("POST", "/jars/{uuid}/run", 200, 3.0),
        Call("GET", "/jobs/{id}", 404, 0.03),
        Call("GET", "/jobs/{id}", 200, 0.02),
    ]
    rows = group_calls(calls)
    assert [row["call"] for row in rows] == ["POST /jars/{uuid}/run", "GET /jobs/{id}"]
    assert rows[1] == {"call": "GET /jobs/{id}", "count": 3, "total_s": 0.06, "median_s": 0.02, "statuses": [200, 404]}


# ---------------------------------------------------------------------------------------------- running rule


def _vertex(parallelism: int, **tasks: int) -> dict[str, object]:
    return {"name": "v", "parallelism": parallelism, "status": "RUNNING", "tasks": tasks}


@pytest.mark.parametrize(
    ("job", "running"),
    [
        (None, False),
        ({"state": "CREATED", "vertices": []}, False),
        ({"state": "RUNNING", "vertices": [_vertex(2, RUNNING=2)]}, True),
        ({"state": "RUNNING", "vertices": [_vertex(2, RUNNING=1, SCHEDULED=1)]}, False),
        ({"state": "RUNNING", "vertices": [_vertex(1, FINISHED=1), _vertex(1, RUNNING=1)]}, True),
        ({"state": "RUNNING", "vertices": [{"status": "DEPLOYING"}]}, False),
        ({"state": "RUNNING", "vertices": [{"status": "RUNNING"}]}, True),
        ({"state": "RUNNING", "tasks": {"total": 3, "running": 2, "finished": 1, "scheduled": 0}}, True),
        ({"state": "RUNNING", "tasks": {"total": 3, "running": 2, "finished": 0, "deploying": 1}}, False),
        ({"state": "RUNNING", "tasks": {"total": 0, "running": 0}}, False),
    ],
)
def test_a_job_runs_when_all_its_subtasks_run(job: dict[str, object] | None, running: bool) -> None:
    assert job_is_running(job) is running


def test_java_opts_detection_reads_flat_and_nested_keys(tmp_path: Path) -> None:
    conf = tmp_path / "config.yaml"
    conf.write_text('rest.port: 8081\nenv.java.opts.all: "--add-opens=java.base/java.util=ALL-UNNAMED"\n')
    assert java_opts_missing(conf) is False
    conf.write_text("env:\n  java:\n    opts:\n      all: --add-opens=java.base/java.util=ALL-UNNAMED\n")
    assert java_opts_missing(conf) is False
    conf.write_text("rest.port: 8081\n")
    assert java_opts_missing(conf) is True
    assert java_opts_missing(tmp_path / "absent.yaml") is False


# ---------------------------------------------------------------------------------------------- throughput


def test_phase0_job_renders_with_sink_options_and_settings() -> None:
    sql = render_job(
        job_name="bench-x",
        input_topic="in-t",
        output_topic="out-t",
        extra_settings={"execution.checkpointing.interval": "2s"},
        sink_options={"sink.delivery-guarantee": "exactly-once"},
    )
    assert "SET 'pipeline.name' = 'bench-x';" in sql
    assert "SET 'execution.checkpointing.interval' = '2s';" in sql
    assert "'topic' = 'in-t'" in sql and "'topic' = 'out-t'" in sql
    assert "'sink.delivery-guarantee' = 'exactly-once'," in sql
    assert "WHERE amount > 0" in sql


def _passes(order_id: int) -> bool:
    return order_id % 2 == 0  # half the events pass


def test_step_analysis_throughput_and_latency() -> None:
    # 10 events (ids 100..109) over 1 s, produced in two batches at t=0 and t=500 ms; 5 pass the filter.
    batches = [(0, -1000), (100, 10_000), (105, 10_500)]
    out_ids = [100, 102, 104, 106, 108, 104]  # 104 twice: counted once
    out_times = [10_050, 10_060, 10_100, 10_600, 11_200, 10_150]  # 108 arrives after the step ended
    step = analyse_step(
        target_rate=10,
        first_id=100,
        end_id=110,
        start_ms=10_000,
        end_ms=11_000,
        batches=batches,
        out_ids=out_ids,
        out_times=out_times,
        passes=_passes,
        drained=True,
        drain_s=0.2,
    )
    assert step.produced == 10 and step.expected_outputs == 5
    assert step.input_rate == pytest.approx(10.0)
    assert step.outputs_in_step == 4 and step.outputs_total == 5
    assert step.throughput == pytest.approx(4 / 0.5 / 1.0)  # 4 outputs at a 50 % pass rate, over 1 s
    # latencies: 50, 60, 100 (batch at 10 000), 100, 700 (batch at 10 500)
    assert step.latency_p50_ms == pytest.approx(100)
    assert step.latency_max_ms == pytest.approx(700)


def test_step_analysis_ignores_outputs_of_other_steps() -> None:
    step = analyse_step(
        target_rate=1, first_id=10, end_id=12, start_ms=0, end_ms=1000, batches=[(10, 0)],
        out_ids=[2, 4, 10], out_times=[5, 5, 30], passes=_passes, drained=True, drain_s=0,
    )  # fmt: skip
    assert step.outputs_in_step == 1 and step.latency_max_ms == 30


def _step(
    rate: float, throughput: float, level: str = "ok", drained: bool = True, p50: float | None = None
) -> SweepStep:
    return SweepStep(rate, rate, throughput, 0, 0, 0, 0, p50, None, None, drained, 0.0, {"Source": {"level": level}})


def _knee(steps: list[SweepStep]) -> tuple[float | None, float | None]:
    kept_up_to, saturated = saturation(steps)
    return kept_up_to, (saturated.target_rate if saturated else None)


def test_saturation_is_the_first_step_the_job_cannot_follow() -> None:
    assert _knee([_step(1000, 1000), _step(5000, 4990)]) == (5000, None)
    assert _knee([_step(1000, 1000), _step(20000, 20000, "high")]) == (1000, 20000)
    assert _knee([_step(1000, 1000), _step(5000, 4000), _step(9000, 9000, drained=False)]) == (1000, 5000)
    assert _knee([_step(1000, 1000), _step(5000, 5000, drained=False)]) == (1000, 5000)
    assert _knee([_step(1000, 500)]) == (None, 1000)


def test_saturation_shows_as_queueing_latency() -> None:
    steps = [_step(1000, 1000, p50=10), _step(80000, 80000, p50=45), _step(160000, 160000, p50=220)]
    assert _knee(steps) == (80000, 160000)  # 45 ms is not queueing: under 100 ms
    assert _knee([_step(1000, 1000, p50=40), _step(9000, 9000, p50=150)]) == (9000, None)  # < 5x


def test_a_saturated_box_may_achieve_less_input_than_the_step_before() -> None:
    asked_240k = SweepStep(240000, 127000, 127000, 0, 0, 0, 0, 1268, None, None, True, 0.0, {})
    steps = [_step(1000, 1000, p50=9), _step(160000, 158000, p50=57), asked_240k]
    assert _knee(steps) == (160000, 240000)


# ---------------------------------------------------------------------------------------------- recovery


def test_pid_file_ident_and_dead_pids(tmp_path: Path) -> None:
    assert ident_of(Path("flink--taskexecutor.pid")) == ""
    assert ident_of(Path("flink-root-taskexecutor.pid")) == "root"
    with pytest.raises(ValueError, match="not a TaskManager PID file"):
        ident_of(Path("flink-root-standalonesession.pid"))
    pid_file = tmp_path / "flink-x-taskexecutor.pid"
    pid_file.write_text("111\n222\n333\n")
    assert read_pids(pid_file) == [111, 222, 333]
    assert drop_dead_pids(pid_file, lambda pid: pid != 222) == [111, 333]
    assert pid_file.read_text() == "111\n333\n"
    assert drop_dead_pids(pid_file, lambda pid: False) == []
    assert not pid_file.exists() and read_pids(pid_file) == []


def test_new_checkpoint_must_be_newer_and_triggered_after_the_kill() -> None:
    checkpoints = {
        "latest": {"completed": {"id": 9, "status": "COMPLETED", "trigger_timestamp": 5_000}},
        "history": [
            {"id": 9, "status": "COMPLETED", "trigger_timestamp": 5_000},
            {"id": 8, "status": "FAILED", "trigger_timestamp": 4_500},
            {"id": 7, "status": "COMPLETED", "trigger_timestamp": 3_900},
            {"id": 6, "status": "COMPLETED", "trigger_timestamp": 2_000},
        ],
    }
    assert new_checkpoint(checkpoints, after_id=6, after_ms=3_000)["id"] == 7  # type: ignore[index]
    assert new_checkpoint(checkpoints, after_id=7, after_ms=3_000)["id"] == 9  # type: ignore[index]
    assert new_checkpoint(checkpoints, after_id=9, after_ms=3_000) is None
    assert new_checkpoint(checkpoints, after_id=5, after_ms=6_000) is None  # all triggered before the kill
    assert new_checkpoint({}, after_id=0, after_ms=0) is None


def test_accounting_of_an_exactly_once_sink() -> None:
    delivered = [0, 1, 2, 3, 4, 5, 6, 7]  # even ids pass: 0, 2, 4, 6 expected
    assert account(delivered, [0, 2, 4, 6], _passes) == {
        "expected": 4, "seen": 4, "unique": 4, "lost": 0, "duplicated": 0, "unexpected": 0,
    }  # fmt: skip
    assert account(delivered, [0, 2, 2, 6, 8], _passes) == {
        "expected": 4, "seen": 5, "unique": 4, "lost": 1, "duplicated": 1, "unexpected": 1,
    }  # fmt: skip


def test_timeline_keeps_the_first_time_of_each_event() -> None:
    timeline = Timeline()
    timeline.kill = 100.0
    timeline.mark("running_again", 112.5)
    timeline.mark("failure_noticed", 101.25)
    timeline.mark("failure_noticed", 150.0)
    assert timeline.since_kill() == {"failure_noticed": 1.25, "running_again": 12.5}
    assert list(timeline.since_kill()) == ["failure_noticed", "running_again"]


def test_sweep_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.plot import plot_sweep

    steps = [_step(1000, 1000), _step(20000, 15000, drained=False)]
    path = plot_sweep(steps, tmp_path / "out" / "sweep.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_waiting_for_ids_ignores_duplicates_and_gives_up_on_a_stall() -> None:
    assert wait_for_ids([1, 1, 2, 3, 9], {1, 2, 3}, stall=1, timeout=5) is True
    # 3 never comes; the duplicates of 1 do not make up for it
    assert wait_for_ids([1, 1, 1, 2], {1, 2, 3}, stall=0.3, timeout=5) is False
