"""FlinkJobSubmitOperator: argument validation before any HTTP call, idempotent submission, waiting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_flink_provider.operators import common
from airflow_flink_provider.operators.common import STORE_KEY
from airflow_flink_provider.operators.job_submit import PYTHON_DRIVER, UPLOADS_KEY, FlinkJobSubmitOperator
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkDuplicateJobError,
    FlinkError,
    FlinkJobFailedError,
    FlinkResourceError,
    FlinkTimeoutError,
)
from airflow_flink_provider.protocol.job_ids import deterministic_job_id, submission_purpose
from airflow_flink_provider.triggers.job_state import FlinkJobStateTrigger
from tests.unit._flink_fakes import FakeRest, FakeStateStore, FakeTI, deferral, make_context

pytestmark = pytest.mark.unit


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {
        "jar": tmp_path / "job.jar",
        "python_jar": tmp_path / "flink-python-2.1.3.jar",
        "py_file": tmp_path / "job.py",
        "lib": tmp_path / "lib.zip",
        "requirements": tmp_path / "requirements.txt",
        "text": tmp_path / "notes.txt",
    }
    for path in paths.values():
        path.write_text("x")
    (tmp_path / "pkg").mkdir()
    return {name: str(path) for name, path in paths.items()} | {"pkg": str(tmp_path / "pkg")}


class ExplodingRest:
    """A hook that fails the test on any call: validation must happen before HTTP."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"HTTP call {name} made before validation finished")


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> FakeRest:
    """A fake cluster; a lookup for a job after a lost answer does not wait for the job to appear."""
    monkeypatch.setattr(common, "JOB_LOOKUP_TIMEOUT", 0.0)
    return FakeRest()


