"""Parsing a DAG file imports no heavy module (issue 15): the HTTP clients, the provider's hooks and transport
are imported by tasks and triggers at run time, never by the DAG processor.

Each file is parsed as the DAG processor parses it: in a child forked from a parent that has imported the
DAG processor and pre-imported the file's own ``airflow.*`` imports (``parsing_pre_import_modules``). What
the child imports beyond that is what every parse pays for. The timing is ``make bench`` (parse_time); this
test checks only which modules are imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = ("phase0_", "phase1_", "flink_deploy_", "flink_recover_", "flink_upgrade_")
DAG_FILES = sorted(p for p in (ROOT / "dags").glob("*.py") if p.name.startswith(OWN))

HEAVY = ("requests", "urllib3", "charset_normalizer", "airflow_flink_provider.hooks")
"""Modules (and their sub-modules) a DAG file must not make the parse import."""

PROBE = textwrap.dedent(
    """\
    import importlib.util, json, os, sys
    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    import structlog
    from airflow.dag_processing import processor

    log = structlog.get_logger(logger_name="task")
    files = sys.argv[1:]
    for path in files:
        processor._pre_import_airflow_modules(path, log)
    before = set(sys.modules)
    for path in files:
        read, write = os.pipe()
        if os.fork() == 0:
            os.close(read)
            spec = importlib.util.spec_from_file_location("parsed_dag", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            os.write(write, json.dumps(sorted(set(sys.modules) - before)).encode())
            os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 65536):
            data += chunk
        os.close(read)
        os.wait()
        print("PARSED " + json.dumps({"file": os.path.basename(path), "new": json.loads(data or b"null")}))
    """
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def imported() -> dict[str, list[str] | None]:
    """DAG file name -> the modules its parse imported (``None``: the child died)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, DAG_FILES)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, check=False)  # fmt: skip
    found = {}
    for line in proc.stdout.splitlines():
        if line.startswith("PARSED "):
            entry = json.loads(line.removeprefix("PARSED "))
            found[entry["file"]] = entry["new"]
    assert len(found) == len(DAG_FILES), proc.stdout[-3000:] + proc.stderr[-3000:]
    return found


@pytest.mark.parametrize("name", [p.name for p in DAG_FILES])
def test_parsing_a_dag_file_imports_no_heavy_module(imported: dict[str, list[str] | None], name: str) -> None:
    modules = imported[name]
    assert modules is not None, f"{name}: the parse died"
    assert any(module.startswith("flink_lessons") for module in modules), "the probe saw the file's own imports"
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not heavy, f"{name} imports at parse time: {heavy}"
