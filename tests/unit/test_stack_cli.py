"""The stack CLI's own checks that need no running stack."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from stack import cli

pytestmark = pytest.mark.unit


def test_busy_port_names_the_port_and_the_component(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        component = cli.Component("sql-gateway", (port,), lambda: False, tmp_path / "none.log", ())
        with pytest.raises(cli.StackError) as err:
            cli.start_component(component)
    message = str(err.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert "sql-gateway cannot start" in message
    assert f"sport = :{port}" in message


def test_unhealthy_component_reports_its_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "flink.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)) + "\nCaused by: java.net.BindException\n")
    component = cli.Component("flink-taskmanager", (), lambda: False, log, (), timeout=0.6)
    with pytest.raises(cli.StackError) as err:
        cli.wait_healthy(component)
    assert "flink-taskmanager did not become healthy within 1s" in str(err.value)
    assert "Caused by: java.net.BindException" in str(err.value)
    assert "line 60" not in str(err.value)


OPENS = "--add-opens=java.base/java.util=ALL-UNNAMED"


@pytest.fixture
def flink_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's generated Flink config.yaml (written into ``tmp_path``) from a wheel conf whose Java opts
    are ``OPENS``, as a dict of its top-level keys and values."""
    wheel_conf = tmp_path / "wheel-conf"
    wheel_conf.mkdir()
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        (wheel_conf / name).write_text("# log4j\n")
    (wheel_conf / "config.yaml").write_text(f"env:\n  java:\n    opts:\n      all: {OPENS}\n")
    home = tmp_path / "flink"
    monkeypatch.setattr(cli, "FLINK_HOME", home)
    cli.write_flink_conf(wheel_conf)
    return dict(line.split(": ", 1) for line in (home / "conf" / "config.yaml").read_text().splitlines()[1:])


def test_generated_flink_config_binds_loopback_and_has_slots_and_state_dirs(flink_conf: dict[str, str]) -> None:
    conf = flink_conf
    assert conf["rest.bind-address"] == '"127.0.0.1"'
    assert conf["sql-gateway.endpoint.rest.address"] == '"127.0.0.1"'
    assert int(conf["taskmanager.numberOfTaskSlots"]) >= 4
    assert conf["execution.checkpointing.dir"].startswith('"file:///')
    assert conf["execution.checkpointing.savepoint-dir"].endswith('/state/savepoints"')
    assert conf["restart-strategy.type"] == '"exponential-delay"'
    assert conf["env.java.opts.all"] == f'"{OPENS}"'


def test_up_restarts_only_the_dead_part(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[str] = []
    health = {"flink-jobmanager": True, "flink-taskmanager": False}

    def component(name: str, ports: tuple[int, ...]) -> cli.Component:
        def start() -> None:
            started.append(name)
            health[name] = True

        return cli.Component(name, ports, lambda: health[name], tmp_path, (), start, timeout=2)

    # The JobManager holds its port and is healthy; only the TaskManager (no port) is started again.
    for part in (component("flink-jobmanager", (cli.PORTS["flink_rest"],)), component("flink-taskmanager", ())):
        cli.start_component(part)
    assert started == ["flink-taskmanager"]


def test_up_waits_for_a_live_but_unhealthy_part_instead_of_starting_a_second(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(cli, "RUN", tmp_path)
    # A TaskManager that lives but has not (re-)registered yet: it becomes healthy on the third look.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "TaskManagerRunner"])
    try:
        (tmp_path / "flink-x-taskexecutor.pid").write_text(f"{proc.pid}\n")
        looks = iter([False, False, True])
        started: list[str] = []
        part = cli.Component(
            "flink-taskmanager",
            (),
            lambda: next(looks),
            tmp_path,
            ("flink-*-taskexecutor.pid",),
            lambda: started.append("again"),
            timeout=5,
            signature=("TaskManagerRunner",),
        )
        cli.start_component(part)
        assert started == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_up_replaces_a_live_part_that_stays_unhealthy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(cli, "RUN", tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "TaskManagerRunner"])
    try:
        (tmp_path / "flink-x-taskexecutor.pid").write_text(f"{proc.pid}\n")
        health = {"ok": False}
        started: list[int] = []

        def start() -> None:
            started.append(proc.poll() if proc.poll() is not None else -1)
            health["ok"] = True

        log = tmp_path / "taskexecutor.log"
        log.write_text("heartbeat of TaskManager timed out\n")
        part = cli.Component(
            "flink-taskmanager",
            (),
            lambda: health["ok"],
            log,
            ("flink-*-taskexecutor.pid",),
            start,
            timeout=0.6,
            signature=("TaskManagerRunner",),
        )
        cli.start_component(part)
        # The stuck process was stopped (it has an exit code) before the new one started.
        assert len(started) == 1 and started[0] != -1
    finally:
        proc.kill()
        proc.wait()


def test_kafka_config_is_single_node_kraft_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "KAFKA_CONF", tmp_path / "kafka")
    monkeypatch.setattr(cli, "LOGS", tmp_path / "logs")
    props = dict(line.split("=", 1) for line in cli.write_kafka_conf().read_text().splitlines())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"].startswith("PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1"