def make_operator(rest: Any, **kwargs: Any) -> FlinkJobSubmitOperator:
    op = FlinkJobSubmitOperator(task_id="submit", poll_interval=0, **kwargs)
    op._rest_hook = lambda: rest  # type: ignore[method-assign]
    return op


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str]] = [
    ("nothing to run", {}, "exactly one of jar, jar_id, py_file and py_module"),
    ("two programs", {"jar": "{jar}", "py_file": "{py_file}"}, r"exactly one .*\(got jar, py_file\)"),
    ("missing jar", {"jar": "/nope/job.jar"}, "jar does not exist"),
    ("jar is not a jar", {"jar": "{text}"}, "jar must end with .jar"),
    ("jar id with a path", {"jar_id": "../etc/passwd.jar"}, "jar_id must be the id of an uploaded jar"),
    ("jar id without .jar", {"jar_id": "abc_job"}, "jar_id must be the id"),
    ("bad entry class", {"jar": "{jar}", "entry_class": "com.example.Main; rm -rf"}, "entry_class must be a Java"),
    (
        "entry class for python",
        {"py_file": "{py_file}", "entry_class": "a.B", "python_jar": "{python_jar}"},
        "entry_class is set by the operator",
    ),
    ("missing py_file", {"py_file": "/nope/job.py", "python_jar": "{python_jar}"}, "py_file does not exist"),
    ("py_file not .py", {"py_file": "{text}", "python_jar": "{python_jar}"}, r"py_file must end with \.py"),
    ("module syntax", {"py_module": "jobs.1enrich", "python_jar": "{python_jar}"}, "py_module must be a dotted"),
    ("module with dash", {"py_module": "my-job", "python_jar": "{python_jar}"}, "py_module must be a dotted"),
    ("module with option", {"py_module": "-pyfs", "python_jar": "{python_jar}"}, "py_module must be a dotted"),
    ("empty module segment", {"py_module": "a..b", "python_jar": "{python_jar}"}, "py_module must be a dotted"),
    (
        "missing python jar",
        {"py_file": "{py_file}", "python_jar": "/nope/flink-python.jar"},
        "python_jar does not exist",
    ),
    (
        "driver flag in args",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "program_args": ["-pyfs", "x"]},
        "PythonDriver/CLI options",
    ),
    (
        "long driver flag",
        {"py_module": "m", "python_jar": "{python_jar}", "program_args": ["--pyFiles", "x"]},
        "PythonDriver/CLI options",
    ),
    ("args as a string", {"jar": "{jar}", "program_args": "--input x"}, "program_args must be a list"),
    ("args with NUL", {"jar": "{jar}", "program_args": ["a\x00b"]}, "NUL"),
    ("args with a dict", {"jar": "{jar}", "program_args": [{"a": 1}]}, "program_args items must be strings"),
    (
        "missing py_files",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "py_files": ["/nope/lib.zip"]},
        "py_files entry does not exist",
    ),
    (
        "py_files bad type",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "py_files": ["{text}"]},
        "py_files files must be one of",
    ),
    (
        "py_files comma",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "py_files": ["{lib},x"]},
        "must not contain commas",
    ),
    ("py_files for a jar", {"jar": "{jar}", "py_files": ["{lib}"]}, "only for PyFlink jobs"),
    (
        "missing requirements",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "python_requirements": "/nope/requirements.txt"},
        "python_requirements does not exist",
    ),
    (
        "requirements cache dir",
        {"py_file": "{py_file}", "python_jar": "{python_jar}", "python_requirements": "{requirements}#/nope/cache"},
        "cache directory does not exist",
    ),
    ("job id not hex", {"jar": "{jar}", "job_id": "xyz"}, "32 hex digits"),
    ("job id too short", {"jar": "{jar}", "job_id": "abc123"}, "32 hex digits"),
    ("zero parallelism", {"jar": "{jar}", "parallelism": 0}, "parallelism must be a positive integer"),
    ("negative parallelism", {"jar": "{jar}", "parallelism": -2}, "parallelism must be a positive integer"),
    ("text parallelism", {"jar": "{jar}", "parallelism": "many"}, "parallelism must be a positive integer"),
    ("bool parallelism", {"jar": "{jar}", "parallelism": True}, "parallelism must be a positive integer"),
    ("relative savepoint", {"jar": "{jar}", "savepoint_path": "savepoints/sp-1"}, "savepoint_path must be an absolute"),
    (
        "scheme without path",
        {"jar": "{jar}", "savepoint_path": "file:savepoint-1"},
        "savepoint_path must be an absolute",
    ),
    ("savepoint with space", {"jar": "{jar}", "savepoint_path": "/tmp/sp 1"}, "must not contain whitespace"),
    ("savepoint over http", {"jar": "{jar}", "savepoint_path": "http://x/sp"}, "scheme 'http'"),
    ("savepoint with ..", {"jar": "{jar}", "savepoint_path": "file:///sp/../etc"}, r"'\.\.' segments"),
    ("savepoint at the root", {"jar": "{jar}", "savepoint_path": "/"}, "below the root"),
    ("savepoint without bucket", {"jar": "{jar}", "savepoint_path": "s3:///sp"}, "bucket"),
    ("bad claim mode", {"jar": "{jar}", "savepoint_path": "/sp", "claim_mode": "LEGACY"}, "claim_mode must be"),
    ("config not a mapping", {"jar": "{jar}", "flink_configuration": ["a=b"]}, "must be a mapping"),
    ("config bad key", {"jar": "{jar}", "flink_configuration": {"bad key": "x"}}, "invalid option name"),
    ("config nested value", {"jar": "{jar}", "flink_configuration": {"a.b": {"c": 1}}}, "must be a string, number"),
    (
        "py_files both ways",
        {
            "py_file": "{py_file}",
            "python_jar": "{python_jar}",
            "py_files": ["{lib}"],
            "flink_configuration": {"python.files": "x"},
        },
        "either as py_files",
    ),
    ("empty job name", {"jar": "{jar}", "job_name": "  "}, "job_name must be a non-empty"),
]


@pytest.mark.parametrize(("case", "arguments", "message"), BAD_ARGUMENTS, ids=[case[0] for case in BAD_ARGUMENTS])
def test_bad_arguments_are_rejected_before_any_http_call(
    files: dict[str, str], case: str, arguments: dict[str, Any], message: str
) -> None:
    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**files)
        if isinstance(value, list):
            return [fill(item) for item in value]
        return value

    op = make_operator(ExplodingRest(), **{key: fill(value) for key, value in arguments.items()})

    with pytest.raises(ValueError, match=message):
        op.execute(make_context())


def test_if_running_is_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="if_running"):
        FlinkJobSubmitOperator(task_id="x", jar_id="a_b.jar", if_running="replace")


