"""A minimal SQL Gateway REST client for the benchmarks' own jobs (throughput, sensor, recovery).

The benchmarks that do not measure submission start their jobs with it, so they do not depend on the
provider's hook being there (or being fast). Statements are split with the provider's splitter.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import requests

from benchmarks import env


class GatewayError(RuntimeError):
    """The gateway answered an error; the message is its root cause."""


def _root_cause(payload: Any) -> str:
    errors = payload.get("errors", []) if isinstance(payload, dict) else [str(payload)]
    trace = "\n".join(str(e) for e in errors)
    causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
    return (causes[-1] if causes else trace.splitlines()[0] if trace else "unknown error")[:500]


class Gateway:
    """One client session at a time against the stack's gateway.

    :param url: the gateway's REST root.
    :param timeout: seconds per request and per statement.
    """

    def __init__(self, url: str = env.GATEWAY_URL, timeout: float = 120) -> None:
        self.url = url
        self.timeout = timeout
        self.http = requests.Session()
        versions = self.http.get(f"{url}/api_versions", timeout=timeout).json()["versions"]
        self.version = max(versions, key=lambda v: int(str(v).lstrip("vV"))).lower()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.http.request(method, f"{self.url}/{self.version}{path}", timeout=self.timeout, **kwargs)
        if resp.status_code >= 400:
            raise GatewayError(f"{method} {path}: {resp.status_code} {_root_cause(resp.json())}")
        return resp.json() if resp.content else None

    def open_session(self, properties: dict[str, str] | None = None) -> str:
        """Open a session; return its handle.

        :param properties: session configuration.
        """
        return str(self._call("POST", "/sessions", json={"properties": properties or {}})["sessionHandle"])

    def close_session(self, session: str) -> None:
        """Close a session (an unknown one is ignored).

        :param session: the handle.
        """
        with contextlib.suppress(GatewayError):
            self._call("DELETE", f"/sessions/{session}")

    def execute(self, session: str, statement: str) -> str | None:
        """Run one statement to its end; return the job id it submitted, if any.

        :param session: the handle.
        :param statement: one SQL statement without the trailing semicolon.
        """
        op = self._call("POST", f"/sessions/{session}/statements", json={"statement": statement})["operationHandle"]
        uri = f"/{self.version}/sessions/{session}/operations/{op}/result/0?rowFormat=JSON"
        deadline = time.monotonic() + self.timeout
        job_id: str | None = None
        while uri:
            resp = self.http.get(self.url + uri, timeout=self.timeout)
            if resp.status_code >= 400:
                raise GatewayError(f"{statement[:80]!r}: {_root_cause(resp.json())}")
            body = resp.json()
            job_id = job_id or body.get("jobID")
            kind = body.get("resultType")
            if kind == "EOS" or (job_id and kind == "PAYLOAD"):
                break
            if kind == "NOT_READY":
                if time.monotonic() > deadline:
                    raise GatewayError(f"statement not done after {self.timeout:.0f}s: {statement[:80]}")
                time.sleep(0.05)
                continue
            uri = body.get("nextResultUri") or ""
        self._call("DELETE", f"/sessions/{session}/operations/{op}/close")
        return job_id

    def run_script(self, script: str, properties: dict[str, str] | None = None) -> list[str]:
        """Run every statement of a script in a fresh session; return the submitted job ids.

        :param script: the SQL script.
        :param properties: session configuration.
        """
        from airflow_flink_provider.protocol.statements import split_statements

        session = self.open_session(properties)
        try:
            jobs = [self.execute(session, statement.text) for statement in split_statements(script)]
        finally:
            self.close_session(session)
        return [job for job in jobs if job]


def submit(script: str, properties: dict[str, str] | None = None) -> list[str]:
    """Run a script through the gateway and register its jobs for cleanup.

    :param script: the SQL script.
    :param properties: session configuration.
    """
    return [env.JOBS.add(job) for job in Gateway().run_script(script, properties)]
