"""The benchmarks' pure parts: statistics, targets, interleaved timing, the table and the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.core import (
    BenchResult,
    Sample,
    Target,
    build_report,
    combine_repeats,
    format_value,
    interleave,
    median,
    percentile,
    ratio,
    record_methods,
    render_table,
    rotation,
    summarize,
    write_json,
)

pytestmark = pytest.mark.unit


def test_median_of_odd_and_even_counts() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        median([])


@pytest.mark.parametrize(("pct", "expected"), [(0, 10), (50, 30), (100, 50), (25, 20), (90, 46)])
def test_percentile_interpolates_between_ranks(pct: float, expected: float) -> None:
    assert percentile([50, 10, 40, 20, 30], pct) == pytest.approx(expected)


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1], 101)


def test_ratio_handles_missing_and_zero() -> None:
    assert ratio(10, 4) == 2.5
    assert ratio(None, 4) is None
    assert ratio(4, None) is None
    assert ratio(4, 0) is None


def test_summarize_has_stdev_only_for_several_samples() -> None:
    assert summarize([2.0]) == {"n": 1, "median": 2.0, "min": 2.0, "max": 2.0}
    many = summarize([1.0, 2.0, 3.0])
    assert many["median"] == 2.0 and many["stdev"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("op", "threshold", "value", "verdict"),
    [
        (">=", 5, 5.0, "met"),
        (">=", 5, 4.99, "missed"),
        ("<=", 1.2, 1.2, "met"),
        ("<=", 1.2, 1.21, "missed"),
        (">=", 5, None, "n/a"),
        (">=", 5, math.nan, "n/a"),
    ],
)
def test_target_verdicts(op: str, threshold: float, value: float | None, verdict: str) -> None:
    assert Target("x", op, threshold, "text").verdict(value) == verdict  # type: ignore[arg-type]


def test_result_verdicts_ignore_non_numeric_figures() -> None:
    result = BenchResult("b", "t", targets=[Target("speed", ">=", 2, "fast"), Target("name", ">=", 1, "?")])
    result.figure("speed", 3.0, "x")
    result.figure("name", "not a number")
    assert [verdict for _, verdict in result.verdicts()] == ["met", "n/a"]


def test_result_dict_carries_values_and_verdicts() -> None:
    result = BenchResult("b", "t", targets=[Target("speed", ">=", 5, ">= 5x")])
    result.figure("speed", 2.0, "x")
    data = result.to_dict()
    assert data["targets"] == [
        {"figure": "speed", "op": ">=", "threshold": 5, "text": ">= 5x", "value": 2.0, "verdict": "missed"}
    ]
    assert data["units"] == {"speed": "x"}


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "s", "-"),
        (5.4321, "x", "5.43x"),
        (12.345, "s", "12.3 s"),
        (123.4, "ms", "123 ms"),
        (45678.9, "events/s", "45,679 events/s"),
        (7, "", "7"),
        ("file.py", "", "file.py"),
        (0.000123, "s", "0.000123 s"),
    ],
)
def test_format_value(value: object, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_table_shows_figures_targets_verdicts_and_errors() -> None:
    ok = BenchResult("submit", "t", targets=[Target("speedup", ">=", 5, ">= 5x"), Target("never", "<=", 1, "x")])
    ok.figure("cli_s", 10.0, "s")
    ok.figure("speedup", 2.0, "x")
    failed = BenchResult("sql", "t", status="error", error="the hook is missing")
    failed.figure("cli_s", 3.0, "s")
    lines = render_table([ok, failed]).splitlines()
    assert lines[0].split() == ["benchmark", "figure", "value", "target", "verdict"]
    assert set(lines[1]) <= {"-", " "}
    speed_row = next(line for line in lines if "speedup" in line)
    assert "2x" in speed_row and ">= 5x" in speed_row and "MISSED" in speed_row
    assert any("never" in line and "n/a" in line for line in lines)  # a target without its figure still shows
    error_row = next(line for line in lines if "ERROR" in line)
    assert error_row.startswith("sql") and "the hook is missing" in error_row
    # the benchmark name is printed once per benchmark
    assert sum(1 for line in lines if line.startswith("submit")) == 1


def test_write_json_is_atomic_and_turns_nan_into_null(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "result.json"
    write_json(path, {"a": math.nan, "b": [1.5, math.inf], "c": {"d": (1, 2)}})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": {"d": [1, 2]}}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temp file left behind


def test_write_json_leaves_the_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"old": true}')

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("cannot serialise")

    with pytest.raises(RuntimeError):
        write_json(path, {"x": Boom()})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_rotation_moves_the_first_method_each_round() -> None:
    names = ["a", "b", "c"]
    assert [rotation(names, r) for r in range(4)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
    ]
    assert rotation([], 3) == []


def test_interleave_discards_warmup_and_alternates_methods() -> None:
    calls: list[str] = []
    counter = {"a": 0, "b": 0}

    def method(name: str):  # type: ignore[no-untyped-def]
        def run() -> Sample:
            calls.append(name)
            counter[name] += 1
            return Sample(float(counter[name]))

        return run

    cleaned: list[tuple[str, float | None]] = []
    samples, errors = interleave(
        {"a": method("a"), "b": method("b")},
        repeats=3,
        warmup=1,
        between=lambda name, sample: cleaned.append((name, sample.seconds if sample else None)),
    )
    assert errors == {}
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert [s.seconds for s in samples["a"]] == [2.0, 3.0, 4.0]  # run 1 was the warm-up
    assert [s.seconds for s in samples["b"]] == [2.0, 3.0, 4.0]
    assert len(cleaned) == 8


def test_interleave_records_errors_and_stops_a_failing_method() -> None:
    attempts = {"bad": 0}

    def bad() -> Sample:
        attempts["bad"] += 1
        raise RuntimeError("no such hook")

    cleaned: list[tuple[str, object]] = []
    samples, errors = interleave(
        {"good": lambda: Sample(1.0), "bad": bad},
        repeats=5,
        warmup=0,
        max_failures=2,
        between=lambda name, sample: cleaned.append((name, sample)),
    )
    assert attempts["bad"] == 2
    assert errors == {"bad": ["RuntimeError: no such hook"] * 2}
    assert len(samples["good"]) == 5 and samples["bad"] == []
    assert ("bad", None) in cleaned  # cleanup runs after a failed attempt too


def test_record_methods_gives_medians_phases_and_errors() -> None:
    result = BenchResult("b", "t")
    samples = {
        "operator": [Sample(1.0, {"POST": 0.5}), Sample(3.0, {"POST": 0.7}), Sample(2.0, {"POST": 0.6})],
        "cli": [],
    }
    record_methods(result, samples, {"cli": ["LookupError: no job"]})
    assert result.figures == {"operator_median_s": 2.0, "cli_median_s": None}
    assert result.samples["operator"]["seconds"] == [1.0, 3.0, 2.0]
    assert result.profile["operator"] == {"POST": {"median_s": 0.6, "runs": 3}}
    assert result.status == "error" and "cli: LookupError: no job" in (result.error or "")


def test_report_counts_verdicts_and_errors() -> None:
    met = BenchResult("a", "t", targets=[Target("x", ">=", 1, "")])
    met.figure("x", 2)
    missed = BenchResult("b", "t", targets=[Target("y", ">=", 1, ""), Target("z", ">=", 1, "")])
    missed.figure("y", 0.5)
    broken = BenchResult("c", "t", status="error", error="boom")
    report = build_report([met, missed, broken], settings={"repeats": 5}, started=0.0, machine={"cpu_count": 2})
    assert report["summary"] == {
        "targets_met": 1,
        "targets_missed": 1,
        "targets_unmeasured": 1,
        "errors": ["c"],
    }
    assert report["settings"] == {"repeats": 5} and report["machine"] == {"cpu_count": 2}
    assert [r["name"] for r in report["results"]] == ["a", "b", "c"]


def test_repeated_runs_report_the_median_ratio_and_its_spread() -> None:
    runs = []
    for speedup, seconds in ((4.91, 1.0), (5.3, 2.0), (5.1, 3.0)):
        run = BenchResult("pyflink_submit", "t", targets=[Target("speedup_vs_cli", ">=", 5.0, ">= 5x")])
        run.figure("speedup_vs_cli", speedup, "x")
        run.figure("operator_median_s", seconds, "s")
        runs.append(run)
    runs.append(BenchResult("pyflink_submit", "t", status="error", error="stack down"))
    combined = combine_repeats(runs)
    assert combined.figures["speedup_vs_cli"] == pytest.approx(5.1)
    assert (combined.figures["speedup_vs_cli_min"], combined.figures["speedup_vs_cli_max"]) == (4.91, 5.3)
    assert combined.figures["operator_median_s"] == 3.0  # not a ratio: the last measured run's
    assert [verdict for _, verdict in combined.verdicts()] == ["met"]  # judged on the median, not on 4.91
    assert len(combined.samples["repeat_runs"]) == 4 and any("stack down" in note for note in combined.notes)
    assert runs[0].figures["speedup_vs_cli"] == 4.91  # the runs themselves are left as they were
    with pytest.raises(ValueError):
        combine_repeats([])
