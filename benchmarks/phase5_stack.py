"""A private stack beside the shared one, for the phase 5 and observability drills that kill a TaskManager.

It is ``stack/cli.py`` run with ``FLINK_STACK_DIR=.stack-obs`` and ``FLINK_STACK_PORT_OFFSET=5000`` (Kafka
14092, Flink REST 13081, SQL Gateway 13083): its own processes, PID files, checkpoints and Iceberg catalog, so
killing its TaskManager never touches the shared stack's jobs. Used by ``benchmarks/phase5_tm_kill.py`` and the
restart drill (``tests/integration/test_observability_restart_drill.py``). It links the shared stack's PyFlink venv
and Maven jars (``venvs/``, ``jars/``, read-only to a running stack) instead of installing its own copies.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flink_lessons.phase3.failover import LocalStack

ROOT = Path(__file__).resolve().parents[1]


class PrivateStack:
    """One private stack, driven through ``stack/cli.py``.

    :param directory: its ``FLINK_STACK_DIR``.
    :param offset: its ``FLINK_STACK_PORT_OFFSET``.
    :param flink_conf: Flink settings it starts with (``FLINK_STACK_FLINK_CONF``), e.g. short heartbeats for a
        drill; they apply when :meth:`up` starts Flink (a running stack keeps its own).
    """

    def __init__(
        self, directory: Path = ROOT / ".stack-obs", offset: int = 5000, flink_conf: Mapping[str, Any] | None = None
    ) -> None:
        self.directory = directory
        self.offset = offset
        self.started_here = False
        self._flink_conf = dict(flink_conf or {})
        self._local = LocalStack(directory, offset)
        self._killed: set[str] = set()
        self._rest = ""

    def _cli(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FLINK_STACK_DIR": str(self.directory), "FLINK_STACK_PORT_OFFSET": str(self.offset)}
        if self._flink_conf:
            env["FLINK_STACK_FLINK_CONF"] = json.dumps(self._flink_conf)
        return subprocess.run([sys.executable, str(ROOT / "stack" / "cli.py"), *args], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)  # fmt: skip

    def is_up(self) -> bool:
        """Whether every component is healthy."""
        return self._cli("status", timeout=120).returncode == 0

    def up(self, attempts: int = 3) -> None:
        """Start what is not running (a killed TaskManager too); remember whether the stack was down before.

        :param attempts: how often to run ``stack/cli.py up``: at load 30 on the 2-core machine the JobManager
            exited at start ("Could not create actor system": Pekko's remoting took longer than its fixed 10 s,
            which no Flink option sets), and the next ``up`` starts only what is still down.
        :raises RuntimeError: with the CLI's output of the last attempt when it cannot.
        """
        if not self.started_here and not self.is_up():
            self.started_here = True
        self._share_installs()
        for _ in range(attempts):
            done = self._cli("up", "--skip-airflow")
            if done.returncode == 0:
                return
        raise RuntimeError(f"private stack {self.directory.name} did not come up:\n{done.stdout[-3000:]}"
                           f"\n{done.stderr[-3000:]}")  # fmt: skip

    def _share_installs(self) -> None:
        """Link the shared stack's ``venvs/`` and ``jars/`` into this one where it has none: ``stack/cli.py up``
        then finds the PyFlink wheels and the jars in place (a fresh clone saves ~1 min of installs per private
        stack). A folder of its own is kept."""
        shared = Path(os.environ.get("FLINK_STACK_DIR") or ROOT / ".stack").resolve()
        for name in ("venvs", "jars"):
            mine, theirs = self.directory / name, shared / name
            if theirs.is_dir() and not mine.exists() and not mine.is_symlink() and theirs != mine.resolve():
                self.directory.mkdir(parents=True, exist_ok=True)
                mine.symlink_to(theirs, target_is_directory=True)

    def down(self) -> None:
        """Stop the stack if :meth:`up` started it (a stack that was already up is left as found)."""
        if self.started_here:
            self._cli("down")
            self.started_here = False

    def env(self) -> dict[str, str]:
        """The stack's connections (``AIRFLOW_CONN_*``) and Iceberg catalog (``FLINK_STACK_*``) as ``cli.py env``
        prints them."""
        out = self._cli("env", timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"cli.py env failed: {out.stderr[-2000:]}")
        found: dict[str, str] = {}
        for line in out.stdout.splitlines():
            words = shlex.split(line)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                key, value = words[1].split("=", 1)
                if key.startswith(("AIRFLOW_CONN_", "FLINK_STACK_")):
                    found[key] = value
        return found

    @contextmanager
    def environment(self, rename: Mapping[str, str] | None = None) -> Iterator[dict[str, str]]:
        """Point this process's connections and catalog at the private stack; restore them afterwards.

        :param rename: connection ids to expose under another id (``{"flink_default": "flink_obs"}`` adds
            ``AIRFLOW_CONN_FLINK_OBS`` and leaves ``flink_default`` alone); without it every key is replaced.
        """
        env = self.env()
        if rename is not None:
            env = {f"AIRFLOW_CONN_{new.upper()}": env[f"AIRFLOW_CONN_{old.upper()}"] for old, new in rename.items()}
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def taskmanager_pids(self) -> list[int]:
        """The live TaskManager processes recorded in the stack's PID directory."""
        return self._local.taskmanager_pids()

    def start_taskmanager(self) -> None:
        """Start one more TaskManager (e.g. a standby the job fails over to)."""
        self._local.start_taskmanager()

    def registered_taskmanagers(self) -> set[str]:
        """The ids of the TaskManagers the JobManager lists (a killed one stays listed until its heartbeat times
        out)."""
        if not self._rest:
            conn = json.loads(self.env()["AIRFLOW_CONN_FLINK_DEFAULT"])
            self._rest = f"http://{conn['host']}:{conn['port']}"
        with urllib.request.urlopen(f"{self._rest}/taskmanagers", timeout=10) as answer:
            return {str(tm["id"]) for tm in json.load(answer).get("taskmanagers", [])}

    def kill_taskmanager(self, pids: Iterable[int] | None = None) -> list[int]:
        """SIGKILL this stack's TaskManagers (as a crash would); return the PIDs killed.

        :param pids: which of :meth:`taskmanager_pids` (default: all of them).
        :raises RuntimeError: when none of them runs.
        """
        live = self.taskmanager_pids()
        pids = live if pids is None else [pid for pid in pids if pid in live]
        if not pids:
            raise RuntimeError(f"no live TaskManager of {self.directory.name}")
        self._killed = self.registered_taskmanagers()
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def replace_taskmanager(self, timeout: float = 300) -> float:
        """After :meth:`kill_taskmanager`: wait until the JobManager has dropped the killed TaskManager (until
        then ``stack/cli.py up`` finds one registered and starts none), then start a new one; return the seconds
        the JobManager took to notice.

        :param timeout: seconds to wait for the JobManager.
        :raises RuntimeError: when it still lists the killed one after ``timeout``.
        """
        began = time.monotonic()
        while self.registered_taskmanagers() & self._killed:
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"the JobManager still lists the killed TaskManager after {timeout:.0f}s")
            time.sleep(1)
        noticed = time.monotonic() - began
        self.up()
        return noticed