def test_python_file_arguments_follow_the_driver_syntax(files: dict[str, str]) -> None:
    op = make_operator(
        ExplodingRest(),
        py_file=files["py_file"],
        python_jar=files["python_jar"],
        py_files=[files["lib"], files["pkg"]],
        python_requirements=files["requirements"],
        program_args=["--topic", "orders", "-v"],
        job_name="enrich",
    )

    sub = op.validate()

    assert sub.entry_class == PYTHON_DRIVER
    assert sub.program_args == ["-py", files["py_file"], "--", "--topic", "orders", "-v"]
    assert sub.python_jar == files["python_jar"]
    assert sub.flink_configuration == {
        "python.files": f"{files['lib']},{files['pkg']}",
        "python.requirements": files["requirements"],
        "pipeline.name": "enrich",
    }


def test_python_module_without_user_args(files: dict[str, str]) -> None:
    sub = make_operator(ExplodingRest(), py_module="jobs.enrich_v2", python_jar=files["python_jar"]).validate()
    assert sub.program_args == ["-pym", "jobs.enrich_v2"]


def test_python_jar_is_required_without_pyflink(files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("airflow_flink_provider.operators.job_submit.find_python_jar", lambda: None)
    with pytest.raises(ValueError, match="python_jar is required"):
        make_operator(ExplodingRest(), py_file=files["py_file"]).validate()


def test_python_jar_defaults_to_the_one_next_to_pyflink(
    files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "pyflink"
    (package / "opt").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    jar = package / "opt" / "flink-python-2.1.3.jar"
    jar.write_text("x")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    sub = make_operator(ExplodingRest(), py_file=files["py_file"]).validate()

    assert sub.python_jar == str(jar)


def job_id_of(op: FlinkJobSubmitOperator, generation: int = 0) -> str:
    """The id the operator's job gets in generation ``generation`` of the fake task instance."""
    purpose = submission_purpose(op.fingerprint_fields(op.validate()))
    return deterministic_job_id("dag", "task", "run1", "-1", purpose, f"generation-{generation}")


def test_jar_is_uploaded_under_a_unique_name_run_under_the_deterministic_id_and_deleted(files: dict[str, str]) -> None:
    rest = FakeRest()
    ti = FakeTI()
    op = make_operator(
        rest,
        jar=files["jar"],
        entry_class="com.example.Job",
        program_args=["--n", 3],
        parallelism=2,
        savepoint_path="file:///sp/savepoint-1",
        allow_non_restored_state=True,
        claim_mode="NO_CLAIM",
        flink_configuration={"execution.checkpointing.interval": "10 s", "x.enabled": True},
    )

    job_id = op.execute(make_context(ti))

    assert job_id == job_id_of(op)
    assert ti.xcoms["flink_job_id"] == job_id
    upload = next(call for call in rest.calls if call[0] == "upload_jar")
    assert re.fullmatch(r"job-[0-9a-f]{12}\.jar", upload[2])
    run = next(call for call in rest.calls if call[0] == "run_jar")
    assert run[1].endswith(upload[2])
    assert run[2] == {
        "entry_class": "com.example.Job",
        "program_args": ["--n", "3"],
        "parallelism": 2,
        "savepoint_path": "file:///sp/savepoint-1",
        "allow_non_restored_state": True,
        "claim_mode": "NO_CLAIM",
        "flink_configuration": {"execution.checkpointing.interval": "10 s", "x.enabled": "true"},
        "job_id": job_id,
    }
    assert rest.names()[-1] == "delete_jar" and rest.jars == []


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("entry_class", "com.example.Other"),
        ("program_args", ["--n", "4"]),
        ("parallelism", 3),
        ("flink_configuration", {"x.enabled": False}),
        ("job_name", "renamed"),
        ("savepoint_path", "file:///sp/savepoint-2"),
    ],
)
def test_what_is_submitted_is_part_of_the_job_id(files: dict[str, str], change: str, value: Any) -> None:
    base: dict[str, Any] = {"jar": files["jar"], "entry_class": "com.example.Job", "program_args": ["--n", "3"]}
    same = make_operator(ExplodingRest(), **base)
    changed = make_operator(ExplodingRest(), **{**base, change: value})

    assert job_id_of(same) == job_id_of(make_operator(ExplodingRest(), **base))
    assert job_id_of(changed) != job_id_of(same)