def test_stop_never_signals_a_pid_that_another_program_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(cli, "RUN", tmp_path)
    # A live process that is not the component's: its PID sits in the component's PID file (a reused PID).
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "kafka.pid").write_text(f"{stranger.pid}\n")
        component = cli.Component("kafka", (), lambda: False, tmp_path / "x.log", ("kafka.pid",),
                                  signature=("kafka.Kafka",))  # fmt: skip
        cli.stop_component(component)
        assert stranger.poll() is None, "the stack signalled a process that is not Kafka"
        assert not (tmp_path / "kafka.pid").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_signals_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setattr(cli, "RUN", tmp_path)
    own = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "marker-of-the-component"])
    for _ in range(200):  # until the child has exec'd (its command line is the parent's until then)
        if "marker-of-the-component" in (cli.command_line(own.pid) or ""):
            break
        time.sleep(0.02)
    (tmp_path / "c.pid").write_text(f"{own.pid}\n")
    component = cli.Component("c", (), lambda: False, tmp_path / "x.log", ("c.pid",),
                              signature=("marker-of-the-component",))  # fmt: skip
    cli.stop_component(component)
    assert own.wait(5) is not None


def test_flink_config_restricts_cors_to_the_web_ui_and_hides_the_gateway(flink_conf: dict[str, str]) -> None:
    conf = flink_conf
    assert conf["web.access-control-allow-origin"] == f'"http://127.0.0.1:{cli.PORTS["flink_rest"]}"'
    assert int(conf["sql-gateway.endpoint.rest.port"]) == cli.PORTS["sql_gateway_backend"] != cli.PORTS["sql_gateway"]


