"""4. DAG parse time: each DAG file against an empty DAG file, parsed the way the DAG processor does it.

Airflow 3's DAG processor forks a child per file from its manager process; before the fork, the manager
imports the ``airflow.*`` modules the file imports (``[dag_processor] parsing_pre_import_modules``, on by
default: ``processor._pre_import_airflow_modules``), and since it parses every file over and over, it holds
those of all files. The child runs ``airflow.dag_processing.processor._parse_file`` (``BundleDagBag`` +
serialization). The harness does the same: a server process imports ``airflow.dag_processing.processor``,
pre-imports each file's Airflow modules with Airflow's own function (all files once first: the manager's
steady state), then forks a child per parse and times ``_parse_file`` in it. Modules outside ``airflow.*``
(the provider, the DAGs' helpers) are not pre-imported by Airflow, so each parse pays for them, as in
production.

Two labelled numbers per file, each also against an empty DAG file in the same harness:

* ``dag processor``: the real measure above (the target: under 50 ms above the empty DAG file);
* ``cold fork``: forked from a parent with the DAG processor imported but nothing pre-imported (the earlier
  figure).

Bytecode is cached as in an installed Airflow (whose packages ship or write their ``.pyc``): the parse servers
run without ``PYTHONDONTWRITEBYTECODE`` and with ``PYTHONPYCACHEPREFIX`` in the run's temporary folder, and
every file is parsed once unmeasured first. With ``PYTHONDONTWRITEBYTECODE=1`` (set in some shells and CI) and
no ``.pyc`` in the venv, each parse compiled every module it imported from source: about 0.5 s of CPU for the
provider's modules alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.core import BenchResult, Target, median

EMPTY_DAG = textwrap.dedent(
    """\
    from airflow.sdk import DAG

    with DAG(dag_id="bench_empty_dag", schedule=None):
        pass
    """
)

SERVER = textwrap.dedent(
    """\
    import json, os, sys, time
    from pathlib import Path

    os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "client"
    import structlog
    from airflow.dag_processing import processor

    log = structlog.get_logger(logger_name="task")

    def preimport(path):
        if hasattr(processor, "_pre_import_airflow_modules"):
            processor._pre_import_airflow_modules(path, log)

    def parse(path, bundle):
        began = time.perf_counter()
        if hasattr(processor, "_parse_file") and hasattr(processor, "DagFileParseRequest"):
            msg = processor.DagFileParseRequest(file=path, bundle_path=Path(bundle), bundle_name="bench")
            result = processor._parse_file(msg, log)
            seconds = time.perf_counter() - began
            dags = len(result.serialized_dags) if result is not None else 0
            errors = dict(result.import_errors or {}) if result is not None else {}
            how = "processor._parse_file"
        else:
            from airflow.dag_processing.dagbag import BundleDagBag
            bag = BundleDagBag(dag_folder=path, bundle_path=bundle, bundle_name="bench", load_op_links=False)
            seconds = time.perf_counter() - began
            dags, errors, how = len(bag.dags), dict(bag.import_errors), "BundleDagBag"
        return {"seconds": seconds, "dags": dags, "errors": {k: str(v)[-300:] for k, v in errors.items()}, "how": how}

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("preimport"):
            preimport(request["file"])
        if request.get("only_preimport"):
            print(json.dumps({"preimported": True}), flush=True)
            continue
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            if request.get("stderr"):  # with -X importtime: this parse's import timings go to the file
                fd = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 2)
            try:
                answer = parse(request["file"], request["bundle"])
            except BaseException as error:
                answer = {"seconds": None, "dags": 0, "errors": {request["file"]: repr(error)[-300:]}, "how": "?"}
            os.write(write, json.dumps(answer).encode())
            os._exit(0)
        os.close(write)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
        os.close(read)
        os.waitpid(pid, 0)
        print((b"".join(chunks) or b'{"seconds": null, "dags": 0, "errors": {"?": "child died"}}').decode(), flush=True)
    """
)


class ParseServer:
    """A process that has Airflow's DAG processor imported and parses files in forked children.

    :param python: the interpreter (the Airflow venv's).
    :param env: its environment (``AIRFLOW_HOME`` etc.).
    :param importtime: run with ``-X importtime`` (for :meth:`profile`; it slows imports down).
    :param preimport: pre-import each file's Airflow modules before forking, as the DAG processor does.
    """

    def __init__(
        self,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        *,
        importtime: bool = False,
        preimport: bool = True,
    ) -> None:
        self.preimport = preimport
        self.proc = subprocess.Popen(
            [python, *(["-X", "importtime"] if importtime else []), "-c", SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env or dict(os.environ),
        )
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"parse server did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"parse server exited ({self.proc.poll()})")
            if line.startswith("{"):
                return dict(json.loads(line))

    def parse(self, path: Path, bundle: Path, stderr: Path | None = None) -> dict[str, Any]:
        """Parse one file in a fresh fork; return seconds, DAG count and import errors.

        :param path: the DAG file.
        :param bundle: the bundle (DAG folder) it belongs to.
        :param stderr: where the child's stderr goes (the import timings, with ``importtime``).
        """
        request = {"file": str(path), "bundle": str(bundle), "stderr": str(stderr) if stderr else None}
        return self._ask({**request, "preimport": self.preimport})

    def warm(self, paths: Sequence[Path]) -> None:
        """Pre-import the Airflow modules of every file (a DAG processor that has parsed them all once).

        :param paths: the DAG files.
        """
        if self.preimport:
            for path in paths:
                self._ask({"file": str(path), "preimport": True, "only_preimport": True})

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the server."""
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


def parse_importtime(text: str) -> list[dict[str, Any]]:
    """The entries of ``-X importtime`` output: module, self and cumulative microseconds, nesting depth.

    :param text: stderr of a process run with ``-X importtime``.
    """
    entries = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        name = parts[2].rstrip()
        stripped = name.lstrip(" ")
        entries.append(
            {
                "module": stripped,
                "self_ms": int(parts[0]) / 1000,
                "cumulative_ms": int(parts[1]) / 1000,
                "depth": (len(name) - len(stripped) - 1) // 2,
            }
        )
    return entries


def top_imports(entries: Sequence[dict[str, Any]], count: int = 8) -> list[dict[str, Any]]:
    """The slowest imports made directly by the parsed file (the shallowest level present), slowest first.

    :param entries: :func:`parse_importtime`'s result.
    :param count: how many.
    """
    if not entries:
        return []
    shallowest = min(entry["depth"] for entry in entries)
    top = [entry for entry in entries if entry["depth"] == shallowest]
    return sorted(top, key=lambda entry: -entry["cumulative_ms"])[:count]


def bytecode_env(cache: Path) -> dict[str, str]:
    """The parse servers' environment: this one, with bytecode written to and read from ``cache``.

    :param cache: the bytecode folder (``PYTHONPYCACHEPREFIX``).
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def profile_imports(files: Sequence[tuple[str, Path, Path]], workdir: Path) -> dict[str, Any]:
    """Parse each file once more under ``-X importtime``: which imports its parse pays for.

    :param files: ``(label, path, bundle folder)`` triples.
    :param workdir: where the timing logs go.
    """
    server = ParseServer(importtime=True, env=bytecode_env(workdir / "pycache"))
    profiles: dict[str, Any] = {}
    try:
        server.warm([path for _, path, _ in files])
        for index, (label, path, bundle) in enumerate(files):
            log = workdir / f"importtime-{index}.txt"
            answer = server.parse(path, bundle, stderr=log)
            entries = parse_importtime(log.read_text(errors="replace")) if log.exists() else []
            profiles[label] = {
                "parse_ms_with_importtime": round(answer["seconds"] * 1000, 1) if answer.get("seconds") else None,
                "imports_ms": round(sum(e["self_ms"] for e in entries), 1),
                "modules_imported": len(entries),
                "slowest_imports": top_imports(entries),
                "heaviest_modules_self": sorted(entries, key=lambda e: -e["self_ms"])[:8],
            }
    finally:
        server.close()
    return profiles


def dag_files(folder: Path) -> list[Path]:
    """The files Airflow would parse in ``folder`` (its own listing: ``.airflowignore``, safe-mode heuristic).

    :param folder: the DAG folder.
    """
    from airflow.utils.file import list_py_file_paths

    return sorted(Path(p) for p in list_py_file_paths(str(folder), safe_mode=True))


def measure(server: ParseServer, files: Sequence[tuple[str, Path, Path]], repeats: int) -> dict[str, dict[str, Any]]:
    """Parse each file ``repeats`` times, round-robin (so background load hits all files alike).

    :param server: the parse server.
    :param files: ``(label, path, bundle folder)`` triples.
    :param repeats: parses per file.
    :return: per label: the times (s), DAG count, import errors and the parse method.
    """
    runs: dict[str, dict[str, Any]] = {label: {"seconds": [], "dags": 0, "errors": {}} for label, _, _ in files}
    for _ in range(repeats):
        for label, path, bundle in files:
            answer = server.parse(path, bundle)
            entry = runs[label]
            if answer.get("seconds") is not None:
                entry["seconds"].append(float(answer["seconds"]))
            entry["dags"] = answer.get("dags", 0)
            entry["errors"] = answer.get("errors") or entry["errors"]
            entry["how"] = answer.get("how")
    return runs


def summarize_parse(runs: dict[str, dict[str, Any]], empty_label: str, limit_ms: float) -> dict[str, Any]:
    """Per-file medians (ms), their excess over the empty DAG file, and the files over the limit (pure).

    :param runs: :func:`measure`'s result.
    :param empty_label: the empty DAG file's label.
    :param limit_ms: the per-file target: at most this much above the empty DAG file.
    """
    empty_times = runs.get(empty_label, {}).get("seconds") or []
    empty_ms = median(empty_times) * 1000 if empty_times else None
    files: dict[str, dict[str, Any]] = {}
    for label, entry in runs.items():
        if label == empty_label:
            continue
        times = entry["seconds"]
        ms = median(times) * 1000 if times else None
        files[label] = {
            "median_ms": ms,
            "over_empty_ms": (ms - empty_ms) if ms is not None and empty_ms is not None else None,
            "vs_empty": (ms / empty_ms) if ms is not None and empty_ms else None,
            "dags": entry["dags"],
            "import_errors": entry["errors"],
            "runs_ms": [round(t * 1000, 2) for t in times],
        }
    measured = {label: f["median_ms"] for label, f in files.items() if f["median_ms"] is not None}
    slowest = max(measured, key=lambda label: measured[label]) if measured else None
    excess = {label: f["over_empty_ms"] for label, f in files.items() if f["over_empty_ms"] is not None}
    return {
        "empty_ms": empty_ms,
        "files": files,
        "slowest": slowest,
        "slowest_ms": measured.get(slowest) if slowest else None,
        "most_over_empty_ms": max(excess.values(), default=None),
        "over_limit": sorted(label for label, ms in excess.items() if ms >= limit_ms),
        "failed": sorted(label for label, f in files.items() if f["median_ms"] is None or f["import_errors"]),
    }


LIMIT_MS = 50.0
"""The target: each DAG file parses in under this many ms more than an empty DAG file (real measure)."""

HARNESSES = {"dag processor": True, "cold fork": False}
"""Label -> whether the parent pre-imports each file's Airflow modules."""


def run(opts: argparse.Namespace) -> BenchResult:
    """Measure every DAG file of the DAG folder and the empty DAG file, in both harnesses.

    :param opts: ``dags_folder``, ``parse_repeats``.
    """
    from benchmarks import env

    result = BenchResult("parse_time", "DAG file parse time as the DAG processor does it, above an empty DAG file")
    folder = Path(opts.dags_folder or env.ROOT / "dags").resolve()
    files = dag_files(folder)
    if not files:
        result.status = "skipped"
        result.error = f"no DAG files in {folder}"
        return result
    summaries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        entries = [("(empty DAG file)", empty, Path(tmp))]
        entries += [(str(path.relative_to(folder)), path, folder) for path in files]
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        for harness, preimport in HARNESSES.items():
            server = ParseServer(preimport=preimport, env=bytecode_env(Path(tmp) / "pycache"))
            try:
                server.warm([path for _, path, _ in entries])
                for _, path, bundle in entries:  # unmeasured: compiles the bytecode of what each file imports
                    server.parse(path, bundle)
                runs[harness] = measure(server, entries, opts.parse_repeats)
            finally:
                server.close()
            summaries[harness] = summarize_parse(runs[harness], "(empty DAG file)", LIMIT_MS)
        real = summaries["dag processor"]
        slow = [entry for entry in entries if entry[0] in real["over_limit"] or entry[0] == "(empty DAG file)"]
        if len(slow) > 1:
            result.profile["imports"] = profile_imports(slow, Path(tmp))
    result.samples["harnesses"] = summaries
    result.samples["method"] = next((r.get("how") for r in runs["dag processor"].values() if r.get("how")), None)
    result.profile["table"] = render_parse_table(summaries)
    for harness, summary in summaries.items():
        key = harness.replace(" ", "_")
        result.figure(f"{key}_empty_dag_ms", summary["empty_ms"], "ms")
        result.figure(f"{key}_most_over_empty_ms", summary["most_over_empty_ms"], "ms")
        result.figure(f"{key}_files_over_{LIMIT_MS:g}ms_above_empty", len(summary["over_limit"]))
    result.figure("files", len(files))
    if real["failed"]:
        result.notes.append(f"files with import errors or no measurement: {', '.join(real['failed'])}")
    for label, entry in real["files"].items():
        cold = summaries["cold fork"]["files"].get(label, {})
        result.figure(
            f"{label} (over empty: {_ms(entry['over_empty_ms'])}; cold fork {_ms(cold.get('median_ms'), sign='')})",
            entry["median_ms"],
            "ms",
        )
    result.targets = [
        Target(
            f"dag_processor_files_over_{LIMIT_MS:g}ms_above_empty", "<=", 0, f"every file < {LIMIT_MS:g} ms above empty"
        )
    ]
    return result


def render_parse_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Per file: ms and ms above the empty DAG file, in each harness (the closing note's table).

    :param summaries: :func:`summarize_parse` per harness label.
    """
    labels = list(summaries)
    first = summaries[labels[0]]
    header = ["file"] + [f"{label} ms (above empty)" for label in labels]
    rows = [header, ["(empty DAG file)"] + [_ms(summaries[label]["empty_ms"], sign="") for label in labels]]
    for name in first["files"]:
        cells = [name]
        for label in labels:
            entry = summaries[label]["files"].get(name, {})
            cells.append(f"{_ms(entry.get('median_ms'), sign='')} ({_ms(entry.get('over_empty_ms'))})")
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def _ms(value: float | None, sign: str = "+") -> str:
    return "-" if value is None else f"{value:{sign}.1f} ms"