def test_file_contents_are_part_of_the_job_id(files: dict[str, str]) -> None:
    jar = make_operator(ExplodingRest(), jar=files["jar"])
    python = make_operator(ExplodingRest(), py_file=files["py_file"], python_jar=files["python_jar"])
    before = job_id_of(jar), job_id_of(python)

    Path(files["jar"]).write_bytes(b"another build")
    Path(files["py_file"]).write_text("print('v2')")

    assert job_id_of(jar) != before[0] and job_id_of(python) != before[1]


def test_python_jar_is_reused_by_name(files: dict[str, str]) -> None:
    rest = FakeRest()
    rest.jars.append({"id": "1234_flink-python-2.1.3.jar", "name": "flink-python-2.1.3.jar"})

    make_operator(rest, py_file=files["py_file"], python_jar=files["python_jar"]).execute(make_context())

    assert "upload_jar" not in rest.names() and "delete_jar" not in rest.names()
    run = next(call for call in rest.calls if call[0] == "run_jar")
    assert run[1] == "1234_flink-python-2.1.3.jar"
    assert run[2]["entry_class"] == PYTHON_DRIVER


def test_retry_attaches_instead_of_submitting_twice(files: dict[str, str]) -> None:
    rest = FakeRest()
    store = FakeStateStore()
    first = make_operator(rest, jar=files["jar"]).execute(make_context(store=store))
    second = make_operator(rest, jar=files["jar"]).execute(make_context(store=store))

    assert first == second
    assert rest.names().count("run_jar") == 1
    purpose = submission_purpose(
        make_operator(rest, jar=files["jar"]).fingerprint_fields(make_operator(rest, jar=files["jar"]).validate())
    )
    assert store.values == {STORE_KEY: {purpose: first}}


def test_id_is_stored_before_the_submit(files: dict[str, str]) -> None:
    rest = FakeRest()
    store = FakeStateStore()
    stored_at_run: list[Any] = []
    rest.on_call = lambda call: stored_at_run.append(store.get(STORE_KEY)) if call[0] == "run_jar" else None

    job_id = make_operator(rest, jar=files["jar"]).execute(make_context(store=store))

    assert [list(ids.values()) for ids in stored_at_run] == [[job_id]]


def test_upload_name_is_recorded_before_the_upload_and_a_killed_tries_jar_deleted(files: dict[str, str]) -> None:
    rest = FakeRest()
    store = FakeStateStore()
    recorded_at_upload: list[Any] = []
    rest.on_call = lambda call: recorded_at_upload.append(store.get(UPLOADS_KEY)) if call[0] == "upload_jar" else None
    store.set(UPLOADS_KEY, ["job-0123456789ab.jar"])  # a try killed after its upload
    rest.jars.append({"id": "dead_job-0123456789ab.jar", "name": "job-0123456789ab.jar"})

    make_operator(rest, jar=files["jar"]).execute(make_context(store=store))

    upload = next(call for call in rest.calls if call[0] == "upload_jar")
    assert recorded_at_upload == [[upload[2]]]
    assert ("delete_jar", "dead_job-0123456789ab.jar") in rest.calls
    assert rest.jars == [] and UPLOADS_KEY not in store.values


