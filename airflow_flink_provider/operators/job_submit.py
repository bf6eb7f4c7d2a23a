"""Submit a jar or a PyFlink job through the Flink REST API, exactly once per task run."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.configuration import conf

from airflow_flink_provider.links.flink_ui import FlinkJobLink
from airflow_flink_provider.openlineage.mixin import FlinkOpenLineageMixin
from airflow_flink_provider.operators.common import (
    check_slots,
    converge_on_job,
    log_job_url,
    parse_parallelism,
    push_job_id,
    refuse_orphaned_jobs,
    require_job_id,
    shown,
    validate_if_ended,
    validate_snapshot_path,
    wait_for_job,
)
from airflow_flink_provider.protocol.errors import FlinkError
from airflow_flink_provider.protocol.job_ids import FINGERPRINT_LENGTH, submission_purpose
from airflow_flink_provider.protocol.job_state import ALIVE, JobStateCheck
from airflow_flink_provider.protocol.redaction import redact
from airflow_flink_provider.protocol.rest import PYTHON_DRIVER
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger, error_from_event

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

_JAVA_CLASS = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_PY_MODULE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_JAR_ID = re.compile(r"[\w.-]+\.jar")
_CONFIG_KEY = re.compile(r"[\w$][\w.$-]*")
# PythonDriver only parses -py/-pym; these options belong to the `flink run` CLI. Given as program
# arguments they would reach the user's script (or, before `--`, confuse the driver's parser).
_DRIVER_FLAGS = frozenset(
    {
        "-py",
        "-pym",
        "-pyfs",
        "-pyreq",
        "-pyarch",
        "-pyexec",
        "-pyclientexec",
        "--python",
        "--pyModule",
        "--pyFiles",
        "--pyRequirements",
        "--pyArchives",
        "--pyExecutable",
        "--pyClientExecutable",
    }
)
_PY_FILES_SUFFIXES = (".py", ".zip", ".whl", ".egg", ".jar")
UPLOADS_KEY = "flink_jar_uploads"
"""Task state store key: file names this task instance's tries uploaded jars under, deleted by the next try."""


class _Adopted(Exception):
    """Raised out of a submission to attach to a live job of the same name instead (``if_running='attach'``)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def _content_hash(path: str) -> str:
    """A short hash of a local file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def _recorded_uploads(context: Context) -> list[str]:
    """Jar file names an earlier try recorded before uploading (and may not have deleted: it was killed)."""
    store = context.get("task_state_store")
    value = store.get(UPLOADS_KEY) if store is not None else None
    return [str(name) for name in value] if isinstance(value, list) else []


def _record_uploads(context: Context, names: list[str]) -> None:
    """Record the names jars are uploaded under, before uploading, so a later try can delete them (none: forget)."""
    store = context.get("task_state_store")
    if store is None:
        return
    if names:
        store.set(UPLOADS_KEY, list(names))
    elif _recorded_uploads(context):
        store.delete(UPLOADS_KEY)


@dataclass
class Submission:
    """A validated submission: everything ``run_jar`` needs, checked before any HTTP call.

    :param jar_path: local jar to upload, if any.
    :param jar_id: an already uploaded jar, if any.
    :param python_jar: the flink-python jar to upload for a PyFlink job, if any.
    :param entry_class: the main class.
    :param program_args: arguments for the main class, in order.
    :param parallelism: the job's default parallelism.
    :param flink_configuration: per-job Flink options.
    :param job_id: an explicit job id, if the user gave one.
    """

    jar_path: str | None = None
    jar_id: str | None = None
    python_jar: str | None = None
    entry_class: str | None = None
    program_args: list[str] = field(default_factory=list)
    parallelism: int | None = None
    flink_configuration: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None


def find_python_jar() -> str | None:
    """The flink-python jar shipped with an installed ``pyflink`` (``opt/`` or ``lib/``), if any."""
    spec = importlib.util.find_spec("pyflink")
    for base in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("opt", "lib"):
            jars = sorted(Path(base, sub).glob("flink-python*.jar"))
            if jars:
                return str(jars[-1])
    return None


