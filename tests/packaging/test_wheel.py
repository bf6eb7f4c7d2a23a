"""The provider as users install it: a wheel and an sdist built from the sources, the wheel installed into a fresh
venv with Airflow 3.3.2 under the project's constraints, and Airflow's CLI listing what it registers.

Marked ``packaging`` (no stack needed). It runs whenever the ``build`` tool is installed (a dev dependency, so
``make test`` runs it) and reuses uv's package cache, so after the first run it installs without downloads.
"""

from __future__ import annotations

import email
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider import __version__
from tests.packaging import fresh_airflow_env

pytest.importorskip("build", reason="the `build` dev dependency builds the wheel and sdist")

# The first test also builds the dists and the venv (minutes on the loaded 2-core machine).
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints" / "airflow-3.3.2-py3.11.txt"
AIRFLOW_VERSION = "3.3.2"
PACKAGE = "airflow-flink-provider"
DIST_NAME = f"airflow_flink_provider-{__version__}"
UV = str(Path(sys.executable).with_name("uv")) if Path(sys.executable).with_name("uv").exists() else "uv"

# Runs `airflow providers <command> -o json` for several commands in one interpreter (Airflow's CLI entry point,
# as the `airflow` script calls it), which saves an Airflow start-up per command.
CLI_RUNNER = """
import contextlib, io, json, sys
import airflow_flink_provider
from airflow.__main__ import main
target, commands = sys.argv[1], sys.argv[2:]
out = {"__file__": airflow_flink_provider.__file__}
for command in commands:
    sys.argv = ["airflow", "providers", command, "-o", "json"]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main()
    out[command] = buffer.getvalue()
with open(target, "w") as f:
    json.dump(out, f)
"""


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when it fails.

    :param cmd: the command
    :param kwargs: passed to subprocess.run
    """
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600, **kwargs)
    output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{output}"
    return done


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout's files (tracked, or new and not ignored), so the build leaves the work tree alone."""
    listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT).stdout
    copy = tmp_path_factory.mktemp("sources")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def dist(sources: Path) -> dict[str, Path]:
    """The sdist, and the wheel built from that sdist (what ``python -m build`` does), as uv-installed builds."""
    out = sources / "dist"
    _run([sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(sources)])
    return {"wheel": out / f"{DIST_NAME}-py3-none-any.whl", "sdist": out / f"{DIST_NAME}.tar.gz"}


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment with none of this project's Airflow settings, an empty AIRFLOW_HOME and no PYTHONPATH."""
    return fresh_airflow_env(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path], fresh_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with Airflow 3.3.2 and the wheel, under the constraints (uv's cache makes it quick)."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    _run([UV, "venv", "-q", "-p", "3.11", str(path)], env=fresh_env)
    _run([UV, "pip", "install", "-q", "-p", str(path / "bin" / "python"), "-c", str(CONSTRAINTS),
          f"apache-airflow=={AIRFLOW_VERSION}", str(dist["wheel"])], env=fresh_env)  # fmt: skip
    return path


def test_wheel_carries_the_license_notice_metadata_and_every_module(dist: dict[str, Path], sources: Path) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = f"{DIST_NAME}.dist-info"
        assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        assert wheel.read(f"{info}/licenses/NOTICE") == (ROOT / "NOTICE").read_bytes()
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert metadata["Name"] == PACKAGE and metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert sorted(metadata.get_all("License-File")) == ["LICENSE", "NOTICE"]
    assert "Framework :: Apache Airflow :: Provider" in metadata.get_all("Classifier")
    assert "airflow-provider" in metadata["Keywords"].split(",")
    requires = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    assert any(r.startswith("apache-airflow>=3") for r in requires)
    assert not [r for r in requires if r.startswith("pendulum")]
    assert "[apache_airflow_provider]\nprovider_info = airflow_flink_provider.get_provider_info:get_provider_info" in (
        entry_points
    )
    # Every module of the package is in the wheel, and nothing from outside it.
    modules = {p.relative_to(sources).as_posix() for p in (sources / "airflow_flink_provider").rglob("*.py")}
    assert modules and modules == {n for n in names if n.endswith(".py")}


def test_sdist_carries_the_license_notice_and_changelog(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name.removeprefix(f"{DIST_NAME}/") for name in sdist.getnames()}
        notice = sdist.extractfile(f"{DIST_NAME}/NOTICE")
        assert notice is not None and notice.read() == (ROOT / "NOTICE").read_bytes()
    assert {"LICENSE", "NOTICE", "CHANGELOG.md", "README.md", "pyproject.toml",
            "airflow_flink_provider/__init__.py"} <= names  # fmt: skip
    assert not [name for name in names if name.startswith(("tests/", "dags/", "stack/", ".stack"))]


def test_airflow_in_a_fresh_venv_registers_the_installed_wheel(
    venv: Path, fresh_env: dict[str, str], tmp_path: Path
) -> None:
    def provider_json(text: str) -> Any:
        return json.loads(text[text.index("[") :])

    # `airflow providers list` through the venv's own console script.
    listed = _run([str(venv / "bin" / "airflow"), "providers", "list", "-o", "json"], env=fresh_env, cwd=tmp_path)
    providers = {p["package_name"]: p for p in provider_json(listed.stdout)}
    assert providers[PACKAGE]["version"] == __version__

    # hooks, links, triggers and widgets through the same CLI entry point, in one interpreter.
    runner, result = tmp_path / "runner.py", tmp_path / "out.json"
    runner.write_text(CLI_RUNNER)
    _run([str(venv / "bin" / "python"), str(runner), str(result), "hooks", "links", "triggers", "widgets"],
         env=fresh_env, cwd=tmp_path)  # fmt: skip
    out: dict[str, str] = json.loads(result.read_text())
    # The provider came from the wheel installed in the fresh venv, not from this checkout.
    assert Path(out["__file__"]).is_relative_to(venv), out["__file__"]
    hooks = {h["connection_type"]: h["class"] for h in provider_json(out["hooks"])}
    assert hooks["flink"] == "airflow_flink_provider.hooks.flink_rest.FlinkRestHook"
    assert hooks["flink_sql_gateway"] == "airflow_flink_provider.hooks.sql_gateway.FlinkSqlGatewayHook"
    links = {link["extra_link_class_name"] for link in provider_json(out["links"])}
    assert "airflow_flink_provider.links.flink_ui.FlinkJobLink" in links
    triggers = {t["class"]: t["package_name"] for t in provider_json(out["triggers"])}
    assert triggers["airflow_flink_provider.triggers.job_state"] == PACKAGE
    widgets = {w["connection_parameter_name"] for w in provider_json(out["widgets"])}
    assert {"extra__flink__auth_type", "extra__flink_sql_gateway__verify"} <= widgets