@pytest.mark.parametrize("state", ["FAILED", "CANCELED", "FINISHED"])
def test_retry_after_an_ended_job_resubmits_a_new_generation_by_default(
    files: dict[str, str], state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"])
    first = op.execute(make_context())
    rest.jobs[first]["state"] = state

    second = make_operator(rest, jar=files["jar"]).execute(make_context())

    assert second == job_id_of(op, generation=1)
    assert rest.names().count("run_jar") == 2
    assert f"Flink job {first} of an earlier try is {state}; if_ended='resubmit'" in capsys.readouterr().out


def test_if_ended_reuse_takes_the_ended_jobs_outcome(files: dict[str, str]) -> None:
    rest = FakeRest()
    finished = make_operator(rest, jar=files["jar"]).execute(make_context())
    rest.jobs[finished]["state"] = "FINISHED"

    assert make_operator(rest, jar=files["jar"], if_ended="reuse").execute(make_context()) == finished

    rest.jobs[finished]["state"] = "FAILED"
    rest.root_causes[finished] = "java.lang.IllegalStateException: boom"
    with pytest.raises(FlinkJobFailedError, match="IllegalStateException: boom"):
        make_operator(rest, jar=files["jar"], if_ended="reuse").execute(make_context())

    rest.jobs[finished]["state"] = "CANCELED"
    with pytest.raises(FlinkJobFailedError, match="was CANCELED"):
        make_operator(rest, jar=files["jar"], if_ended="reuse").execute(make_context())
    assert rest.names().count("run_jar") == 1


def test_if_ended_fail_refuses(files: dict[str, str]) -> None:
    rest = FakeRest()
    first = make_operator(rest, jar=files["jar"]).execute(make_context())
    rest.jobs[first]["state"] = "FINISHED"

    with pytest.raises(FlinkError, match=rf"{first} of an earlier try of this task already ended \(FINISHED\)"):
        make_operator(rest, jar=files["jar"], if_ended="fail").execute(make_context())
    assert rest.names().count("run_jar") == 1


def test_if_ended_is_validated_at_construction() -> None:
    with pytest.raises(ValueError, match="if_ended must be one of 'resubmit', 'reuse', 'fail'"):
        FlinkJobSubmitOperator(task_id="t", jar="x.jar", if_ended="attach")


def test_id_flink_remembers_moves_to_the_next_generation(files: dict[str, str], rest: FakeRest) -> None:
    op = make_operator(rest, jar=files["jar"])
    rest.used_ids.add(job_id_of(op))

    job_id = op.execute(make_context())

    assert job_id == job_id_of(op, generation=1)
    assert [call[2]["job_id"] for call in rest.calls if call[0] == "run_jar"] == [job_id_of(op), job_id]


def test_duplicate_for_a_live_job_attaches(files: dict[str, str]) -> None:
    """A lost answer comes back as "duplicate" (the transport repeats the run): that is the job, attach."""
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"])
    job_id = job_id_of(op)
    real_run = rest.run_jar

    def run_then_lose_the_answer(jar_id: str, **kwargs: Any) -> str:
        real_run(jar_id, **kwargs)
        return real_run(jar_id, **kwargs)  # the transport's retry of the same request

    rest.run_jar = run_then_lose_the_answer  # type: ignore[method-assign]

    assert op.execute(make_context()) == job_id
    assert [job for job in rest.jobs if rest.jobs[job]["state"] == "RUNNING"] == [job_id]


@pytest.mark.parametrize(
    "error",
    [
        FlinkTimeoutError("no answer", transient=True),
        FlinkConnectionError("reset", request_sent=True),
        FlinkError("Bad Gateway", status=502),
        FlinkError("Gateway Timeout", status=504),
    ],
    ids=["read timeout", "reset after send", "502", "504"],
)
def test_lost_answer_attaches_to_the_job_it_started(files: dict[str, str], error: FlinkError) -> None:
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"])
    real_run = rest.run_jar

    def run_then_fail(jar_id: str, **kwargs: Any) -> str:
        real_run(jar_id, **kwargs)
        raise error

    rest.run_jar = run_then_fail  # type: ignore[method-assign]

    assert op.execute(make_context()) == job_id_of(op)
    assert list(rest.jobs) == [job_id_of(op)]


def test_lost_answer_without_a_job_resubmits_the_same_id(files: dict[str, str], rest: FakeRest) -> None:
    op = make_operator(rest, jar=files["jar"])
    real_run = rest.run_jar
    lost = [FlinkConnectionError("reset", request_sent=True)]

    def fail_once_before_running(jar_id: str, **kwargs: Any) -> str:
        if lost:
            raise lost.pop()
        return real_run(jar_id, **kwargs)

    rest.run_jar = fail_once_before_running  # type: ignore[method-assign]

    assert op.execute(make_context()) == job_id_of(op)
    assert list(rest.jobs) == [job_id_of(op)]


def test_a_real_error_answer_is_raised_not_looked_up(files: dict[str, str]) -> None:
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"])

    def refuse(jar_id: str, **kwargs: Any) -> str:
        raise FlinkError("ClassNotFoundException: com.example.Job", status=400)

    rest.run_jar = refuse  # type: ignore[method-assign]

    with pytest.raises(FlinkError, match="ClassNotFoundException"):
        op.execute(make_context())
    assert rest.names().count("find_job_state") == 1  # only the check before submitting


# What PyFlink's driver answers when the job id is taken: it depends on timing (both seen on Flink 2.1.3).
HIDDEN = [
    "RuntimeException: Python process exits with code: 1",
    "RestHandlerException: No jobs included in application.",
]


@pytest.mark.parametrize("answer", HIDDEN)
def test_pyflink_exit_code_1_with_the_job_there_is_a_duplicate(files: dict[str, str], answer: str) -> None:
    rest = FakeRest()
    op = make_operator(rest, py_file=files["py_file"], python_jar=files["python_jar"])
    real_run = rest.run_jar

    def python_driver(jar_id: str, **kwargs: Any) -> str:
        try:
            return real_run(jar_id, **kwargs)
        except FlinkDuplicateJobError:  # PythonDriver hides it behind the exit code
            raise FlinkError(answer, status=400) from None

    rest.run_jar = python_driver  # type: ignore[method-assign]
    real_find = rest.find_job_state
    rest.find_job_state = _first_lookup_misses(real_find)  # type: ignore[method-assign]
    rest.add_job(job_id_of(op), "RUNNING")  # a concurrent try's, invisible to the first lookup

    assert op.execute(make_context()) == job_id_of(op)


def _first_lookup_misses(find: Any) -> Any:
    """A find_job_state whose first answer is "unknown" (the check before submitting), the others real."""
    calls: list[str] = []

    def lookup(job_id: str) -> Any:
        calls.append(job_id)
        return None if len(calls) == 1 else find(job_id)

    return lookup


@pytest.mark.parametrize("answer", HIDDEN)
def test_pyflink_exit_code_1_without_a_job_is_a_program_error(
    files: dict[str, str], rest: FakeRest, answer: str
) -> None:
    rest.run_jar = lambda jar_id, **kwargs: (_ for _ in ()).throw(  # type: ignore[method-assign]
        FlinkError(answer, status=400)
    )

    with pytest.raises(FlinkError, match="PyFlink program failed and no job") as info:
        make_operator(rest, py_file=files["py_file"], python_jar=files["python_jar"]).execute(make_context())
    assert "JobManager log" in str(info.value)


def test_a_changed_submission_refuses_while_the_earlier_tries_job_runs(files: dict[str, str]) -> None:
    rest = FakeRest()
    store = FakeStateStore()
    first = make_operator(rest, jar=files["jar"], program_args=["v1"]).execute(make_context(store=store))

    with pytest.raises(FlinkError, match=rf"Flink job {first} of an earlier try of this task is still RUNNING") as info:
        make_operator(rest, jar=files["jar"], program_args=["v2"]).execute(make_context(store=store))
    assert "cancel" in str(info.value) and rest.names().count("run_jar") == 1

    rest.jobs[first]["state"] = "CANCELED"
    second = make_operator(rest, jar=files["jar"], program_args=["v2"]).execute(make_context(store=store))
    assert second != first and rest.names().count("run_jar") == 2


def test_explicit_job_id_is_used(files: dict[str, str]) -> None:
    rest = FakeRest()
    job_id = make_operator(rest, jar=files["jar"], job_id="ABCDEF0123456789ABCDEF0123456789").execute(make_context())
    assert job_id == "abcdef0123456789abcdef0123456789"


def test_explicit_job_id_of_an_ended_job_is_refused_unless_reused(files: dict[str, str]) -> None:
    rest = FakeRest()
    rest.add_job("a" * 32, "FAILED")
    with pytest.raises(FlinkError, match=r"already ended \(FAILED\); a fixed job_id cannot be submitted twice"):
        make_operator(rest, jar=files["jar"], job_id="a" * 32).execute(make_context())
    rest.jobs["a" * 32]["state"] = "FINISHED"
    assert make_operator(rest, jar=files["jar"], job_id="a" * 32, if_ended="reuse").execute(make_context()) == "a" * 32
    assert "run_jar" not in rest.names()


def test_running_job_with_the_same_name_fails_or_is_attached(files: dict[str, str]) -> None:
    rest = FakeRest()
    rest.add_job("f" * 32, "RUNNING", name="enrich")

    with pytest.raises(FlinkError, match=r"already running: f{32}"):
        make_operator(rest, jar=files["jar"], job_name="enrich").execute(make_context())
    assert "run_jar" not in rest.names()

    attached = make_operator(rest, jar=files["jar"], job_name="enrich", if_running="attach").execute(make_context())
    assert attached == "f" * 32
    assert "run_jar" not in rest.names() and "upload_jar" not in rest.names()


def test_too_many_slots_is_refused_before_upload(files: dict[str, str]) -> None:
    rest = FakeRest(slots_total=8, slots_free=2)
    with pytest.raises(FlinkResourceError, match="needs 16 slots"):
        make_operator(rest, jar=files["jar"], flink_configuration={"parallelism.default": "16"}).execute(make_context())
    assert "upload_jar" not in rest.names() and "run_jar" not in rest.names()


def test_no_task_manager_is_named_as_such(files: dict[str, str]) -> None:
    rest = FakeRest(slots_total=0, slots_free=0)
    with pytest.raises(FlinkResourceError, match="no TaskManager registered"):
        make_operator(rest, jar=files["jar"], parallelism=1).execute(make_context())
    assert "run_jar" not in rest.names()


def test_wait_for_running_polls_and_fails_with_root_cause(files: dict[str, str]) -> None:
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"], wait_for_running=True)
    job_id = job_id_of(op)
    rest.on_call = lambda call: (
        rest.state_plan.setdefault(job_id, ["INITIALIZING", "FAILED"]) if call[0] == "run_jar" else None
    )
    rest.root_causes[job_id] = "ClassNotFoundException: com.example.Missing"

    with pytest.raises(FlinkJobFailedError, match=r"ClassNotFoundException: com\.example\.Missing"):
        op.execute(make_context())


def test_deferrable_wait_defers_with_a_serializable_trigger(files: dict[str, str]) -> None:
    rest = FakeRest()
    op = make_operator(rest, jar=files["jar"], wait_for_running=True, deferrable=True, cancel_on_kill=True)

    _, kwargs = deferral(op, FlinkJobStateTrigger)
    assert kwargs["job_id"] == job_id_of(op)
    assert kwargs["target_states"] == ["FINISHED", "RUNNING"]
    assert kwargs["cancel_on_kill"] is True
    assert (
        op.execute_complete(make_context(), {"status": "success", "job_id": kwargs["job_id"], "state": "RUNNING"})
        == (kwargs["job_id"])
    )


def test_on_kill_cancels_only_when_asked(files: dict[str, str]) -> None:
    rest = FakeRest()
    quiet = make_operator(rest, jar=files["jar"])
    job_id = quiet.execute(make_context())
    quiet.on_kill()
    assert rest.jobs[job_id]["state"] == "RUNNING"

    loud = make_operator(rest, jar=files["jar"], cancel_on_kill=True)
    loud.execute(make_context())
    loud.on_kill()
    assert rest.jobs[job_id]["state"] == "CANCELED"


def test_program_args_are_logged_redacted(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    rest = FakeRest()
    make_operator(rest, jar=files["jar"], program_args=["--password", "hunter2"]).execute(make_context())

    logged = capsys.readouterr().out
    assert "Submitting jar" in logged and "hunter2" not in logged


def test_rendering_registers_the_secrets_of_the_arguments_with_the_masker(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    masked: list[str] = []
    monkeypatch.setattr("airflow.sdk.log.mask_secret", lambda value, name=None: masked.append(value))
    op = make_operator(
        ExplodingRest(),
        jar=files["jar"],
        program_args=["--password", "{{ params.pw }}"],
        flink_configuration={"s3.secret-key": "{{ params.key }}"},
    )

    op.render_template_fields({"params": {"pw": "hunter2", "key": "AKIA-s3cr3t"}})  # type: ignore[arg-type]

    assert op.program_args == ["--password", "hunter2"]
    assert {"hunter2", "AKIA-s3cr3t"} <= set(masked)


def test_a_bad_argument_is_quoted_with_its_secret_masked(files: dict[str, str]) -> None:
    op = make_operator(ExplodingRest(), jar=files["jar"], program_args="--password hunter2")

    with pytest.raises(ValueError, match="program_args must be a list of strings") as info:
        op.validate()
    assert "hunter2" not in str(info.value)