def _local_file(value: Any, what: str, suffixes: tuple[str, ...]) -> str:
    """The absolute path of a readable local file with one of the suffixes."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty path, got {value!r}")
    path = Path(value).expanduser()
    if not path.name.endswith(suffixes):
        raise ValueError(f"{what} must end with {' or '.join(suffixes)}: {value!r}")
    if not path.is_file():
        raise ValueError(f"{what} does not exist or is not a file: {value!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} is not readable: {value!r}")
    return str(path.resolve())


def _local_path(value: Any, what: str) -> str:
    """The absolute path of a readable local file or directory usable in ``python.files``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} entries must be non-empty paths, got {value!r}")
    path = Path(value).expanduser()
    if "," in value:
        raise ValueError(f"{what} paths must not contain commas (Flink separates them with commas): {value!r}")
    if path.is_dir():
        pass
    elif not path.is_file():
        raise ValueError(f"{what} entry does not exist: {value!r}")
    elif not path.name.endswith(_PY_FILES_SUFFIXES):
        raise ValueError(f"{what} files must be one of {', '.join(_PY_FILES_SUFFIXES)}: {value!r}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{what} entry is not readable: {value!r}")
    return str(path.resolve())


def _string_list(value: Any, what: str) -> list[str]:
    """A list of strings from user input (a bare string is refused: it is almost always a mistake)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} must be a list of strings, got {shown(value)}")
    items = list(value)
    for item in items:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise ValueError(f"{what} items must be strings, got {shown(item)}")
        if "\x00" in str(item):
            raise ValueError(f"{what} items must not contain NUL characters")
    return [str(item) for item in items]


def _configuration(value: Any) -> dict[str, str]:
    """Per-job Flink options as ``{key: string}``; values must be scalars."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"flink_configuration must be a mapping of option -> value, got {shown(value)}")
    options: dict[str, str] = {}
    for key, option in value.items():
        if not isinstance(key, str) or not _CONFIG_KEY.fullmatch(key):
            raise ValueError(f"flink_configuration has an invalid option name: {key!r}")
        if isinstance(option, bool):
            options[key] = "true" if option else "false"
        elif isinstance(option, (str, int, float)):
            options[key] = str(option)
        else:
            raise ValueError(f"flink_configuration[{key!r}] must be a string, number or boolean, got {shown(option)}")
    return options


