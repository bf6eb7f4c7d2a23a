"""Phase 3 lessons without a stack: the settings (every bad key named with its source), the partitioning
lesson's expectations (the hot-subtask floor, the judge on measured figures), the report's text and JSON,
the rendered SQL, and the DAG importing without I/O."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import pytest
from flink_lessons.load.run import LoadSummary
from flink_lessons.phase3.partitioning import Params, hot_subtask_floor, judge, scripts
from flink_lessons.phase3.report import check, max_over_median
from flink_lessons.phase3.settings import PARTITIONING, topic_names
from flink_lessons.settings import RUN_CONF, VariableError, resolve

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def _resolve(conf: dict[str, Any]) -> dict[str, Any]:
    settings = resolve(PARTITIONING, ("Variable 'flink_phase3_partitioning'", None), (RUN_CONF, conf), tag="0badcafe",
                       connection_bootstrap=lambda conn_id: "127.0.0.1:9092")  # fmt: skip
    return settings.to_json()["values"]


def test_settings_name_every_bad_key_and_its_source() -> None:
    with pytest.raises(VariableError) as caught:
        _resolve({"parallelism": 1, "skew": "uniform", "events": 5, "mini_batch_latency": "soon"})
    text = str(caught.value)
    for key in ("parallelism (from the run conf)", "skew (from the run conf)", "events (from the run conf)",
                "mini_batch_latency (from the run conf)"):  # fmt: skip
        assert key in text
    with pytest.raises(VariableError, match=r"keys \(from the run conf\) vs parallelism .* at least 4x"):
        _resolve({"keys": 10, "parallelism": 4})
    with pytest.raises(VariableError, match="unknown key"):
        _resolve({"partition": 3})


def test_params_from_settings_and_topics() -> None:
    params = Params.from_settings(_resolve({"events": 20_000, "parallelism": 2, "mini_batch_latency": "2s"}))
    assert (params.events, params.parallelism, params.mini_batch_latency, params.skew) == (20_000, 2, "2 s", "zipf:2")
    assert topic_names(PARTITIONING.variable, "p3", "0badcafe") == {
        "uniform": "p3-uniform-0badcafe", "zipf": "p3-zipf-0badcafe", "nullkeys": "p3-nullkeys-0badcafe"}  # fmt: skip


@pytest.mark.parametrize(
    ("share", "parallelism", "expected"),
    # p=4, t=0.61: the rest (0.39) best fills the two middle subtasks (0.195 each): 0.61 / 0.195.
    # p=2: the median is the mean of both; p=3, t=0.9: the middle subtask gets all the rest (0.1).
    [(0.61, 4, 0.61 / 0.195), (0.5, 2, 1.0), (0.2, 4, 1.0), (0.9, 3, 9.0)],
)
def test_hot_subtask_floor(share: float, parallelism: int, expected: float) -> None:
    assert hot_subtask_floor(share, parallelism) == pytest.approx(expected)


def test_floor_is_the_least_over_every_placement() -> None:
    # Brute force over small placements: no assignment of the rest gives a lower max/median than the floor.
    import itertools

    t, p, step = 0.4, 3, 0.05
    rest = [i * step for i in range(round((1 - t) / step) + 1)]
    lowest = min(max_over_median([t, a, b]) or float("inf") for a, b in itertools.product(rest, rest)
                 if abs(a + b - (1 - t)) < 1e-9)  # fmt: skip
    assert hot_subtask_floor(t, p) == pytest.approx(lowest)


def _summary(role: str, per: dict[int, int], predicted: dict[int, int], hottest: int) -> dict[str, Any]:
    total = sum(per.values())
    return LoadSummary(topic=role, partitions=len(per), spec={"rate": None, "schema": "orders", "keys": 100,
                       "skew": "zipf:2", "seed": 1}, produced=total, failed=0, seconds=1.0, rate=1.0, acked_rate=1.0,
                       first_id=0, end_id=total, per_partition=per, keyed_predicted=predicted, null_keys=0,
                       distinct_keys=100, hottest={"key": "c1", "events": hottest, "share": hottest / total},
                       expected_hottest_share=0.6, errors=[]).to_json()  # fmt: skip


def _rows(*records: int) -> list[dict[str, Any]]:
    return [
        {"subtask": i, "records_in": n, "busy": 0.1, "backpressured": 0.0, "idle": 0.9} for i, n in enumerate(records)
    ]


def test_judge_holds_on_the_expected_shape_and_names_what_fails() -> None:
    params = Params(parallelism=4, partitions=4, events=1000, keys=100)
    even, hot = {0: 250, 1: 250, 2: 250, 3: 250}, {0: 700, 1: 100, 2: 100, 3: 100}
    prepared = {"loads": {"uniform": _summary("u", even, even, 20), "zipf": _summary("z", hot, hot, 610),
                          "nullkeys": _summary("n", {0: 300, 1: 200, 2: 250, 3: 250}, dict.fromkeys(even, 0),
                                               610)}}  # fmt: skip
    measured = {"aggregations": {"skewed/uniform": _rows(240, 260, 250, 250), "skewed/zipf": _rows(700, 100, 120, 80),
                                 "fixed/zipf": _rows(60, 55, 50, 58)},
                "source_records": {"skewed/uniform": 1000, "skewed/zipf": 1000, "fixed/zipf": 1000}}  # fmt: skip
    report = judge(params, prepared, measured)
    assert report.ok, report.render()
    text = report.render()
    assert "ALL EXPECTATIONS HOLD" in text and "records into each subtask" in text
    assert report.to_json()["ok"] is True

    measured["aggregations"]["fixed/zipf"] = _rows(400, 100, 100, 100)  # the fix did not spread the load
    measured["source_records"]["skewed/zipf"] = 999  # a lost event
    failed = judge(params, prepared, measured)
    names = [c.name for c in failed.failed()]
    assert names == ["two-phase: max/median records into the global aggregation",
                     "zipf:2 keys: events read by the job"]  # fmt: skip
    assert "2 EXPECTATION(S) FAILED" in failed.render()


def test_a_missing_measurement_fails_its_check() -> None:
    assert not check("x", None, ">=", 1, "why").ok
    assert check("x", [1, 2], "==", [1, 2], "why").ok


def test_scripts_render_one_statement_set_each_with_the_run_tag() -> None:
    params = Params(parallelism=2)
    topics = topic_names(PARTITIONING.variable, "p3", "0badcafe")
    texts = scripts(params, topics, "broker:9092", "0badcafe")
    assert "SET 'pipeline.name' = 'phase3_partitioning@skewed#0badcafe';" in texts["skewed"]
    assert "'table.optimizer.agg-phase-strategy' = 'ONE_PHASE'" in texts["skewed"]
    assert "'table.optimizer.agg-phase-strategy' = 'TWO_PHASE'" in texts["fixed"]
    assert "'table.exec.mini-batch.allow-latency' = '1 s'" in texts["fixed"]
    assert texts["skewed"].count("INSERT INTO") == 2 and texts["fixed"].count("INSERT INTO") == 1
    assert "'scan.bounded.mode' = 'latest-offset'" in texts["fixed"] and "p3-zipf-0badcafe" in texts["fixed"]


def _forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("I/O at DAG parse time")


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "dags").glob("phase3_*.py")))
def test_phase3_dags_parse_without_io(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import BaseHook, Variable

    monkeypatch.setattr(Variable, "get", _forbidden)
    monkeypatch.setattr(BaseHook, "get_connection", _forbidden)
    monkeypatch.setattr(socket, "create_connection", _forbidden)
    spec = importlib.util.spec_from_file_location(f"dag_{name}", ROOT / "dags" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dag.dag_id.startswith("flink_")
    first = [task for task in module.dag.tasks if not task.upstream_task_ids]
    assert [task.task_id for task in first] in (["resolve_settings"], ["report"])


def test_checklist_document_is_generated_from_the_definition() -> None:
    from flink_lessons.phase3.checklist import ITEMS, markdown

    assert (ROOT / "docs" / "operations-checklist.md").read_text() == markdown()
    assert len({item.key for item in ITEMS}) == len(ITEMS)
    assert all(item.ui and item.command and item.healthy and item.bad and item.lesson for item in ITEMS)


def test_checklist_verdicts_on_job_signals() -> None:
    from flink_lessons.phase3.checklist import evaluate

    from airflow_flink_provider.protocol.metrics import CheckpointHealth, JobSignals

    def signals(**changes: Any) -> JobSignals:
        health = CheckpointHealth(enabled=True, interval_ms=10_000, completed=5, failed=0, in_progress=0,
                                  last_completed_ms=0, age_ms=changes.pop("age_ms", 5_000),
                                  last_duration_ms=changes.pop("duration_ms", 800), recent_failed=0)  # fmt: skip
        base = {"job_id": "j", "name": "n", "state": "RUNNING", "at_ms": 0, "pending_records": 10.0,
                "backpressure": "ok", "backpressure_ratio": 0.0, "watermark_delay_ms": 2_000, "checkpoints": health,
                "restarts": 0, "window_ms": 600_000}  # fmt: skip
        return JobSignals(**{**base, **changes})

    healthy = {row["item"]: row["verdict"] for row in evaluate(signals(), {"group_lag": 5})}
    assert set(healthy.values()) == {"ok"}
    sick = {row["item"]: (row["value"], row["verdict"]) for row in evaluate(
        signals(state="RESTARTING", restarts=3, backpressure="high", pending_records=2e6, age_ms=90_000,
                duration_ms=9_000), {"group_lag": 50_000})}  # fmt: skip
    assert sick["state"] == ("RESTARTING", "warn")
    assert sick["restarts"] == (3, "bad")
    assert sick["backpressure"] == ("high", "bad")
    assert sick["pending_records"][1] == "bad"
    assert sick["checkpoint_age"] == (9.0, "bad")
    assert sick["checkpoint_duration"] == (0.9, "warn")
    assert sick["group_lag"] == (50_000, "warn")
