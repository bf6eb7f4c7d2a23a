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


def test_generated_flink_config_binds_loopback_and_has_slots_and_state_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel_conf = tmp_path / "wheel-conf"
    wheel_conf.mkdir()
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        (wheel_conf / name).write_text("# log4j\n")
    opens = "--add-opens=java.base/java.util=ALL-UNNAMED"
    (wheel_conf / "config.yaml").write_text(f"env:\n  java:\n    opts:\n      all: {opens}\n")
    home = tmp_path / "flink"
    monkeypatch.setattr(cli, "FLINK_HOME", home)
    cli.write_flink_conf(wheel_conf)
    conf = dict(line.split(": ", 1) for line in (home / "conf" / "config.yaml").read_text().splitlines()[1:])
    assert conf["rest.bind-address"] == '"127.0.0.1"'
    assert conf["sql-gateway.endpoint.rest.address"] == '"127.0.0.1"'
    assert int(conf["taskmanager.numberOfTaskSlots"]) >= 4
    assert conf["execution.checkpointing.dir"].startswith('"file:///')
    assert conf["execution.checkpointing.savepoint-dir"].endswith('/state/savepoints"')
    assert conf["restart-strategy.type"] == '"exponential-delay"'
    assert conf["env.java.opts.all"] == f'"{opens}"'


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


def test_flink_config_restricts_cors_to_the_web_ui_and_hides_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel_conf = tmp_path / "wheel-conf"
    wheel_conf.mkdir()
    for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties", "log4j-session.properties"):
        (wheel_conf / name).write_text("# log4j\n")
    (wheel_conf / "config.yaml").write_text(
        "env:\n  java:\n    opts:\n      all: --add-opens=java.base/x=ALL-UNNAMED\n"
    )
    monkeypatch.setattr(cli, "FLINK_HOME", tmp_path / "flink")
    cli.write_flink_conf(wheel_conf)
    conf = dict(
        line.split(": ", 1) for line in (tmp_path / "flink" / "conf" / "config.yaml").read_text().splitlines()[1:]
    )
    assert conf["web.access-control-allow-origin"] == f'"http://127.0.0.1:{cli.PORTS["flink_rest"]}"'
    assert int(conf["sql-gateway.endpoint.rest.port"]) == cli.PORTS["sql_gateway_backend"] != cli.PORTS["sql_gateway"]