class FlinkJobSubmitOperator(FlinkOpenLineageMixin, BaseOperator):
    """Submit a Flink job through the REST API: a jar with its entry class, or a PyFlink program.

    Exactly one of ``jar``, ``jar_id``, ``py_file`` and ``py_module`` says what to run. PyFlink programs run
    through the ``PythonDriver`` of the flink-python jar, uploaded from ``python_jar`` (default: the one next
    to an installed ``pyflink``); ``py_file`` must be readable at the same path by the JobManager (same host
    or shared volume), and ``py_files``/``python_requirements`` become ``python.files``/
    ``python.requirements``.

    Every argument is validated before any HTTP call: a PythonDriver given bad arguments calls
    ``System.exit`` and takes the JobManager down with it.

    Exactly one job per task instance: the job id is decided before submit from the DAG, task, run, map
    index and a fingerprint of what is submitted (:meth:`fingerprint_fields`), or is ``job_id``, and
    recorded in the task state store. A live job under it (an earlier or concurrent try's) is attached to;
    a "duplicate" answer or a lost answer is resolved by looking the id up; ``if_ended`` decides about a job
    that already ended. The jar is uploaded under a unique file name and deleted once the job is submitted.
    See "Job identity" in ``docs/provider-design.md``. Returns the job id (XCom).

    :param jar: local jar file to upload (templated).
    :param jar_id: id of a jar already uploaded to the cluster (templated).
    :param entry_class: main class of the jar (templated); not for PyFlink jobs.
    :param py_file: PyFlink program file, ``.py`` (templated).
    :param py_module: PyFlink program module, e.g. ``jobs.enrich`` (templated); usually shipped with
        ``py_files``.
    :param py_files: files or directories (``.py``, ``.zip``, ``.whl``, ``.egg``) put on the Python path
        (templated).
    :param python_requirements: a requirements.txt to install, optionally ``file#cached_dir``
        (templated).
    :param python_jar: the flink-python jar (templated).
    :param program_args: arguments passed to the program (templated).
    :param parallelism: default parallelism of the job.
    :param savepoint_path: restore from this savepoint (templated).
    :param allow_non_restored_state: skip savepoint state that maps to no operator (only with a savepoint).
    :param claim_mode: ``CLAIM`` or ``NO_CLAIM`` for the restore (only with a savepoint).
    :param flink_configuration: per-job Flink options (templated).
    :param job_name: the job's name (``pipeline.name``) (templated); also used to find a running job of
        the same name.
    :param if_running: when a job named ``job_name`` already runs under another id: ``fail`` or
        ``attach`` to it.
    :param if_ended: what a new try (a retry or a clear) does when this task's job already FINISHED (also
        after a stop with a savepoint), was CANCELED or FAILED: ``resubmit`` it under the next generation's
        id (default), ``reuse`` its outcome (FINISHED succeeds, FAILED/CANCELED fail with the root cause), or
        ``fail``.
    :param job_id: an explicit job id (32 hex digits) instead of the deterministic one (templated).
    :param wait_for_running: return only once all the job's tasks run (or it finished).
    :param wait_timeout: seconds to wait for that.
    :param poll_interval: seconds between job state polls.
    :param deferrable: wait in the triggerer instead of on a worker; default: Airflow's
        ``[operators] default_deferrable``.
    :param cancel_on_kill: cancel the job when the task is killed.
    :param delete_uploaded_jar: delete the uploaded ``jar`` from the cluster once the job is submitted.
    :param flink_conn_id: the ``flink`` REST connection.
    """

    template_fields: Sequence[str] = (
        "jar",
        "jar_id",
        "entry_class",
        "py_file",
        "py_module",
        "py_files",
        "python_requirements",
        "python_jar",
        "program_args",
        "savepoint_path",
        "flink_configuration",
        "job_name",
        "job_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"flink_configuration": "json", "program_args": "json"}
    ui_color = "#e6f0fa"
    operator_extra_links = (FlinkJobLink(),)

    def __init__(
        self,
        *,
        jar: str | None = None,
        jar_id: str | None = None,
        entry_class: str | None = None,
        py_file: str | None = None,
        py_module: str | None = None,
        py_files: Sequence[str] | None = None,
        python_requirements: str | None = None,
        python_jar: str | None = None,
        program_args: Sequence[str] | None = None,
        parallelism: int | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
        claim_mode: str | None = None,
        flink_configuration: Mapping[str, Any] | None = None,
        job_name: str | None = None,
        if_running: str = "fail",
        if_ended: str = "resubmit",
        job_id: str | None = None,
        wait_for_running: bool = False,
        wait_timeout: float = 600.0,
        poll_interval: float = 5.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        cancel_on_kill: bool = False,
        delete_uploaded_jar: bool = True,
        flink_conn_id: str = "flink_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_running not in ("fail", "attach"):
            raise ValueError(f"if_running must be 'fail' or 'attach', got {if_running!r}")
        self.if_ended = validate_if_ended(if_ended)
        self.jar = jar
        self.jar_id = jar_id
        self.entry_class = entry_class
        self.py_file = py_file
        self.py_module = py_module
        self.py_files = py_files
        self.python_requirements = python_requirements
        self.python_jar = python_jar
        self.program_args = program_args
        self.parallelism = parallelism
        self.savepoint_path = savepoint_path
        self.allow_non_restored_state = allow_non_restored_state
        self.claim_mode = claim_mode
        self.flink_configuration = flink_configuration
        self.job_name = job_name
        self.if_running = if_running
        self.job_id = job_id
        self.wait_for_running = wait_for_running
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.cancel_on_kill = cancel_on_kill
        self.delete_uploaded_jar = delete_uploaded_jar
        self.flink_conn_id = flink_conn_id
        self._job_id: str | None = None
        self._uploaded_id = ""

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the templates, then register the secrets in the arguments and configuration with the masker.

        Airflow stores the rendered fields and logs from here on, so a password in an argument
        (``--password x``) or an option shows as ``***`` in the rendered-fields view and in the task log.
        """
        from airflow_flink_provider.hooks.base import mask_secrets_in

        super().render_template_fields(context, jinja_env)
        mask_secrets_in(self.program_args, self.flink_configuration)

    def _rest_hook(self) -> FlinkRestHook:
        from airflow_flink_provider.hooks.flink_rest import FlinkRestHook

        return FlinkRestHook(flink_conn_id=self.flink_conn_id)

    def validate(self) -> Submission:
        """Check every (rendered) argument locally and build the submission; no HTTP call is made.

        :raises ValueError: naming the first bad argument.
        """
        given = [name for name in ("jar", "jar_id", "py_file", "py_module") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "Give exactly one of jar, jar_id, py_file and py_module"
                + (f" (got {', '.join(given)})" if given else "")
            )
        python = given[0] in ("py_file", "py_module")
        sub = Submission(
            parallelism=parse_parallelism(self.parallelism, "parallelism"),
            flink_configuration=_configuration(self.flink_configuration),
            job_id=require_job_id(self.job_id) if self.job_id else None,
        )
        user_args = _string_list(self.program_args, "program_args")
        if self.entry_class is not None and not (
            isinstance(self.entry_class, str) and _JAVA_CLASS.fullmatch(self.entry_class)
        ):
            raise ValueError(f"entry_class must be a Java class name like com.example.Main, got {self.entry_class!r}")
        if python:
            if self.entry_class:
                raise ValueError(f"entry_class is set by the operator for PyFlink jobs ({PYTHON_DRIVER})")
            flags = [arg for arg in user_args if arg in _DRIVER_FLAGS]
            if flags:
                raise ValueError(
                    f"program_args contain PythonDriver/CLI options {flags}: use the operator's py_file, "
                    "py_module, py_files and python_requirements parameters instead"
                )
            python_jar = self.python_jar or find_python_jar()
            if not python_jar:
                raise ValueError("python_jar is required: no pyflink with a flink-python jar is installed here")
            sub.python_jar = _local_file(python_jar, "python_jar", (".jar",))
            sub.entry_class = PYTHON_DRIVER
            if self.py_file:
                entry = ["-py", _local_file(self.py_file, "py_file", (".py",))]
            else:
                if not isinstance(self.py_module, str) or not _PY_MODULE.fullmatch(self.py_module):
                    raise ValueError(f"py_module must be a dotted Python module name, got {self.py_module!r}")
                entry = ["-pym", self.py_module]
            # `--` ends the driver's options: the user's arguments reach the program untouched.
            sub.program_args = [*entry, *(["--", *user_args] if user_args else [])]
            self._python_options(sub)
        else:
            if self.py_files or self.python_requirements:
                raise ValueError("py_files and python_requirements are only for PyFlink jobs (py_file/py_module)")
            if self.jar:
                sub.jar_path = _local_file(self.jar, "jar", (".jar",))
            elif not isinstance(self.jar_id, str) or not _JAR_ID.fullmatch(self.jar_id):
                raise ValueError(
                    f"jar_id must be the id of an uploaded jar (e.g. '<uuid>_job.jar'), got {self.jar_id!r}"
                )
            else:
                sub.jar_id = self.jar_id
            sub.entry_class = self.entry_class
            sub.program_args = user_args
        if self.savepoint_path:
            validate_snapshot_path(self.savepoint_path, "savepoint_path")
        if self.claim_mode is not None and self.claim_mode not in ("CLAIM", "NO_CLAIM"):
            raise ValueError(f"claim_mode must be 'CLAIM' or 'NO_CLAIM', got {self.claim_mode!r}")
        if self.job_name is not None:
            if not isinstance(self.job_name, str) or not self.job_name.strip():
                raise ValueError(f"job_name must be a non-empty string, got {self.job_name!r}")
            sub.flink_configuration["pipeline.name"] = self.job_name
        if sub.parallelism is None and "parallelism.default" in sub.flink_configuration:
            sub.parallelism = parse_parallelism(sub.flink_configuration["parallelism.default"], "parallelism.default")
        return sub

    def _python_options(self, sub: Submission) -> None:
        """Turn ``py_files`` and ``python_requirements`` into the Flink options PythonDriver reads."""
        py_files = [_local_path(path, "py_files") for path in _string_list(self.py_files, "py_files")]
        if py_files:
            if "python.files" in sub.flink_configuration:
                raise ValueError("Give python files either as py_files or as flink_configuration['python.files']")
            sub.flink_configuration["python.files"] = ",".join(py_files)
        if self.python_requirements:
            if "python.requirements" in sub.flink_configuration:
                raise ValueError("Give requirements either as python_requirements or in flink_configuration")
            if not isinstance(self.python_requirements, str):
                raise ValueError(f"python_requirements must be a path, got {self.python_requirements!r}")
            requirements, _, cache = self.python_requirements.partition("#")
            value = _local_file(requirements, "python_requirements", (".txt", ".in"))
            if cache:
                if not Path(cache).is_dir():
                    raise ValueError(f"python_requirements cache directory does not exist: {cache!r}")
                value = f"{value}#{Path(cache).resolve()}"
            sub.flink_configuration["python.requirements"] = value

    def fingerprint_fields(self, sub: Submission) -> dict[str, Any]:
        """What identifies this submission: its job id changes when any of these do.

        The jar's and the ``py_file``'s contents are hashed (an uploaded ``jar_id`` and a ``py_module``
        count by name); ``py_files`` and ``python_requirements`` count by path, as they reach Flink inside
        ``flink_configuration``. The flink-python jar counts by file name (its Flink version).

        :param sub: the validated submission (:meth:`validate`).
        """
        return {
            "jar": _content_hash(sub.jar_path) if sub.jar_path else sub.jar_id,
            "python_jar": Path(sub.python_jar).name if sub.python_jar else None,
            "py_file": _content_hash(self.py_file) if sub.python_jar and self.py_file else None,
            "py_module": self.py_module if sub.python_jar else None,
            "entry_class": sub.entry_class,
            "program_args": sub.program_args,
            "job_name": self.job_name,
            "parallelism": sub.parallelism,
            "flink_configuration": sub.flink_configuration,
            "savepoint_path": self.savepoint_path or None,
            "allow_non_restored_state": bool(self.allow_non_restored_state) if self.savepoint_path else None,
            "claim_mode": self.claim_mode if self.savepoint_path else None,
        }

    def execute(self, context: Context) -> str:
        """Validate, find or submit the job (see the class docstring), optionally wait until it runs."""
        sub = self.validate()
        rest = self._rest_hook()
        purpose = submission_purpose(self.fingerprint_fields(sub))
        refuse_orphaned_jobs(rest, context, {purpose}, self.log)
        self._delete_jars(rest, _recorded_uploads(context), "left by an earlier try")
        first_submit = True
        uploads: list[str] = []

        def submit(job_id: str) -> str:
            nonlocal first_submit
            if first_submit:
                first_submit = False
                if attached := self._attach_by_name(rest):
                    raise _Adopted(attached)
                check_slots(rest, sub.parallelism, self.log)
            return self._submit(context, rest, sub, job_id, uploads)

        try:
            handle = converge_on_job(
                rest, context, purpose, submit, self.log, if_ended=self.if_ended, job_id=sub.job_id
            )
            job_id = handle.job_id
        except _Adopted as adopted:
            job_id = adopted.job_id
        finally:
            if self.delete_uploaded_jar:
                self._delete_jars(rest, uploads, "uploaded by this try")
                _record_uploads(context, [])
        self._job_id = job_id
        push_job_id(context, job_id)
        log_job_url(self.log, self.flink_conn_id, job_id)
        if self.wait_for_running:
            if self.deferrable:
                self.defer(
                    trigger=FlinkJobStateTrigger(
                        job_id=job_id,
                        flink_conn_id=self.flink_conn_id,
                        target_states=("RUNNING", "FINISHED"),
                        poll_interval=self.poll_interval,
                        deadline=time.time() + self.wait_timeout,
                        cancel_on_kill=self.cancel_on_kill,
                    ),
                    method_name="execute_complete",
                    timeout=timedelta(seconds=self.wait_timeout + 60),
                )
            state = wait_for_job(
                rest,
                job_id,
                JobStateCheck.of(("RUNNING", "FINISHED")),
                timeout=self.wait_timeout,
                poll_interval=self.poll_interval,
                log=self.log,
            )
            self.log.info("Flink job %s is %s", job_id, state)
        return job_id

    def _attach_by_name(self, rest: FlinkRestHook) -> str | None:
        """Handle a live job of the same name: fail, or return its id to attach to."""
        if not self.job_name:
            return None
        running = rest.list_jobs(name=self.job_name, states=ALIVE)
        if not running:
            return None
        ids = [str(job.get("jid")) for job in running]
        if self.if_running == "attach":
            self.log.info("A job named %r already runs (%s): attaching to it", self.job_name, ids[0])
            return ids[0]
        raise FlinkError(
            f"A Flink job named {self.job_name!r} is already running: {', '.join(ids)}",
            hint="Stop or cancel it first, or set if_running='attach' to adopt it.",
        )

    def _submit(self, context: Context, rest: FlinkRestHook, sub: Submission, job_id: str, uploads: list[str]) -> str:
        """Run the jar under ``job_id``, uploading it first (once per try) if needed."""
        if sub.jar_path:
            if not uploads:
                # A name unique to this upload: a lost answer is resolved, and the jar deleted, by that name.
                path = Path(sub.jar_path)
                uploads.append(f"{path.stem}-{uuid.uuid4().hex[:12]}{path.suffix}")
                if self.delete_uploaded_jar:
                    _record_uploads(context, uploads)
                self.log.info("Uploading %s as %s", sub.jar_path, uploads[0])
                self._uploaded_id = rest.upload_jar(sub.jar_path, name=uploads[0])
            jar_id = self._uploaded_id
        elif sub.python_jar:
            jar_id = self._python_jar_id(rest, sub.python_jar)
        else:
            assert sub.jar_id is not None
            jar_id = sub.jar_id
        self.log.info(
            "Submitting jar %s (entry class %s, args %s) as job %s",
            jar_id,
            sub.entry_class,
            redact(str(sub.program_args)),
            job_id,
        )
        return rest.run_jar(
            jar_id,
            entry_class=sub.entry_class,
            program_args=sub.program_args,
            parallelism=sub.parallelism,
            savepoint_path=self.savepoint_path or None,
            allow_non_restored_state=self.allow_non_restored_state if self.savepoint_path else None,
            claim_mode=self.claim_mode if self.savepoint_path else None,
            flink_configuration=sub.flink_configuration or None,
            job_id=job_id,
        )

    def _delete_jars(self, rest: FlinkRestHook, names: Sequence[str], whose: str) -> None:
        """Delete every uploaded jar listed under one of ``names`` (a lost upload may have landed twice)."""
        for name in names:
            for jar_id in rest.jars_named(name):
                self.log.info("Deleting jar %s %s", jar_id, whose)
                rest.delete_jar(jar_id)

    def _python_jar_id(self, rest: FlinkRestHook, python_jar: str) -> str:
        """The id of the flink-python jar on the cluster, uploading it only if no jar of that name is there."""
        name = Path(python_jar).name
        for jar in rest.list_jars():
            if jar.get("name") == name:
                return str(jar["id"])
        self.log.info("Uploading %s", python_jar)
        return rest.upload_jar(python_jar)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired: fail with its error or return the job id."""
        error = error_from_event(event)
        if error is not None:
            raise error
        self.log.info("Flink job %s is %s", event.get("job_id"), event.get("state"))
        return str(event["job_id"])

    def on_kill(self) -> None:
        """With ``cancel_on_kill``, cancel the job this try submitted or attached to."""
        if self.cancel_on_kill and self._job_id:
            self.log.info("Task killed: cancelling Flink job %s", self._job_id)
            self._rest_hook().cancel_job(self._job_id)
