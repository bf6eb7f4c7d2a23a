"""What ``make airflow-ui`` runs (API server, scheduler, DAG processor, triggerer), for the browser tests.

The parts run with the stack's Airflow environment (``stack.cli.airflow_env``: the project's DAGs folder, the
stack's connections) but in an Airflow home of their own and on a free port: the shared ``.stack/airflow``
database is used by other ``airflow dags test`` runs, and a scheduler on it would pick their runs up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from stack.cli import CONNECTIONS, HOST, airflow_env

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PARTS = {
    "api-server": ["api-server", "--host", HOST, "--port", "{port}"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (requests.RequestException, OSError) as exc:  # the server is still starting
            last, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class AirflowUI:
    """Airflow's four processes on a private home; :meth:`api` calls the REST API (all users are admins)."""

    def __init__(self, home: Path, variables: Mapping[str, Any]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.logs = home / "logs-ui"
        self.env = {
            **os.environ,
            **airflow_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            # One task at a time: the machine is shared; the DAGs' own parallelism is 1.
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Parse each DAG file once, one at a time: the DAGs do not change during the test, and re-parsing
            # every file each 30 s (the default) was a steady load on the shared 2-core machine.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A task's calls to the execution API (its start, heartbeats, XComs) wait up to 5 s by default: on the
            # loaded 2-core machine the API server answered later and tasks failed before they started.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            **{f"AIRFLOW_CONN_{name.upper()}": json.dumps(conn) for name, conn in CONNECTIONS.items()},
        }
        self.variables = dict(variables)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` CLI command in this home; its output."""
        done = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def start(self, timeout: float) -> None:
        """Migrate the database, start the four parts, wait for the API and store the Variables through it.

        :param timeout: seconds the API server may take to answer.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.airflow("db", "migrate", timeout=timeout)
        for name, args in PARTS.items():
            log = (self.logs / f"{name}.log").open("ab")
            cmd = [AIRFLOW, *(arg.format(port=self.port) for arg in args)]
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
            )
        wait_until("the API server", lambda: requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok, timeout)
        for name, value in self.variables.items():
            self.api("POST", "/variables", json={"key": name, "value": json.dumps(value)})

    def stop(self) -> None:
        """Stop the parts this fixture started (by their process ids), waiting for each."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                print(f"airflow {name} did not stop on SIGTERM; killed")

    def check_alive(self) -> None:
        """Fail naming the part that exited, with the end of its log."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"airflow {name} exited with {proc.returncode}:\n{tail}")

    def token(self) -> str:
        """A JWT for the REST API (the simple auth manager makes every user an admin here)."""
        if self._token is None:
            answer = requests.get(f"{self.url}/auth/token", timeout=30)
            answer.raise_for_status()
            self._token = str(answer.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST API call (``/api/v2`` + ``path``); the decoded answer."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        answer = requests.request(method, f"{self.url}/api/v2{path}", headers=headers, timeout=60, **kwargs)
        assert answer.ok, f"{method} {path}: {answer.status_code} {answer.text[:2000]}"
        return answer.json() if answer.content else None

    def parsed(self, files: Iterable[str]) -> bool:
        """Whether every DAG file named has a DAG or an import error here: the DAG processor reads the files one
        by one, so the first DAGs show long before the last file is read.

        :param files: DAG file names, e.g. ``flink_dlq_alerts.py``.
        """
        seen = {Path(d["fileloc"]).name for d in self.api("GET", "/dags", params={"limit": 100})["dags"]}
        seen |= {Path(e["filename"]).name for e in self.api("GET", "/importErrors")["import_errors"]}
        return seen >= set(files)
