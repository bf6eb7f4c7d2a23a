"""The benchmarks' command line: selection, quick sizes, flags; the PyFlink job presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.pyflink_submit import BENCH_JOB, PRESETS, job_spec
from benchmarks.run import BENCHMARKS, QUICK, parse_args, render_tables

pytestmark = pytest.mark.unit


def test_all_benchmarks_run_in_order_by_default() -> None:
    assert parse_args([]).selected == list(BENCHMARKS)


def test_only_and_skip_keep_the_run_order() -> None:
    assert parse_args(["--only", "throughput,pyflink_submit"]).selected == ["pyflink_submit", "throughput"]
    assert "recovery" not in parse_args(["--skip", "recovery"]).selected
    assert parse_args(["--only", "recovery,sensor", "--skip", "sensor"]).selected == ["recovery"]


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])
    assert "unknown benchmark(s) ['nope']" in capsys.readouterr().err


def test_quick_shrinks_only_sizes_left_at_their_defaults() -> None:
    quick = parse_args(["--quick", "--events", "1234"])
    assert quick.events == 1234  # given explicitly: kept
    assert quick.repeats == QUICK["repeats"] and quick.rates == QUICK["rates"]
    assert parse_args([]).repeats == 5 and parse_args([]).warmup == 1


@pytest.mark.parametrize("text", ["0", "-5"])
def test_sizes_must_be_positive(text: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--repeats", text])


def test_rates_are_sorted_numbers() -> None:
    assert parse_args(["--rates", "5000,1e3,20000"]).rates == [1000, 5000, 20000]
    with pytest.raises(SystemExit):
        parse_args(["--rates", "fast"])
    with pytest.raises(SystemExit):
        parse_args(["--rates", "100,-1"])


def test_pyflink_presets_and_job_files(tmp_path: Path) -> None:
    assert job_spec(None, []) is PRESETS["datagen"] and PRESETS["datagen"].path == BENCH_JOB
    enrichment = job_spec("orders_enrichment", [])
    assert enrichment.topics == ("source_topic", "sink_topic")
    args = enrichment.arguments("bench-x", {"source_topic": "in-1", "sink_topic": "out-1"})
    assert args[args.index("--source-topic") + 1] == "in-1" and args[args.index("--job-name") + 1] == "bench-x"
    job = tmp_path / "job.py"
    job.write_text("print('job')\n")
    custom = job_spec(str(job), ["--name", "{name}"])
    assert custom.path == job and custom.arguments("n1", {}) == ["--name", "n1"]
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        job_spec(str(tmp_path / "missing.py"), [])


def test_progress_stays_on_the_terminal_while_stdout_goes_to_the_log(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "task.log"
    code = (
        "import subprocess, sys; from pathlib import Path; from benchmarks.console import redirect_stdout_to, say; "
        f"redirect_stdout_to(Path({str(log)!r})); print('task line', flush=True); say('[bench] progress'); "
        "subprocess.run(['echo', 'child output'])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "[bench] progress\n"
    assert log.read_text() == "task line\nchild output\n"


def test_repeat_runs_and_scale_flags() -> None:
    opts = parse_args(["--repeat-runs", "3", "--scale-sizes", "1000,10,100", "--only", "scale,sql_submit"])
    assert opts.repeat_runs == 3 and opts.scale_sizes == [10, 100, 1000]
    assert opts.selected == ["sql_submit", "scale"]
    assert parse_args([]).repeat_runs == 1 and parse_args([]).scale_poll == 30
    assert parse_args(["--quick"]).scale_sizes == QUICK["scale_sizes"]
    for bad in (["--repeat-runs", "0"], ["--scale-sizes", "0,10"], ["--scale-sizes", "many"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_the_scale_and_parse_time_tables_are_printed_after_the_figures() -> None:
    from benchmarks.core import BenchResult
    from benchmarks.parse_time import render_parse_table, summarize_parse
    from benchmarks.scale import render_rows

    scale = BenchResult("scale", "N triggers")
    row = {"n": 1000, "mode": "shared", "requests_per_s": 0.03, "overview_max_per_interval": 1, "cpu_pct": 4.2}
    scale.profile["table"] = render_rows([row])
    parse = BenchResult("parse_time", "DAG parse time")
    runs = {
        "(empty DAG file)": {"seconds": [0.010, 0.012], "dags": 1, "errors": 0},
        "flink_phase0.py": {"seconds": [0.030, 0.034], "dags": 1, "errors": 0},
    }
    summary = summarize_parse(runs, "(empty DAG file)", 50)
    parse.profile["table"] = render_parse_table({"dag processor": summary, "cold fork": summary})
    printed = render_tables([BenchResult("sensor", "no table"), parse, scale])
    assert printed.index("[bench] parse_time:") < printed.index("[bench] scale:") and "sensor" not in printed
    assert "flink_phase0.py   32.0 ms (+21.0 ms)" in printed and "dag processor ms (above empty)" in printed
    assert "req/s" in printed and "shared" in printed.splitlines()[-1]
