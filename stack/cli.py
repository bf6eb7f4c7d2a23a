"""The local stack without Docker: Kafka (KRaft), a Flink session cluster, the SQL Gateway, and Airflow's home.

Usage: ``python stack/cli.py up|down [--purge]|status|env``. Everything lives under ``.stack/`` (git-ignored);
versions and ports come from ``stack/stack.toml``. Each step prints one progress line and is skipped when its
result is already there, so a second ``up`` on a ready machine takes seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
STACK = Path(os.environ.get("FLINK_STACK_DIR", ROOT / ".stack")).resolve()
CONFIG = tomllib.loads((ROOT / "stack" / "stack.toml").read_text())
VERSIONS: dict[str, str] = CONFIG["versions"]
# FLINK_STACK_PORT_OFFSET moves every port, so a second, private stack (with its own FLINK_STACK_DIR) can run beside
# the usual one, e.g. for a test that kills a TaskManager while other work uses the shared stack.
PORT_OFFSET = int(os.environ.get("FLINK_STACK_PORT_OFFSET", "0"))
PORTS: dict[str, int] = {name: port + PORT_OFFSET for name, port in CONFIG["ports"].items()}
HOST = "127.0.0.1"

FLINK_VENV = STACK / "venvs" / "flink"
FLINK_HOME = STACK / "flink"
JARS = STACK / "jars"
STATE = STACK / "state"
LOGS = STACK / "logs"
RUN = STACK / "run"
KAFKA_CONF = STACK / "kafka"
# A test worker of pytest-xdist runs its Airflow commands against its own copy of the metadata DB (tests/conftest.py).
AIRFLOW_HOME = Path(os.environ.get("FLINK_STACK_AIRFLOW_HOME") or STACK / "airflow").resolve()
ICEBERG: dict[str, str] = CONFIG["iceberg"]
# The Flink components and the daemon scripts that start them; each start records the jars lib/ held (lib_drift).
FLINK_SCRIPTS = {"flink-jobmanager": "jobmanager.sh", "flink-taskmanager": "taskmanager.sh",
                 "sql-gateway": "sql-gateway.sh"}


class StackError(RuntimeError):
    """A step of the stack failed; the message says which and why."""


def step(message: str) -> None:
    """Print one progress line.

    :param message: what is happening now
    """
    print(f"[stack] {message}", flush=True)


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a command, raising StackError with its output's tail on failure.

    :param cmd: the command and its arguments
    :param env: extra environment variables
    :param cwd: working directory
    """
    proc = subprocess.run(
        cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise StackError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that it does not exist.

    :param path: the log file
    :param lines: how many lines
    """
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port.

    :param port: the TCP port
    """
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def http_json(url: str, timeout: float = 2.0) -> dict | None:
    """GET a JSON document, or None when the server does not answer with one.

    :param url: the URL
    :param timeout: seconds
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- install


def uv() -> str:
    """The uv executable: the project venv's own, else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else "uv"


def ensure_flink_venv() -> Path:
    """Install the Flink wheels into a venv of their own (their pins clash with Airflow's).

    :return: the pyflink package directory, which holds Flink's bin/, lib/, opt/, conf/
    """
    version = VERSIONS["flink"]
    marker = FLINK_VENV / f".apache-flink-{version}"
    python = FLINK_VENV / "bin" / "python"
    if not marker.exists():
        step(f"installing apache-flink=={version} into {display(FLINK_VENV)} (one time, ~1 min)")
        if not python.exists():
            run([uv(), "venv", "-q", "-p", VERSIONS["python"], str(FLINK_VENV)])
        # Compiled bytecode: each PyFlink client would otherwise compile pyflink from source where
        # PYTHONDONTWRITEBYTECODE is set.
        run([uv(), "pip", "install", "-q", "--compile-bytecode", "-p", str(python), f"apache-flink=={version}"])
        marker.touch()
    else:
        step(f"apache-flink {version} already installed")
    out = subprocess.run(
        [str(python), "-c", "import pyflink, os; print(os.path.dirname(pyflink.__file__))"],
        capture_output=True, text=True, check=True,
    )
    return Path(out.stdout.strip())


def ensure_jars(profile: str, props: dict[str, str]) -> Path:
    """Copy one Maven profile's jars (stack/maven/pom.xml) into .stack/jars/<profile>.

    :param profile: ``kafka`` or ``flink``
    :param props: Maven properties, i.e. the pinned versions
    """
    target = JARS / profile
    key = ",".join(f"{k}={v}" for k, v in sorted(props.items()))
    marker = target / ".versions"
    if marker.exists() and marker.read_text() == key:
        step(f"{profile} jars already in place ({key})")
        return target
    step(f"fetching {profile} jars with Maven ({key})")
    JARS.mkdir(parents=True, exist_ok=True)
    # Fetched into a folder of its own and then moved into place, so a running Flink whose lib/ links into
    # the old folder, or a second stack sharing .stack/jars, never sees a half-filled one.
    staging = Path(tempfile.mkdtemp(prefix=f".{profile}-", dir=JARS))
    try:
        cmd = ["mvn", "-q", "-B", "-f", str(ROOT / "stack" / "maven" / "pom.xml"), "-P", profile]
        cmd += [f"-D{k}={v}" for k, v in props.items()]
        cmd += ["dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
        run(cmd)
        (staging / ".versions").write_text(key)
        if not (marker.exists() and marker.read_text() == key):  # else another stack-up fetched them meanwhile
            swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def swap_in(new: Path, current: Path) -> None:
    """Replace the folder ``current`` by ``new`` with two renames, so it is never seen half-written.

    :param new: the complete new folder, on the same file system
    :param current: the folder to replace (it may not exist yet)
    """
    old = current.with_name(f".{current.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if current.exists() or current.is_symlink():
        current.rename(old)
    new.rename(current)
    shutil.rmtree(old, ignore_errors=True)


def link_dir(src: Path, dst: Path) -> None:
    """Fill dst with symlinks to every file of src.

    :param src: directory to mirror
    :param dst: directory to fill
    """
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        link = dst / item.name
        if not link.exists():
            link.symlink_to(item)


def assemble_flink_home(pyflink_dir: Path, jar_dirs: list[Path]) -> None:
    """Assemble a Flink home: the wheel's dist plus the gateway jar (opt/) and every other fetched jar (lib/).

    The Kafka connector and the Iceberg runtime go to lib/, so the JobManager, the TaskManager and the SQL
    Gateway all load them. bin/ is copied, not linked: Flink's scripts derive FLINK_HOME from their own
    location. bin/, lib/ and opt/ are built beside the old ones and swapped in, so a Flink that is running
    while they change never finds them half-written; it keeps the classpath it started with (see lib_drift).

    :param pyflink_dir: the installed pyflink package
    :param jar_dirs: the folders Maven filled, one per profile (``flink``, ``iceberg``)
    """
    marker = FLINK_HOME / ".assembled"
    key = "\n".join([str(pyflink_dir), *((jars / ".versions").read_text() for jars in jar_dirs)])
    if marker.exists() and marker.read_text() == key:
        step("Flink home already assembled")
        write_flink_conf(pyflink_dir / "conf")
        return
    step(f"assembling Flink home in {display(FLINK_HOME)}")
    staging = FLINK_HOME / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(pyflink_dir / "bin", staging / "bin")
    link_dir(pyflink_dir / "lib", staging / "lib")
    link_dir(pyflink_dir / "opt", staging / "opt")
    for jars in jar_dirs:
        for jar in sorted(jars.glob("*.jar")):
            link = staging / ("opt" if jar.name.startswith("flink-sql-gateway") else "lib") / jar.name
            if link.exists():
                raise StackError(f"{jar.name} of {jars} is also in {link.resolve().parent}: two copies of a jar "
                                 f"on Flink's classpath invite clashes; exclude one in stack/maven/pom.xml")
            link.symlink_to(jar)
    for sub in ("bin", "lib", "opt"):
        swap_in(staging / sub, FLINK_HOME / sub)
    shutil.rmtree(staging)
    plugins = FLINK_HOME / "plugins"
    if not plugins.exists():
        plugins.symlink_to(pyflink_dir / "plugins")
    write_flink_conf(pyflink_dir / "conf")
    marker.write_text(key)


def display(path: Path) -> str:
    """A path relative to the repository when it is inside it, else absolute (a private stack may be anywhere).

    :param path: the path to show
    """
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def lib_jars() -> list[str]:
    """The jar names in the assembled Flink home's lib/."""
    return sorted(path.name for path in (FLINK_HOME / "lib").glob("*.jar"))


def lib_drift(script: str) -> str | None:
    """Why a running Flink process may lack jars of lib/, or ``None`` when it started with lib/ as it is now.

    Each start records lib/'s jars (``.stack/run/<script>.lib``). A JVM keeps the classpath it started with, so
    jars added later (e.g. a new Maven profile) reach it only after a restart.

    :param script: the daemon script that started it, e.g. ``jobmanager.sh``
    """
    record = RUN / f"{script}.lib"
    if not record.exists():
        return "started before the stack recorded lib/'s jars, so may lack jars added since"
    missing = sorted(set(lib_jars()) - set(record.read_text().split()))
    return f"started without {', '.join(missing)} (added to lib/ since)" if missing else None


def write_flink_conf(wheel_conf: Path) -> None:
    """Generate conf/config.yaml (Flink 2 YAML), all bound to 127.0.0.1, beside the wheel's log4j files.

    :param wheel_conf: the conf/ directory shipped in the Flink wheel
    """
    conf = FLINK_HOME / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    # Flink on Java 17 needs the wheel's --add-opens/--add-exports flags: without them running a jar over
    # REST fails in ExecutionContextEnvironment's static initialiser.
    java_opts = re.search(r"^\s+all:\s*(--add-\S.*)$", (wheel_conf / "config.yaml").read_text(), re.MULTILINE)
    if java_opts is None:
        raise StackError(f"no env.java.opts.all in {wheel_conf / 'config.yaml'}: cannot start Flink on Java 17")
    flink = CONFIG["flink"]
    python = FLINK_VENV / "bin" / "python"
    settings = {
        "env.java.opts.all": java_opts.group(1).strip(),
        "jobmanager.rpc.address": HOST,
        "jobmanager.rpc.port": PORTS["jobmanager_rpc"],
        "jobmanager.bind-host": HOST,
        "jobmanager.memory.process.size": flink["jobmanager_memory"],
        "taskmanager.host": HOST,
        "taskmanager.bind-host": HOST,
        "taskmanager.numberOfTaskSlots": flink["task_slots"],
        "taskmanager.memory.process.size": flink["taskmanager_memory"],
        # Every SQL job loads generated classes and every PyFlink job a Python runner into the one long-lived
        # TaskManager; the default 256m metaspace ran out during the test suite.
        "taskmanager.memory.jvm-metaspace.size": "768m",
        # The test suite's streaming jobs keep their state on the heap (no RocksDB, no batch sorting), and the
        # default 40 % managed memory left 870 MB of task heap for 8 slots: the TaskManager died of
        # OutOfMemoryError during make test. 10 % managed memory leaves about 2.3 GB of task heap.
        "taskmanager.memory.managed.fraction": "0.1",
        "rest.address": HOST,
        "rest.bind-address": HOST,
        "rest.port": PORTS["flink_rest"],
        # CORS: only the Flink web UI's own origin. Flink's default '*' lets any web page open in the user's
        # browser upload and run jars on this cluster.
        "web.access-control-allow-origin": f"http://{HOST}:{PORTS['flink_rest']}",
        "parallelism.default": 1,
        "execution.checkpointing.dir": (STATE / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (STATE / "savepoints").as_uri(),
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": 10,
        # Fail a job that cannot get its slots within a minute instead of the default five.
        "slot.request.timeout": "60 s",
        "python.executable": str(python),
        "python.client.executable": str(python),
        "env.pid.dir": str(RUN),
        "env.log.dir": str(LOGS / "flink"),
        "sql-gateway.endpoint.rest.address": HOST,
        "sql-gateway.endpoint.rest.bind-address": HOST,
        # The gateway answers every origin with CORS '*' and 2.1 rejects web.access-control-allow-origin for it,
        # so it listens on a private port behind stack/origin_guard.py, which refuses requests from web pages.
        "sql-gateway.endpoint.rest.port": PORTS["sql_gateway_backend"],
        # A private stack's drill settings (FLINK_STACK_FLINK_CONF, a JSON object), e.g. the heartbeats of the
        # phase-3 recovery lesson; each key replaces the one above.
        **json.loads(os.environ.get("FLINK_STACK_FLINK_CONF") or "{}"),
    }
    lines = [f"{key}: {json.dumps(value) if isinstance(value, str) else value}" for key, value in settings.items()]
    (conf / "config.yaml").write_text("# Generated by stack/cli.py from stack/stack.toml.\n" + "\n".join(lines) + "\n")
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        shutil.copy(wheel_conf / name, conf / name)
    (conf / "workers").write_text(f"{HOST}\n")
    (conf / "masters").write_text(f"{HOST}:{PORTS['flink_rest']}\n")


KAFKA_LOG4J = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="{log}/server.log" filePattern="{log}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="INFO"/>
  </Loggers>
</Configuration>
"""


def write_kafka_conf() -> Path:
    """Write server.properties for one combined broker+controller node and its Log4j2 config.

    :return: the server.properties path
    """
    KAFKA_CONF.mkdir(parents=True, exist_ok=True)
    (LOGS / "kafka").mkdir(parents=True, exist_ok=True)
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{PORTS['kafka_controller']}",
        "listeners": f"PLAINTEXT://{HOST}:{PORTS['kafka']},CONTROLLER://{HOST}:{PORTS['kafka_controller']}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{PORTS['kafka']}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(STATE / "kafka"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    path = KAFKA_CONF / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (KAFKA_CONF / "log4j2.xml").write_text(KAFKA_LOG4J.format(log=LOGS / "kafka"))
    return path


def kafka_java(main_class: str, *args: str) -> list[str]:
    """A java command line on the Kafka jars.

    :param main_class: the class to run
    :param args: its arguments
    """
    return [
        "java", "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={KAFKA_CONF / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={LOGS / 'kafka'}", "-cp", str(JARS / "kafka" / "*"), main_class, *args,
    ]


def format_kafka_storage(server_properties: Path) -> None:
    """Format KRaft storage once; later runs keep the data.

    :param server_properties: the broker config
    """
    if (STATE / "kafka" / "meta.properties").exists():
        step("Kafka storage already formatted")
        return
    step("formatting Kafka KRaft storage")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    run(kafka_java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(server_properties)))


# ---------------------------------------------------------------------------------------------- health


def kafka_healthy() -> bool:
    """A metadata request to the broker succeeds."""
    if not port_open(PORTS["kafka"]):
        return False
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError as exc:  # pragma: no cover - the project venv has it
        raise StackError("confluent-kafka is missing: run the stack CLI with the project venv (make venv)") from exc
    admin = AdminClient({"bootstrap.servers": f"{HOST}:{PORTS['kafka']}", "socket.timeout.ms": 2000})
    try:
        meta = admin.list_topics(timeout=3)
    except Exception:
        return False
    return bool(meta.brokers)


def jobmanager_healthy() -> bool:
    """The JobManager's REST API answers /overview."""
    overview = http_json(f"http://{HOST}:{PORTS['flink_rest']}/overview")
    return bool(overview and "flink-version" in overview)


def taskmanager_healthy() -> bool:
    """/overview shows at least one TaskManager with slots."""
    overview = http_json(f"http://{HOST}:{PORTS['flink_rest']}/overview")
    return bool(overview and overview.get("taskmanagers", 0) >= 1 and overview.get("slots-total", 0) > 0)


def gateway_healthy(port_name: str = "sql_gateway") -> bool:
    """/api_versions and /v1/info both answer.

    :param port_name: ``sql_gateway`` (through the origin guard) or ``sql_gateway_backend`` (the gateway itself)
    """
    base = f"http://{HOST}:{PORTS[port_name]}"
    versions = http_json(f"{base}/api_versions")
    return bool(versions and versions.get("versions") and http_json(f"{base}/v1/info"))


def start_origin_guard() -> None:
    """Start stack/origin_guard.py on the gateway's public port and record its PID."""
    out = (LOGS / "flink" / "origin-guard.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "stack" / "origin_guard.py"), "--listen", str(PORTS["sql_gateway"]),
         "--upstream", str(PORTS["sql_gateway_backend"])],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    (RUN / "origin-guard.pid").write_text(f"{proc.pid}\n")


@dataclass(frozen=True)
class Component:
    """A service of the stack: how to start it, how to tell it is healthy, and where it logs.

    :param name: shown in progress lines and errors
    :param ports: TCP ports it listens on, which must be free before it starts
    :param healthy: its health check
    :param log: its log file, or the directory of its logs
    :param pid_globs: its PID files under .stack/run
    :param start: starts it in the background
    :param timeout: seconds it gets to become healthy
    :param log_pattern: which log of a log directory to show when it does not
    :param signature: text that the command line of each of its processes contains; a PID whose process does
        not show it was reused by another program and is never signalled
    """

    name: str
    ports: tuple[int, ...]
    healthy: Callable[[], bool]
    log: Path
    pid_globs: tuple[str, ...]
    start: Callable[[], None] = lambda: None
    timeout: float = 90
    log_pattern: str = "*.log"
    signature: tuple[str, ...] = ()


def flink_script(component: str) -> Callable[[], None]:
    """A starter that runs a Flink component's daemon script with our environment and records lib/'s jars.

    :param component: a key of FLINK_SCRIPTS, e.g. ``flink-jobmanager``
    """
    script = FLINK_SCRIPTS[component]

    def start() -> None:
        (RUN / f"{script}.lib").write_text("\n".join(lib_jars()) + "\n")
        run([str(FLINK_HOME / "bin" / script), "start"], env=flink_env())

    return start


def components(server_properties: Path | None = None) -> list[Component]:
    """The stack's services in start order.

    The TaskManager is a component of its own: when it dies (e.g. a job ran it out of memory) while the
    JobManager lives on, `up` starts just a new TaskManager.

    :param server_properties: Kafka's config, needed to start Kafka
    """
    flink_logs = LOGS / "flink"
    return [
        Component("kafka", (PORTS["kafka"], PORTS["kafka_controller"]), kafka_healthy, LOGS / "kafka" / "server.log",
                  ("kafka.pid",), lambda: start_kafka(server_properties or KAFKA_CONF / "server.properties"),
                  signature=("kafka.Kafka", str(KAFKA_CONF))),
        Component("flink-jobmanager", (PORTS["flink_rest"],), jobmanager_healthy, flink_logs,
                  ("flink-*-standalonesession.pid",), flink_script("flink-jobmanager"), 120, "*standalonesession*.log",
                  ("StandaloneSessionClusterEntrypoint", str(flink_logs))),
        Component("flink-taskmanager", (), taskmanager_healthy, flink_logs,
                  ("flink-*-taskexecutor.pid",), flink_script("flink-taskmanager"), 120, "*taskexecutor*.log",
                  ("TaskManagerRunner", str(flink_logs))),
        Component("sql-gateway", (PORTS["sql_gateway_backend"],), lambda: gateway_healthy("sql_gateway_backend"),
                  flink_logs, ("flink-*-sql-gateway.pid",), flink_script("sql-gateway"), 90, "*sql-gateway*.log",
                  ("SqlGateway", str(flink_logs))),
        Component("sql-gateway-guard", (PORTS["sql_gateway"],), gateway_healthy, flink_logs / "origin-guard.log",
                  ("origin-guard.pid",), start_origin_guard, 30,
                  signature=("origin_guard.py", f"--listen {PORTS['sql_gateway']}")),
    ]


def newest_log(path: Path, pattern: str = "*.log") -> Path:
    """The newest matching file in a log directory (or the path itself if it is a file).

    :param path: a file or directory
    :param pattern: glob for directories
    """
    if path.is_file() or not path.exists():
        return path
    logs = sorted(path.glob(pattern), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else path


def check_ports_free(component: Component) -> None:
    """Refuse to start when another program holds one of the component's ports.

    :param component: the component about to start
    """
    for port in component.ports:
        if port_open(port):
            raise StackError(
                f"port {port} on {HOST} is already in use, so {component.name} cannot start. "
                f"Another program holds it: find it with `ss -ltnp 'sport = :{port}'` and stop it, "
                f"or change [ports] in stack/stack.toml."
            )


def wait_healthy(component: Component) -> None:
    """Poll a component's health check until it passes or its timeout ends.

    :param component: the component
    """
    deadline = time.monotonic() + component.timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        if component.healthy():
            step(f"{component.name} is healthy ({time.monotonic() - started:.1f}s)")
            return
        time.sleep(0.5)
    log = newest_log(component.log, component.log_pattern)
    raise StackError(
        f"{component.name} did not become healthy within {component.timeout:.0f}s. "
        f"Last lines of {log}:\n{log_tail(log)}"
    )


# ---------------------------------------------------------------------------------------------- start/stop


def flink_env() -> dict[str, str]:
    """Environment for Flink's scripts: our assembled home, config, logs and PID files."""
    return {
        "FLINK_HOME": str(FLINK_HOME),
        "FLINK_CONF_DIR": str(FLINK_HOME / "conf"),
        "FLINK_LOG_DIR": str(LOGS / "flink"),
        "FLINK_PID_DIR": str(RUN),
        "FLINK_LIB_DIR": str(FLINK_HOME / "lib"),
        "FLINK_OPT_DIR": str(FLINK_HOME / "opt"),
        "FLINK_PLUGINS_DIR": str(FLINK_HOME / "plugins"),
        "FLINK_BIN_DIR": str(FLINK_HOME / "bin"),
        "PATH": f"{FLINK_VENV / 'bin'}:{os.environ.get('PATH', '')}",
    }


def start_kafka(server_properties: Path) -> None:
    """Start the broker in the background and record its PID.

    :param server_properties: the broker config
    """
    out = (LOGS / "kafka" / "stdout.log").open("ab")
    proc = subprocess.Popen(
        kafka_java("kafka.Kafka", str(server_properties)),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    (RUN / "kafka.pid").write_text(f"{proc.pid}\n")


def start_component(component: Component) -> None:
    """Start one component unless it is already healthy.

    A component whose recorded processes still live but that is not healthy (a TaskManager that lost its
    heartbeat on a loaded machine re-registers by itself) gets its timeout to recover; only if it does not is
    it stopped before a new one starts, so a slow part is never doubled.

    :param component: the component
    """
    if component.healthy():
        step(f"{component.name} already running and healthy")
        return
    if any(alive(pid) and owned(component, pid) for _, pid in pids_of(component)):
        step(f"{component.name} is running but not healthy; waiting up to {component.timeout:.0f}s for it")
        try:
            wait_healthy(component)
            return
        except StackError:
            step(f"{component.name} stayed unhealthy; stopping it before starting a new one")
            stop_component(component)
    check_ports_free(component)
    step(f"starting {component.name}")
    component.start()
    wait_healthy(component)


def pids_of(component: Component) -> list[tuple[Path, int]]:
    """The PID files and PIDs this CLI (or Flink's daemon script, into our PID dir) wrote.

    :param component: the component
    """
    found = []
    for pattern in component.pid_globs:
        for pid_file in RUN.glob(pattern):
            found += [(pid_file, int(p)) for p in pid_file.read_text().split() if p.strip().isdigit()]
    return found


def alive(pid: int) -> bool:
    """Whether a process exists and has not exited (an exited child its parent has not reaped yet counts as gone).

    :param pid: the process id
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers signal 0; its state in /proc (Linux) is Z
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def command_line(pid: int) -> str | None:
    """The command line of a running process, arguments joined by spaces; ``None`` when it is gone.

    :param pid: the process id
    """
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None
    except OSError:
        return None
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def owned(component: Component, pid: int) -> bool:
    """Whether ``pid`` is still a process of ``component`` (PIDs of exited processes get reused).

    :param component: the component whose PID file named ``pid``
    :param pid: the process id
    """
    cmd = command_line(pid)
    return cmd is not None and all(part in cmd for part in component.signature)


def stop_component(component: Component) -> None:
    """Stop exactly the processes recorded in the component's PID files: TERM, then KILL after 30 s.

    A recorded PID whose process is not the component's any more (the PID was reused after a crash or a
    reboot) is never signalled.

    :param component: the component
    """
    entries = pids_of(component)
    mine = []
    for pid_file, pid in entries:
        if not alive(pid):
            continue
        if owned(component, pid):
            mine.append(pid)
        else:
            step(f"{component.name}: PID {pid} in {pid_file.name} now belongs to another program "
                 f"({(command_line(pid) or '?')[:80]}); not signalling it")
    for pid in mine:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in mine) and time.monotonic() < deadline:
        time.sleep(0.3)
    for pid in mine:
        if alive(pid) and owned(component, pid):
            os.kill(pid, signal.SIGKILL)
    for pid_file, _ in entries:
        pid_file.unlink(missing_ok=True)
    step(f"{component.name} stopped ({len(mine)} process(es))" if mine else f"{component.name}: nothing to stop")


# ---------------------------------------------------------------------------------------------- iceberg


@dataclass(frozen=True)
class IcebergCatalog:
    """The local Iceberg catalog of ``[iceberg]`` in stack.toml: a JDBC catalog on SQLite, a file:// warehouse.

    :param name: the catalog name; Flink and pyiceberg must use the same one (it is stored in the catalog table)
    :param root: the folder that holds the catalog file and the warehouse
    :param db: the SQLite file of the catalog
    :param warehouse: the warehouse folder (table data and metadata files)
    """

    name: str
    root: Path
    db: Path
    warehouse: Path

    @property
    def jdbc_uri(self) -> str:
        """The catalog file as Flink's ``'uri'`` option (a JDBC URL)."""
        return f"jdbc:sqlite:{self.db}"

    @property
    def sqlalchemy_uri(self) -> str:
        """The catalog file as pyiceberg's ``SqlCatalog(name, uri=...)`` (an SQLAlchemy URL)."""
        return f"sqlite:///{self.db}"

    @property
    def warehouse_uri(self) -> str:
        """The warehouse as a ``file://`` URI, the same for Flink and pyiceberg."""
        return self.warehouse.as_uri()

    def flink_options(self) -> dict[str, str]:
        """The WITH options of Flink's ``CREATE CATALOG`` for this catalog."""
        return {
            "type": "iceberg",
            "catalog-impl": ICEBERG["catalog_impl"],
            "uri": self.jdbc_uri,
            "warehouse": self.warehouse_uri,
            "jdbc.schema-version": ICEBERG["jdbc_schema_version"],
        }

    def env(self) -> dict[str, str]:
        """The catalog's settings as the FLINK_STACK_ICEBERG_* variables the Airflow environment exports."""
        return {
            "FLINK_STACK_ICEBERG_CATALOG_NAME": self.name,
            "FLINK_STACK_ICEBERG_CATALOG_URI": self.jdbc_uri,
            "FLINK_STACK_ICEBERG_SQLALCHEMY_URI": self.sqlalchemy_uri,
            "FLINK_STACK_ICEBERG_WAREHOUSE": self.warehouse_uri,
            "FLINK_STACK_ICEBERG_CATALOG_OPTIONS": json.dumps(self.flink_options(), separators=(",", ":")),
        }


def iceberg_catalog(root: Path | None = None) -> IcebergCatalog:
    """The local Iceberg catalog, checked: ``dir`` is a relative folder inside the stack dir, the file names plain.

    :param root: the catalog folder (default: ``dir`` under the stack dir); docker-compose.yaml mounts its own
    """
    folder = PurePosixPath(ICEBERG["dir"])
    if folder.is_absolute() or ".." in folder.parts or not folder.parts:
        raise StackError(f"[iceberg] dir = {ICEBERG['dir']!r} in stack/stack.toml must be a folder inside the stack "
                         "dir, e.g. 'state/iceberg' (`stack-down PURGE=1` deletes it)")
    for key in ("catalog_db", "warehouse"):
        if PurePosixPath(ICEBERG[key]).name != ICEBERG[key] or ICEBERG[key] in ("", ".", ".."):
            raise StackError(f"[iceberg] {key} = {ICEBERG[key]!r} in stack/stack.toml must be a plain name "
                             "inside [iceberg] dir")
    root = root or STACK / folder
    return IcebergCatalog(ICEBERG["catalog_name"], root, root / ICEBERG["catalog_db"], root / ICEBERG["warehouse"])


def ensure_iceberg_catalog() -> IcebergCatalog:
    """Create the catalog folder, its SQLite file (empty: Iceberg creates its tables on first use) and the warehouse."""
    catalog = iceberg_catalog()
    catalog.warehouse.mkdir(parents=True, exist_ok=True)
    if catalog.db.exists():
        step(f"Iceberg catalog '{catalog.name}' already at {display(catalog.db)}")
    else:
        sqlite3.connect(catalog.db).close()
        step(f"created Iceberg catalog '{catalog.name}': {display(catalog.db)}, warehouse {display(catalog.warehouse)}")
    return catalog


# ---------------------------------------------------------------------------------------------- airflow


def airflow_env() -> dict[str, str]:
    """Environment every Airflow command of this project runs with."""
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(PORTS["airflow_ui"]),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{PORTS['airflow_ui']}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # Loopback-only development stack: skip the login page of the simple auth manager.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "FLINK_STACK_HOME": str(FLINK_HOME),
        "FLINK_STACK_PYTHON": str(FLINK_VENV / "bin" / "python"),
        "FLINK_STACK_STATE": str(STATE),
        **iceberg_catalog().env(),
    }


CONNECTIONS = {
    "flink_default": {"conn_type": "flink", "host": HOST, "port": PORTS["flink_rest"]},
    "flink_sql_gateway_default": {"conn_type": "flink_sql_gateway", "host": HOST, "port": PORTS["sql_gateway"]},
    "kafka_default": {
        "conn_type": "kafka",
        "extra": json.dumps({
            "bootstrap.servers": f"{HOST}:{PORTS['kafka']}", "group.id": "airflow-flink", "enable.idempotence": "true",
        }),
    },
    # The phase 1 DAGs read sink topics from the beginning: sink rows are written before the consumer joins.
    "kafka_practice_consumer": {
        "conn_type": "kafka",
        "extra": json.dumps({
            "bootstrap.servers": f"{HOST}:{PORTS['kafka']}", "group.id": "airflow-flink-practice",
            "auto.offset.reset": "earliest", "enable.auto.commit": "false",
        }),
    },
    # flink_observability sends its alerts through this connection (alerts.smtp_conn_id); see stack.toml's smtp.
    "smtp_alerts": {
        "conn_type": "smtp", "host": HOST, "port": PORTS["smtp"],
        "extra": json.dumps({"disable_ssl": True, "disable_tls": True, "from_email": "flink-alerts@localhost"}),
    },
    # flink_dlq_alerts' AssetWatcher reads the dead-letter topics with it in the triggerer: a group, and a short
    # metadata refresh so the topic of a new run is found within seconds.
    "kafka_dlq_watcher": {
        "conn_type": "kafka",
        "extra": json.dumps({
            "bootstrap.servers": f"{HOST}:{PORTS['kafka']}", "group.id": "flink_dlq_alerts",
            "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": "5000",
        }),
    },
}


def ensure_airflow() -> None:
    """Migrate Airflow's SQLite metadata DB under .stack/airflow and (re)create the stack's connections."""
    airflow = Path(sys.executable).parent / "airflow"
    env = airflow_env()
    conn_file = AIRFLOW_HOME / "connections.json"
    wanted = json.dumps(CONNECTIONS, indent=2)
    if conn_file.exists() and conn_file.read_text() == wanted:
        step("Airflow home already initialised")
        return
    step(f"initialising Airflow home in {display(AIRFLOW_HOME)} (SQLite) and its connections")
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    run([str(airflow), "db", "migrate"], env=env)
    conn_file.unlink(missing_ok=True)
    pending = AIRFLOW_HOME / "connections.pending.json"
    pending.write_text(wanted)
    run([str(airflow), "connections", "import", "--overwrite", str(pending)], env=env)
    pending.rename(conn_file)


def cmd_airflow_ui() -> int:
    """Run what `airflow standalone` runs, each part bound to 127.0.0.1, until Ctrl-C.

    `airflow standalone` also starts log servers that Airflow binds to every interface; with one machine
    and local log files they serve nothing, so the scheduler and triggerer run with --skip-serve-logs.
    """
    ensure_airflow()
    airflow = str(Path(sys.executable).parent / "airflow")
    env = {**os.environ, **airflow_env(), "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    parts = {
        "api-server": [airflow, "api-server", "--host", HOST, "--port", str(PORTS["airflow_ui"])],
        "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
    }
    (LOGS / "airflow").mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops the parts too, like Ctrl-C
    procs = {}
    for name, cmd in parts.items():
        log = (LOGS / "airflow" / f"{name}.log").open("ab")
        procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        step(f"airflow {name} started (pid {procs[name].pid}, log .stack/logs/airflow/{name}.log)")
    step(f"Airflow UI: http://{HOST}:{PORTS['airflow_ui']} (local only, every user is admin). Ctrl-C stops it.")
    try:
        while all(proc.poll() is None for proc in procs.values()):
            time.sleep(1)
        dead = [name for name, proc in procs.items() if proc.poll() is not None]
        step(f"{', '.join(dead)} exited; see its log. Stopping the rest.")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(30)


# ---------------------------------------------------------------------------------------------- commands


def cmd_up(skip_airflow: bool) -> None:
    """Install what is missing, then start Kafka, Flink and the gateway in order, each health-checked.

    :param skip_airflow: do not touch Airflow's home
    """
    started = time.monotonic()
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise StackError(f"`{tool}` is not on PATH: install Java 17 and Maven (see README, Prerequisites)")
    for path in (STATE / "checkpoints", STATE / "savepoints", LOGS / "flink", RUN):
        path.mkdir(parents=True, exist_ok=True)
    pyflink_dir = ensure_flink_venv()
    ensure_jars("kafka", {"kafka.version": VERSIONS["kafka"], "scala.binary.version": VERSIONS["scala"]})
    flink_jars = ensure_jars("flink", {
        "flink.version": VERSIONS["flink"], "flink.kafka.connector.version": VERSIONS["flink_kafka_connector"],
    })
    iceberg_jars = ensure_jars("iceberg", iceberg_maven_properties())
    assemble_flink_home(pyflink_dir, [flink_jars, iceberg_jars])
    ensure_iceberg_catalog()
    server_properties = write_kafka_conf()
    format_kafka_storage(server_properties)
    for component in components(server_properties):
        start_component(component)
    warn_lib_drift()
    if not skip_airflow:
        ensure_airflow()
    step(f"stack is up in {time.monotonic() - started:.1f}s: Kafka {HOST}:{PORTS['kafka']}, "
         f"Flink UI http://{HOST}:{PORTS['flink_rest']}, SQL Gateway http://{HOST}:{PORTS['sql_gateway']}")


def iceberg_maven_properties() -> dict[str, str]:
    """The -D properties of the pom's ``iceberg`` profile: the runtime for this Flink's minor version."""
    return {
        "flink.minor.version": ".".join(VERSIONS["flink"].split(".")[:2]),
        "iceberg.version": VERSIONS["iceberg"],
        "hadoop.version": VERSIONS["hadoop"],
        "sqlite.jdbc.version": VERSIONS["sqlite_jdbc"],
    }


def warn_lib_drift() -> None:
    """Say which running Flink processes lack jars of lib/ and how to load them; nothing is restarted."""
    drifted: dict[str, list[str]] = {}
    for component in components():
        script = FLINK_SCRIPTS.get(component.name)
        reason = script and component.healthy() and lib_drift(script)
        if reason:
            drifted.setdefault(reason, []).append(component.name)
    for reason, names in drifted.items():
        step(f"WARNING: {', '.join(names)}: {reason}. Restart Flink to load them: "
             "make stack-down && make stack-up (data stays)")


def cmd_down(purge: bool) -> None:
    """Stop what `up` started, in reverse order; `purge` also deletes topics, checkpoints, savepoints and the
    Iceberg catalog with its warehouse.

    :param purge: delete the stack's data too
    """
    for component in reversed(components()):
        stop_component(component)
    if purge:
        for path in (STATE, iceberg_catalog().root, LOGS, AIRFLOW_HOME):
            shutil.rmtree(path, ignore_errors=True)
        step("purged state (topics, checkpoints, savepoints, Iceberg catalog and warehouse), logs and Airflow home "
             "(installs kept)")


def cmd_status() -> int:
    """Print each component's health and PIDs; exit 1 if any is down."""
    all_ok = True
    for component in components():
        ok = component.healthy()
        all_ok &= ok
        pids = ", ".join(str(pid) for _, pid in pids_of(component) if alive(pid)) or "-"
        ports = ",".join(str(p) for p in component.ports)
        print(f"{component.name:<18} {'healthy' if ok else 'DOWN':<8} ports {ports:<10} pids {pids}")
    warn_lib_drift()
    return 0 if all_ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    :param argv: command-line arguments
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install what is missing and start everything")
    up.add_argument("--skip-airflow", action="store_true", help="do not initialise Airflow's home")
    down = sub.add_parser("down", help="stop what up started")
    down.add_argument("--purge", action="store_true", help="also delete data, logs and Airflow's home")
    sub.add_parser("status", help="health of each component")
    sub.add_parser("env", help="print the Airflow environment as shell exports")
    sub.add_parser("airflow-ui", help="run Airflow's API server, scheduler, DAG processor and triggerer")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cmd_up(args.skip_airflow)
        elif args.command == "down":
            cmd_down(args.purge)
        elif args.command == "status":
            return cmd_status()
        elif args.command == "airflow-ui":
            return cmd_airflow_ui()
        else:
            for key, value in airflow_env().items():
                print(f"export {key}={shlex.quote(value)}")
            # The connections again as AIRFLOW_CONN_*: `airflow dags test` runs deferred tasks' triggers in its
            # own process, where only environment (and secrets backend) connections can be read.
            for conn_id, conn in CONNECTIONS.items():
                print(f"export AIRFLOW_CONN_{conn_id.upper()}={shlex.quote(json.dumps(conn))}")
            # `airflow standalone` starts its parts as `airflow ...` found on PATH.
            print(f'export PATH="{Path(sys.executable).parent}:$PATH"')
    except StackError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