def _stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at an empty stack dir (nothing runs there: no PID files, no ports of its own).

    :param tmp_path: pytest's temporary directory
    :param monkeypatch: pytest's monkeypatch
    """
    stack = tmp_path / "stack dir"
    for name, path in {
        "STACK": stack,
        "STATE": stack / "state",
        "LOGS": stack / "logs",
        "RUN": stack / "run",
        "AIRFLOW_HOME": stack / "airflow",
        "FLINK_HOME": stack / "flink",
    }.items():
        monkeypatch.setattr(cli, name, path)
    monkeypatch.setattr(cli, "PORTS", {name: 1 for name in cli.PORTS})  # nothing listens on port 1
    return stack


def test_iceberg_catalog_is_created_under_the_stack_dir_and_purged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    stack = _stack_dir(tmp_path, monkeypatch)
    catalog = cli.ensure_iceberg_catalog()
    assert catalog.root == stack / cli.ICEBERG["dir"]
    assert catalog.db.is_file() and catalog.warehouse.is_dir()
    with sqlite3.connect(catalog.db) as db:  # an empty database: Iceberg creates its tables on first use
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
        db.execute("CREATE TABLE kept (x)")
    cli.ensure_iceberg_catalog()  # a second `up` keeps the catalog
    with sqlite3.connect(catalog.db) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("kept",)]
    (catalog.warehouse / "ns" / "t").mkdir(parents=True)

    cli.cmd_down(purge=False)
    assert catalog.db.is_file()
    cli.cmd_down(purge=True)
    assert not catalog.root.exists() and not catalog.db.exists()


def test_iceberg_settings_for_flink_and_pyiceberg_name_the_same_files(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = cli.iceberg_catalog(Path("/data/ice"))
    assert catalog.flink_options() == {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "uri": f"jdbc:sqlite:/data/ice/{cli.ICEBERG['catalog_db']}",
        "warehouse": f"file:///data/ice/{cli.ICEBERG['warehouse']}",
        "jdbc.schema-version": "V1",
    }
    assert catalog.sqlalchemy_uri == f"sqlite:////data/ice/{cli.ICEBERG['catalog_db']}"
    env = catalog.env()
    assert env["FLINK_STACK_ICEBERG_CATALOG_NAME"] == cli.ICEBERG["catalog_name"]
    assert env["FLINK_STACK_ICEBERG_CATALOG_URI"] == catalog.flink_options()["uri"]
    assert env["FLINK_STACK_ICEBERG_WAREHOUSE"] == catalog.flink_options()["warehouse"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dir", "/var/iceberg"),
        ("dir", "../elsewhere"),
        ("dir", ""),
        ("catalog_db", "sub/catalog.db"),
        ("warehouse", ".."),
    ],
)
def test_iceberg_paths_outside_the_stack_dir_are_refused(key: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.ICEBERG, key, value)
    with pytest.raises(cli.StackError, match=rf"\[iceberg\] {key} = "):
        cli.iceberg_catalog()


def test_env_survives_the_shell_with_spaces_and_json(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    stack = tmp_path / "a stack dir"
    script = (
        f'eval "$({sys.executable} {cli.ROOT / "stack" / "cli.py"} env)"; '
        'printf "%s\\n%s\\n" "$FLINK_STACK_ICEBERG_CATALOG_OPTIONS" "$FLINK_STACK_ICEBERG_SQLALCHEMY_URI"'
    )
    out = subprocess.run(["bash", "-c", script], env={**os.environ, "FLINK_STACK_DIR": str(stack)},
                         capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    catalog = cli.iceberg_catalog(stack / cli.ICEBERG["dir"])
    assert json.loads(out[0]) == catalog.flink_options()
    assert out[1] == catalog.sqlalchemy_uri
    assert " " in out[1]


def _jars(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(name)
    (folder / ".versions").write_text(folder.name)
    return folder


def _wheel(tmp_path: Path) -> Path:
    pyflink = tmp_path / "pyflink"
    for sub in ("bin", "lib", "opt", "plugins", "conf"):
        (pyflink / sub).mkdir(parents=True)
    (pyflink / "lib" / "flink-dist-2.1.3.jar").write_text("dist")
    (pyflink / "opt" / "flink-python-2.1.3.jar").write_text("python")
    (pyflink / "bin" / "jobmanager.sh").write_text("#!/bin/sh\n")
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        (pyflink / "conf" / name).write_text("# log4j\n")
    (pyflink / "conf" / "config.yaml").write_text("env:\n  java:\n    opts:\n      all: --add-opens=x=ALL-UNNAMED\n")
    return pyflink


def test_flink_home_gets_the_iceberg_jars_in_lib_and_records_what_flink_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _stack_dir(tmp_path, monkeypatch)
    (stack / "run").mkdir(parents=True)
    pyflink = _wheel(tmp_path)
    flink = _jars(tmp_path / "jars" / "flink", "flink-sql-gateway-2.1.3.jar", "flink-connector-kafka-5.0.0-2.1.jar")
    iceberg = _jars(
        tmp_path / "jars" / "iceberg",
        "iceberg-flink-runtime-2.1-1.11.0.jar",
        "hadoop-client-api-3.4.2.jar",
        "hadoop-client-runtime-3.4.2.jar",
        "sqlite-jdbc-3.51.1.0.jar",
    )

    cli.assemble_flink_home(pyflink, [flink])
    home = stack / "flink"
    assert sorted(p.name for p in (home / "opt").iterdir()) == ["flink-python-2.1.3.jar", "flink-sql-gateway-2.1.3.jar"]
    # A Flink started now records lib/; jars added to lib/ later are named as missing from it.
    monkeypatch.setattr(cli, "run", lambda cmd, env=None, cwd=None: None)
    cli.flink_script("flink-jobmanager")()
    assert cli.lib_drift("jobmanager.sh") is None
    assert "started before" in str(cli.lib_drift("taskmanager.sh"))

    cli.assemble_flink_home(pyflink, [flink, iceberg])
    assert cli.lib_jars() == sorted(
        [
            "flink-connector-kafka-5.0.0-2.1.jar",
            "flink-dist-2.1.3.jar",
            "hadoop-client-api-3.4.2.jar",
            "hadoop-client-runtime-3.4.2.jar",
            "iceberg-flink-runtime-2.1-1.11.0.jar",
            "sqlite-jdbc-3.51.1.0.jar",
        ]
    )
    assert (home / "lib" / "sqlite-jdbc-3.51.1.0.jar").resolve() == iceberg / "sqlite-jdbc-3.51.1.0.jar"
    assert sorted(p.name for p in home.iterdir() if p.name.startswith(".")) == [".assembled"]  # no staging left
    assert cli.lib_drift("jobmanager.sh") == (
        "started without hadoop-client-api-3.4.2.jar, hadoop-client-runtime-3.4.2.jar, "
        "iceberg-flink-runtime-2.1-1.11.0.jar, sqlite-jdbc-3.51.1.0.jar (added to lib/ since)"
    )


def test_a_jar_fetched_by_two_profiles_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stack_dir(tmp_path, monkeypatch)
    flink = _jars(tmp_path / "jars" / "flink", "slf4j-api-2.0.17.jar")
    iceberg = _jars(tmp_path / "jars" / "iceberg", "slf4j-api-2.0.17.jar")
    with pytest.raises(cli.StackError, match=r"slf4j-api-2\.0\.17\.jar of .*iceberg is also in"):
        cli.assemble_flink_home(_wheel(tmp_path), [flink, iceberg])


def test_iceberg_maven_profile_gets_every_property_it_needs() -> None:
    import re

    pom = (cli.ROOT / "stack" / "maven" / "pom.xml").read_text()
    profile = pom[pom.index("<id>iceberg</id>") :]
    profile = profile[: profile.index("</profile>")]
    used = set(re.findall(r"\$\{([\w.]+)\}", profile))
    props = cli.iceberg_maven_properties()
    assert used == set(props)
    assert props["flink.minor.version"] == ".".join(cli.VERSIONS["flink"].split(".")[:2])
    assert re.findall(r"<artifactId>([^<]+)</artifactId>\s*<version>", profile) == [
        "iceberg-flink-runtime-${flink.minor.version}",
        "hadoop-client-api",
        "hadoop-client-runtime",
        "sqlite-jdbc",
    ]


def test_env_gives_every_connection_the_dags_read_as_airflow_conn_variables(tmp_path: Path) -> None:
    """`airflow dags test` and `make airflow-ui` read the observability DAG's SMTP connection and the DLQ watcher's
    Kafka connection from the environment: each parses as an Airflow connection with what its reader needs."""
    import os
    import subprocess
    import sys

    from airflow.models.connection import Connection

    out = subprocess.run([sys.executable, str(cli.ROOT / "stack" / "cli.py"), "env"], capture_output=True, text=True,
                         check=True, env={**os.environ, "FLINK_STACK_DIR": str(tmp_path)}).stdout  # fmt: skip
    script = f"{out}\nenv -0"
    shell = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env={}).stdout.decode()
    env = dict(line.split("=", 1) for line in shell.split("\0") if "=" in line)
    conns = {
        key.removeprefix("AIRFLOW_CONN_").lower(): Connection.from_json(value, conn_id=key)
        for key, value in env.items()
        if key.startswith("AIRFLOW_CONN_")
    }
    assert set(cli.CONNECTIONS) <= set(conns)
    smtp = conns["smtp_alerts"]
    assert (smtp.conn_type, smtp.host, smtp.port) == ("smtp", cli.HOST, cli.PORTS["smtp"])
    assert smtp.extra_dejson["from_email"] and smtp.extra_dejson["disable_ssl"] is True
    watcher = conns["kafka_dlq_watcher"].extra_dejson
    assert conns["kafka_dlq_watcher"].conn_type == "kafka"
    assert watcher["bootstrap.servers"] == f"{cli.HOST}:{cli.PORTS['kafka']}"
    assert watcher["group.id"] and watcher["auto.offset.reset"] == "earliest"
    assert int(watcher["topic.metadata.refresh.interval.ms"]) <= 10_000  # a new run's DLQ topic is found quickly
