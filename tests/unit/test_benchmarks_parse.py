"""The DAG parse-time harness: forked parses through the DAG processor's code, summaries, import profiles."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.parse_time import (
    EMPTY_DAG,
    ParseServer,
    measure,
    parse_importtime,
    render_parse_table,
    summarize_parse,
    top_imports,
)

pytestmark = pytest.mark.unit

SLEEPY_DAG = textwrap.dedent(
    """\
    import time

    time.sleep(0.2)  # stands for a heavy import at the top of a DAG file

    from airflow.sdk import DAG

    with DAG(dag_id="bench_sleepy", schedule=None):
        pass
    """
)


@pytest.fixture(scope="module")
def server() -> Iterator[ParseServer]:
    parse_server = ParseServer()
    yield parse_server
    parse_server.close()


def test_each_parse_runs_the_file_in_a_fresh_fork(server: ParseServer, tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text(EMPTY_DAG)
    (tmp_path / "sleepy.py").write_text(SLEEPY_DAG)
    files = [("empty", tmp_path / "empty.py", tmp_path), ("sleepy", tmp_path / "sleepy.py", tmp_path)]
    runs = measure(server, files, repeats=2)
    assert runs["empty"]["dags"] == 1 and runs["sleepy"]["dags"] == 1
    assert runs["empty"]["errors"] == {} and runs["sleepy"]["errors"] == {}
    # The sleep is paid on every parse: nothing from an earlier parse is cached in the next one.
    assert len(runs["sleepy"]["seconds"]) == 2
    assert all(seconds >= 0.2 for seconds in runs["sleepy"]["seconds"])
    assert runs["sleepy"]["how"] in ("processor._parse_file", "BundleDagBag")


PREIMPORT_PROBE = textwrap.dedent(
    """\
    import sys

    if "airflow.providers.standard.sensors.time_delta" not in sys.modules:
        raise ImportError("the parent did not pre-import this file's Airflow modules")

    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
    from airflow.sdk import DAG

    with DAG(dag_id="bench_preimport", schedule=None):
        pass
    """
)


def test_the_dag_processor_harness_pre_imports_a_files_airflow_modules_in_the_parent(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PREIMPORT_PROBE)
    answers = {}
    for preimport in (True, False):
        parse_server = ParseServer(preimport=preimport)
        try:
            parse_server.warm([probe])
            answers[preimport] = measure(parse_server, [("probe", probe, tmp_path)], repeats=1)["probe"]
        finally:
            parse_server.close()
    assert answers[True]["dags"] == 1 and answers[True]["errors"] == {}
    assert answers[False]["dags"] == 0 and "did not pre-import" in " ".join(answers[False]["errors"].values())


def test_import_errors_are_reported_not_raised(server: ParseServer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from airflow.sdk import DAG\nimport no_such_module_anywhere\n")
    runs = measure(server, [("broken", broken, tmp_path)], repeats=1)
    assert runs["broken"]["dags"] == 0
    assert "no_such_module_anywhere" in " ".join(runs["broken"]["errors"].values())


def test_summary_compares_files_with_the_empty_dag_file() -> None:
    runs = {
        "(empty)": {"seconds": [0.010, 0.012, 0.011], "dags": 1, "errors": {}},
        "fast.py": {"seconds": [0.020, 0.030, 0.025], "dags": 2, "errors": {}},
        "slow.py": {"seconds": [0.100, 0.090, 0.095], "dags": 1, "errors": {}},
        "broken.py": {"seconds": [0.005], "dags": 0, "errors": {"broken.py": "ImportError"}},
        "dead.py": {"seconds": [], "dags": 0, "errors": {}},
    }
    summary = summarize_parse(runs, "(empty)", limit_ms=50)
    assert summary["empty_ms"] == pytest.approx(11.0)
    assert summary["files"]["fast.py"]["median_ms"] == pytest.approx(25.0)
    assert summary["files"]["fast.py"]["over_empty_ms"] == pytest.approx(14.0)
    assert summary["files"]["slow.py"]["vs_empty"] == pytest.approx(95 / 11)
    assert summary["slowest"] == "slow.py" and summary["slowest_ms"] == pytest.approx(95.0)
    assert summary["over_limit"] == ["slow.py"]  # 84 ms above the empty file; fast.py is 14 ms above
    assert summary["most_over_empty_ms"] == pytest.approx(84.0)
    assert summary["failed"] == ["broken.py", "dead.py"]
    assert "(empty)" not in summary["files"]
    table = render_parse_table({"dag processor": summary, "cold fork": summary})
    assert "(empty DAG file)" in table and "slow.py" in table and "+84.0 ms" in table


IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      3000 |       3000 |     heavy.leaf
import time:       500 |       3500 |   heavy
import time:       200 |       3700 | flink_lessons.scenario_dag
import time:      1500 |       1500 | airflow.models.dagwarning
some other stderr line
"""


def test_importtime_output_is_parsed_with_depths() -> None:
    entries = parse_importtime(IMPORTTIME)
    assert [(e["module"], e["depth"]) for e in entries] == [
        ("_io", 1),
        ("heavy.leaf", 2),
        ("heavy", 1),
        ("flink_lessons.scenario_dag", 0),
        ("airflow.models.dagwarning", 0),
    ]
    assert entries[3]["cumulative_ms"] == 3.7 and entries[3]["self_ms"] == 0.2


def test_top_imports_are_the_shallowest_slowest_first() -> None:
    top = top_imports(parse_importtime(IMPORTTIME))
    assert [e["module"] for e in top] == ["flink_lessons.scenario_dag", "airflow.models.dagwarning"]
    assert top_imports([]) == []


def test_parse_servers_cache_bytecode_as_an_installed_airflow_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    from benchmarks.parse_time import bytecode_env

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    (tmp_path / "helper_mod.py").write_text("VALUE = 1\n")
    env = bytecode_env(tmp_path / "pycache")
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "pycache")
    subprocess.run([sys.executable, "-c", "import helper_mod"], cwd=tmp_path, env=env, check=True)
    assert [path.name for path in (tmp_path / "pycache").rglob("helper_mod*.pyc")]
