"""The reference docs stay true: every snippet parses and is quoted verbatim, every operator and sensor has a
how-to, and every public parameter of every operator and sensor (from its signature) is documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path

import pytest
from airflow.sdk import BaseOperator

import airflow_flink_provider.operators
import airflow_flink_provider.sensors
from airflow_flink_provider.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "reference"
EXAMPLES = ROOT / "docs" / "examples"
_SNIPPET = re.compile(r"^[ \t]*# \[START (?P<name>howto_\w+)\]\n(?P<body>.*?)^[ \t]*# \[END (?P=name)\]", re.S | re.M)
_INCLUDE = re.compile(r"<!-- snippet: (?P<path>\S+) (?P<name>\w+) -->\n```python\n(?P<code>.*?)```", re.S)


def snippets() -> dict[str, str]:
    """``{name: dedented code}`` of every ``# [START howto_...]`` block of docs/examples."""
    found: dict[str, str] = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        for match in _SNIPPET.finditer(path.read_text()):
            assert match["name"] not in found, f"snippet {match['name']} is defined twice"
            found[match["name"]] = textwrap.dedent(match["body"])
    return found


def public_classes() -> list[type[BaseOperator]]:
    """Every operator and sensor class of the provider's operators/ and sensors/ packages (not private ones)."""
    classes: dict[str, type[BaseOperator]] = {}
    for package in (airflow_flink_provider.operators, airflow_flink_provider.sensors):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for name, cls in vars(module).items():
                if (
                    inspect.isclass(cls)
                    and issubclass(cls, BaseOperator)
                    and cls.__module__ == module.__name__
                    and not name.startswith("_")
                    and name.endswith(("Operator", "Sensor"))
                    and not inspect.isabstract(cls)
                    and name != "FlinkRestSensor"  # the sensors' shared base, not used alone
                ):
                    classes[name] = cls
    return list(classes.values())


def own_parameters(cls: type[BaseOperator]) -> list[str]:
    """The keyword parameters a class and its provider bases add to ``BaseOperator``'s."""
    names: list[str] = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("airflow_flink_provider") or "__init__" not in vars(klass):
            continue
        for name, parameter in inspect.signature(klass.__init__).parameters.items():
            if name != "self" and parameter.kind is not parameter.VAR_KEYWORD and name not in names:
                names.append(name)
    return names


def section(text: str, title: str) -> str:
    """The text of a ``## title`` section."""
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match is not None, f"no section '## {title}'"
    return match.group(1)


def test_every_example_parses_and_every_snippet_is_valid_python() -> None:
    found = snippets()
    assert found, "no snippets in docs/examples"
    for path in EXAMPLES.glob("*.py"):
        ast.parse(path.read_text(), filename=str(path))
    for name, code in found.items():
        ast.parse(code, filename=name)


def test_the_how_tos_quote_every_snippet_verbatim() -> None:
    found = snippets()
    quoted: set[str] = set()
    for page in sorted((DOCS / "howto").glob("*.md")):
        for match in _INCLUDE.finditer(page.read_text()):
            assert (ROOT / match["path"]).is_file(), f"{page.name}: {match['path']} does not exist"
            assert match["name"] in found, f"{page.name}: no snippet {match['name']} in docs/examples"
            assert match["code"] == found[match["name"]], f"{page.name}: {match['name']} differs from the example"
            quoted.add(match["name"])
    assert quoted == set(found), f"snippets no how-to shows: {sorted(set(found) - quoted)}"
    index = (DOCS / "howto" / "index.md").read_text()
    assert all(page.name in index for page in (DOCS / "howto").glob("*.md") if page.name != "index.md")


def test_every_operator_and_sensor_has_a_how_to_and_a_reference_section() -> None:
    classes = public_classes()
    registered = {m for entry in get_provider_info()["operators"] + get_provider_info()["sensors"]
                  for m in entry["python-modules"]}  # fmt: skip
    assert {cls.__module__ for cls in classes} <= registered | {"airflow_flink_provider.sensors.health"}
    code = "\n".join(snippets().values())
    reference = (DOCS / "operators.md").read_text()
    for cls in classes:
        assert re.search(rf"\b{cls.__name__}\(", code), f"{cls.__name__} has no how-to snippet"
        assert f"## {cls.__name__}\n" in reference, f"{cls.__name__} has no section in operators.md"


def test_every_public_parameter_and_templated_field_is_documented() -> None:
    reference = (DOCS / "operators.md").read_text()
    missing: list[str] = []
    for cls in public_classes():
        text = section(reference, cls.__name__)
        for name in own_parameters(cls):
            if not re.search(rf"^\| `{name}` \|", text, re.M):
                missing.append(f"{cls.__name__}.{name}")
        fields = re.search(r"\*\*Templated fields:\*\* (.*?)\.\n", text, re.S)
        assert fields is not None, f"{cls.__name__}: no templated fields line"
        documented = set(re.findall(r"`(\w+)`", fields.group(1)))
        assert documented == set(cls.template_fields), (cls.__name__, documented, cls.template_fields)
        for what in ("**XCom:**", "**Errors:**", "**Deferrable:**"):
            assert what in text, f"{cls.__name__}: no {what} line"
    assert not missing, f"parameters missing from docs/reference/operators.md: {missing}"


def test_every_connection_field_and_extra_is_documented() -> None:
    text = (DOCS / "connections.md").read_text()
    for conn in get_provider_info()["connection-types"]:
        assert f"`{conn['connection-type']}`" in text
        for extra, spec in conn["conn-fields"].items():
            assert re.search(rf"^\| `{extra}` +\| {re.escape(spec['label'])}", text, re.M), extra
    for extra in ("cert",):  # read by the hooks but not a form field
        assert f"| `{extra}`" in text
    for topic in ("## Authentication", "## TLS", "Bearer", "Basic"):
        assert topic in text
