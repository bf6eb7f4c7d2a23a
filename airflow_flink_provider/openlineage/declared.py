"""Datasets that a jar or PyFlink program declares next to itself, filled from its program arguments.

A program says what it reads and writes in a JSON file beside it: ``<program>.openlineage.json`` (e.g.
``v1.openlineage.json`` for ``v1.py``), or ``openlineage.json`` in its folder for every program there. For a
``py_module``, the folders of ``py_files`` are searched for the module's path. The file::

    {
      "defaults": {"--bootstrap-servers": "127.0.0.1:9092", "--source-topic": "orders",
                   "--products-path": "data/products.csv"},
      "inputs": [{"kafka_topic": "{--source-topic}", "bootstrap_servers": "{--bootstrap-servers}"},
                 {"file": "{--products-path}"}],
      "outputs": [{"namespace": "kafka://{--bootstrap-servers}", "name": "{--sink-topic}"}]
    }

``{--name}`` is replaced by the value of that program argument (``--name value`` or ``--name=value``), or by
its default. A dataset is ``{"kafka_topic", "bootstrap_servers"}``, ``{"file"}`` (a path or URI; a relative
path is relative to the JSON file's folder) or ``{"namespace", "name"}``. A placeholder with neither a value
nor a default is an error that names it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_flink_provider.openlineage.naming import DatasetName, file_dataset, kafka_datasets

SUFFIX = ".openlineage.json"
FOLDER_FILE = "openlineage.json"
_PLACEHOLDER = re.compile(r"\{(--[A-Za-z0-9_.-]+)\}")


def declaration_for(program: str | None, module: str | None = None, search: Sequence[str] = ()) -> Path | None:
    """The declaration file of a program (see the module docstring), or ``None``.

    :param program: the jar or ``.py`` file.
    :param module: a ``py_module`` (``package.program``), looked up in the ``search`` folders.
    :param search: the ``py_files`` entries.
    """
    candidates: list[Path] = []
    if program:
        path = Path(program)
        candidates += [path.with_name(path.stem + SUFFIX), path.with_name(FOLDER_FILE)]
    if module:
        relative = Path(*module.split("."))
        for folder in (Path(entry) for entry in search):
            candidates += [
                (folder / relative).with_name(relative.name + SUFFIX),
                (folder / relative).parent / FOLDER_FILE,
            ]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def program_arguments(args: Sequence[str]) -> dict[str, str]:
    """``{"--name": value}`` of ``--name value`` and ``--name=value`` arguments (a flag alone maps to "")."""
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = str(args[i])
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            values[key] = value
        elif arg.startswith("--"):
            following = str(args[i + 1]) if i + 1 < len(args) else None
            if following is not None and not following.startswith("--"):
                values[arg] = following
                i += 1
            else:
                values[arg] = ""
        i += 1
    return values


def _fill(template: Any, values: Mapping[str, str], where: Path) -> str:
    if not isinstance(template, str):
        raise ValueError(f"{where}: a dataset field must be a string, got {template!r}")

    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"{where}: {match.group(0)} has no program argument and no default")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(value, template)


def _dataset(entry: Any, values: Mapping[str, str], where: Path) -> list[DatasetName]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: each dataset must be an object, got {entry!r}")
    if "kafka_topic" in entry:
        return kafka_datasets(
            _fill(entry.get("bootstrap_servers"), values, where), _fill(entry["kafka_topic"], values, where)
        )
    if "file" in entry:
        location = _fill(entry["file"], values, where)
        if "://" not in location and not Path(location).is_absolute():
            location = str((where.parent / location).resolve())
        return [file_dataset(location)]
    if "namespace" in entry and "name" in entry:
        return [DatasetName(_fill(entry["namespace"], values, where), _fill(entry["name"], values, where))]
    raise ValueError(f"{where}: a dataset needs kafka_topic, file, or namespace and name; got {sorted(entry)}")


def declared_datasets(declaration: Path, args: Sequence[str]) -> tuple[list[DatasetName], list[DatasetName]]:
    """``(inputs, outputs)`` of a declaration file, filled from the program arguments.

    :param declaration: the JSON file.
    :param args: the program arguments the job was submitted with.
    """
    content = json.loads(declaration.read_text(encoding="utf-8"))
    if not isinstance(content, dict):
        raise ValueError(f"{declaration}: expected a JSON object with inputs and outputs")
    values = {**{str(k): str(v) for k, v in (content.get("defaults") or {}).items()}, **program_arguments(args)}
    inputs = [d for entry in content.get("inputs") or [] for d in _dataset(entry, values, declaration)]
    outputs = [d for entry in content.get("outputs") or [] for d in _dataset(entry, values, declaration)]
    return inputs, outputs
