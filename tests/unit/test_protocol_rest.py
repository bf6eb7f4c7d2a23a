"""REST exchanges driven without a network: request shapes and the decisions they make on answers.

The answers are shaped like the real Flink 2.1.3 answers captured from the local stack; every exchange
also runs against the real stack in tests/integration/test_hooks_rest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_flink_provider.hooks.transport import drive_sync
from airflow_flink_provider.protocol import rest
from airflow_flink_provider.protocol.errors import (
    FlinkConnectionError,
    FlinkError,
    FlinkNotFoundError,
    FlinkSavepointError,
    FlinkSavepointNotFoundError,
    FlinkTimeoutError,
    error_from_response,
)
from airflow_flink_provider.protocol.http import Exchange, Request, Response

pytestmark = pytest.mark.unit

JOB = "0123456789abcdef0123456789abcdef"
NO_SLOTS_TRACE = (
    "java.util.concurrent.CompletionException: java.util.concurrent.CompletionException: "
    "org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Could not acquire the minimum "
    "required resources.\n\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable"
    "(CompletableFuture.java:332)\nCaused by: java.util.concurrent.CompletionException: org.apache.flink.runtime."
    "jobmanager.scheduler.NoResourceAvailableException: Could not acquire the minimum required resources.\n\t... "
    "37 more\nCaused by: org.apache.flink.runtime.jobmanager.scheduler.NoResourceAvailableException: Could not "
    "acquire the minimum required resources.\n"
)
UNKNOWN_JOB_SAVEPOINT_FAILURE = {
    "class": "java.util.concurrent.CompletionException",
    "stack-trace": "java.util.concurrent.CompletionException: org.apache.flink.runtime.messages."
    f"FlinkJobNotFoundException: Could not find Flink job ({JOB})\n\tat java.base/java.util.concurrent."
    "CompletableFuture.encodeThrowable(CompletableFuture.java:332)\n",
}


class Fake:
    """Drives an exchange like a transport: answers requests from a handler, throws typed errors."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.sleeps: list[float] = []

    def run(self, exchange: Exchange[Any]) -> Any:
        return drive_sync(exchange, self.send, self.sleeps.append)

    def send(self, request: Request) -> Response:
        self.requests.append(request)
        response = self.handler(request)
        if response.ok or response.status in request.accept:
            return response
        raise error_from_response(response.status, response.body)


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, body, repr(body))


def routes(table: dict[tuple[str, str], Any]) -> Callable[[Request], Response]:
    """A handler from ``{(method, path): response or list of responses (consumed in order)}``."""

    def handler(request: Request) -> Response:
        answer = table[(request.method, request.path)]
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    return handler


def job(state: str, *tasks: dict[str, int], parallelism: int = 2) -> dict[str, Any]:
    return {"jid": JOB, "state": state, "vertices": [{"parallelism": parallelism, "tasks": t} for t in tasks]}


def test_run_jar_sends_program_args_list_and_only_given_fields() -> None:
    fake = Fake(routes({("POST", "/jars/abc_job.jar/run"): ok({"jobid": JOB})}))
    job_id = fake.run(rest.run_jar("abc_job.jar", program_args=["--topic", "a b"], parallelism=2, job_id=JOB))
    assert job_id == JOB
    [request] = fake.requests
    assert request.json == {"programArgsList": ["--topic", "a b"], "parallelism": 2, "jobId": JOB}
    assert request.safe_to_repeat  # a fixed job id makes a repeated submit harmless


def test_a_pyflink_run_is_never_repeated_and_waits_for_its_program() -> None:
    """A repeat while the PythonDriver still ran started a second job in a mini cluster inside the JobManager
    (random id, no savepoint): the transport must not send it again, and it waits longer than a jar run."""
    fake = Fake(routes({("POST", "/jars/py.jar/run"): ok({"jobid": JOB})}))
    fake.run(rest.run_jar("py.jar", entry_class=rest.PYTHON_DRIVER, job_id=JOB, savepoint_path="file:///sp"))
    [request] = fake.requests
    assert not request.safe_to_repeat and request.timeout == rest.PYTHON_RUN_TIMEOUT
    fake.run(rest.run_jar("py.jar", entry_class="a.Main", job_id=JOB))
    assert fake.requests[1].safe_to_repeat and fake.requests[1].timeout is None


def test_run_jar_without_job_id_is_not_repeated() -> None:
    fake = Fake(routes({("POST", "/jars/j/run"): ok({"jobid": JOB})}))
    fake.run(
        rest.run_jar(
            "j",
            entry_class="a.Main",
            savepoint_path="file:///sp",
            allow_non_restored_state=True,
            claim_mode="NO_CLAIM",
            flink_configuration={"pipeline.name": "x"},
        )
    )
    request = fake.requests[0]
    assert not request.safe_to_repeat
    assert request.json == {
        "entryClass": "a.Main",
        "savepointPath": "file:///sp",
        "allowNonRestoredState": True,
        "claimMode": "NO_CLAIM",
        "flinkConfiguration": {"pipeline.name": "x"},
    }


def test_upload_jar_returns_the_stored_file_name() -> None:
    body = {"filename": "/tmp/flink-web-x/flink-web-upload/2266b609_job.jar", "status": "success"}
    fake = Fake(routes({("POST", "/jars/upload"): ok(body)}))
    assert fake.run(rest.upload_jar("/local/job.jar")) == "2266b609_job.jar"
    assert fake.requests[0].upload == "/local/job.jar"


def test_find_job_is_none_on_404() -> None:
    not_found = Response(404, {"errors": [f"NotFoundException: Job {JOB} not found"]}, "")
    fake = Fake(routes({("GET", f"/jobs/{JOB}"): not_found}))
    assert fake.run(rest.find_job(JOB)) is None
    with pytest.raises(FlinkNotFoundError):
        fake.run(rest.get_job(JOB))


def test_get_job_overview_picks_the_job_from_the_live_overview() -> None:
    entry = {"jid": JOB, "name": "n", "state": "RUNNING", "tasks": {"total": 2, "running": 1, "scheduled": 1}}
    other = {"jid": "f" * 32, "name": "m", "state": "FINISHED", "tasks": {"total": 1, "finished": 1}}
    fake = Fake(routes({("GET", "/jobs/overview"): ok({"jobs": [other, entry]})}))
    assert fake.run(rest.get_job_overview(JOB)) == entry
    assert [request.path for request in fake.requests] == ["/jobs/overview"]


def test_get_job_overview_falls_back_to_the_details_and_raises_not_found() -> None:
    not_found = Response(404, {"errors": [f"NotFoundException: Job {JOB} not found"]}, "")
    fake = Fake(routes({("GET", "/jobs/overview"): ok({"jobs": []}), ("GET", f"/jobs/{JOB}"): not_found}))
    with pytest.raises(FlinkNotFoundError):
        fake.run(rest.get_job_overview(JOB))
    assert [request.path for request in fake.requests] == ["/jobs/overview", f"/jobs/{JOB}"]


def test_list_jobs_filters_by_name_and_state_newest_first() -> None:
    jobs = [
        {"jid": "a", "name": "n", "state": "RUNNING", "start-time": 1},
        {"jid": "b", "name": "n", "state": "FINISHED", "start-time": 3},
        {"jid": "c", "name": "other", "state": "RUNNING", "start-time": 2},
        {"jid": "d", "name": "n", "state": "RUNNING", "start-time": 4},
    ]
    fake = Fake(routes({("GET", "/jobs/overview"): ok({"jobs": jobs})}))
    assert [j["jid"] for j in fake.run(rest.list_jobs(name="n", states=["running"]))] == ["d", "a"]
    assert [j["jid"] for j in fake.run(rest.list_jobs())] == ["d", "b", "c", "a"]


def test_root_cause_takes_the_newest_entry() -> None:
    history = {
        "exceptionHistory": {
            "entries": [
                {"timestamp": 1, "stacktrace": "java.lang.RuntimeException: old"},
                {"timestamp": 5, "stacktrace": NO_SLOTS_TRACE},
            ]
        }
    }
    assert rest.root_cause_of(history) == (
        "NoResourceAvailableException: Could not acquire the minimum required resources."
    )
    assert rest.root_cause_of({"exceptionHistory": {"entries": [], "truncated": False}}) is None
    assert rest.root_cause_of({"root-exception": "java.lang.Exception: legacy 1.x"}) == "Exception: legacy 1.x"


def test_wait_for_savepoint_polls_until_completed() -> None:
    path = f"/jobs/{JOB}/savepoints/r1"
    fake = Fake(
        routes(
            {
                ("GET", path): [
                    ok({"status": {"id": "IN_PROGRESS"}}),
                    ok({"status": {"id": "IN_PROGRESS"}}),
                    ok({"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/savepoint-1"}}),
                ]
            }
        )
    )
    assert fake.run(rest.wait_for_savepoint(JOB, "r1", poll_interval=0.25)) == "file:/sp/savepoint-1"
    assert fake.sleeps == [0.25, 0.25]


def test_savepoint_of_unknown_job_fails_as_not_found() -> None:
    body = {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": UNKNOWN_JOB_SAVEPOINT_FAILURE}}
    fake = Fake(routes({("GET", f"/jobs/{JOB}/savepoints/r1"): ok(body)}))
    with pytest.raises(FlinkSavepointNotFoundError) as info:
        fake.run(rest.wait_for_savepoint(JOB, "r1"))
    assert isinstance(info.value, FlinkSavepointError) and isinstance(info.value, FlinkNotFoundError)
    assert info.value.message == (
        f"Savepoint of Flink job {JOB} failed: FlinkJobNotFoundException: Could not find Flink job ({JOB})"
    )


def test_other_savepoint_failures_are_savepoint_errors() -> None:
    failure = {"class": "x", "stack-trace": "org.apache.flink.runtime.checkpoint.CheckpointException: Task not running"}
    body = {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": failure}}
    fake = Fake(routes({("GET", f"/jobs/{JOB}/savepoints/r1"): ok(body)}))
    with pytest.raises(FlinkSavepointError) as info:
        fake.run(rest.wait_for_savepoint(JOB, "r1"))
    assert type(info.value) is FlinkSavepointError
    assert info.value.root_cause == "CheckpointException: Task not running"


def test_wait_for_savepoint_times_out() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    fake = Fake(routes({("GET", f"/jobs/{JOB}/savepoints/r1"): ok({"status": {"id": "IN_PROGRESS"}})}))
    with pytest.raises(FlinkTimeoutError) as info:
        fake.run(rest.wait_for_savepoint(JOB, "r1", timeout=3, clock=clock))
    assert not info.value.retryable
    assert "not done after 3s" in info.value.message


def test_trigger_and_stop_with_savepoint_payloads() -> None:
    fake = Fake(
        routes(
            {
                ("POST", f"/jobs/{JOB}/savepoints"): ok({"request-id": "r1"}, 202),
                ("POST", f"/jobs/{JOB}/stop"): ok({"request-id": "r2"}, 202),
                ("GET", f"/jobs/{JOB}/savepoints/r2"): ok(
                    {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/2"}}
                ),
            }
        )
    )
    assert fake.run(rest.trigger_savepoint(JOB, "file:///sp", format_type="native")) == "r1"
    assert fake.requests[0].json == {"cancel-job": False, "target-directory": "file:///sp", "formatType": "NATIVE"}
    assert fake.run(rest.stop_with_savepoint(JOB, drain=True)) == "file:/sp/2"
    assert fake.requests[1].json == {"drain": True}


def test_cancel_job_accepts_an_already_terminal_job() -> None:
    conflict = Response(409, {"errors": ["Job cancellation failed because the job has already reached ..."]}, "")
    fake = Fake(routes({("PATCH", f"/jobs/{JOB}"): conflict}))
    assert fake.run(rest.cancel_job(JOB)) is None
    assert fake.requests[0].params == {"mode": "cancel"}


def test_jobmanager_config_becomes_a_dict() -> None:
    body = [{"key": "parallelism.default", "value": "1"}, {"key": "rest.port", "value": "8081"}]
    fake = Fake(routes({("GET", "/jobmanager/config"): ok(body)}))
    assert fake.run(rest.get_jobmanager_config()) == {"parallelism.default": "1", "rest.port": "8081"}


def test_latest_checkpoint_path() -> None:
    with_checkpoint = {"latest": {"completed": {"external_path": "file:/ck/chk-3"}, "savepoint": None}}
    answers = [ok(with_checkpoint), ok({"latest": {"completed": None}})]
    fake = Fake(routes({("GET", f"/jobs/{JOB}/checkpoints"): answers}))
    assert fake.run(rest.get_latest_checkpoint_path(JOB)) == "file:/ck/chk-3"
    assert fake.run(rest.get_latest_checkpoint_path(JOB)) is None


def test_ids_are_quoted_into_paths() -> None:
    fake = Fake(lambda request: ok("out"))
    fake.run(rest.get_taskmanager_stdout("127.0.0.1:46147-84d93a"))
    assert fake.requests[0].path == "/taskmanagers/127.0.0.1%3A46147-84d93a/stdout"


# --- submissions and savepoints whose answer may be lost ----------------------------------------------


def drive(exchange: Exchange[Any], answer: Callable[[Request], Response]) -> tuple[Any, list[Request]]:
    """Run an exchange against ``answer`` (which may raise, as a transport does); return result and requests."""
    sent: list[Request] = []

    def send(request: Request) -> Response:
        sent.append(request)
        return answer(request)

    return drive_sync(exchange, send, no_sleep), sent


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"the exchange asked to sleep {seconds} s")


LOST = [
    FlinkTimeoutError("no answer", transient=True),
    FlinkConnectionError("RemoteDisconnected", request_sent=True),
    FlinkError("Bad Gateway", status=502),
    FlinkError("Gateway Timeout", status=504),
]


@pytest.mark.parametrize("error", LOST, ids=["read timeout", "reset after send", "502", "504"])
def test_answer_lost_covers_what_leaves_a_request_undecided(error: FlinkError) -> None:
    assert rest.answer_lost(error)


@pytest.mark.parametrize(
    "error",
    [
        FlinkTimeoutError("savepoint wait ran out"),
        FlinkConnectionError("refused", request_sent=False),
        FlinkError("Internal Server Error", status=500),
        FlinkError("Bad Request", status=400),
    ],
    ids=["exhausted wait", "never sent", "flink's own 500", "400"],
)
def test_answer_lost_is_false_for_an_answer_or_a_request_never_sent(error: FlinkError) -> None:
    assert not rest.answer_lost(error)


@pytest.mark.parametrize("error", LOST, ids=["read timeout", "reset after send", "502", "504"])
def test_upload_with_a_lost_answer_finds_the_jar_by_name_instead_of_uploading_again(error: FlinkError) -> None:
    def answer(request: Request) -> Response:
        if request.method == "POST":
            raise error  # the jar landed, the answer did not
        return ok({"files": [{"id": "abc_job-1f2e.jar", "name": "job-1f2e.jar", "uploaded": 1}]})

    jar_id, sent = drive(rest.upload_jar("/tmp/x/job-1f2e.jar"), answer)

    assert jar_id == "abc_job-1f2e.jar"
    assert [(r.method, r.path) for r in sent] == [("POST", "/jars/upload"), ("GET", "/jars")]
    assert sent[0].safe_to_repeat is False  # the transport repeats it only when it surely never arrived


def test_upload_whose_jar_did_not_land_is_sent_again_then_gives_up() -> None:
    def answer(request: Request) -> Response:
        if request.method == "POST":
            raise FlinkConnectionError("reset", request_sent=True)
        return ok({"files": [{"id": "x_other.jar", "name": "other.jar"}]})

    with pytest.raises(FlinkConnectionError):
        drive(rest.upload_jar("/tmp/job-1.jar", attempts=2), answer)


def test_upload_refused_by_flink_is_not_looked_up() -> None:
    def answer(request: Request) -> Response:
        raise FlinkError("Only Jar files are allowed", status=400)

    with pytest.raises(FlinkError, match="Only Jar files"):
        drive(rest.upload_jar("/tmp/job.jar"), answer)


def test_delete_of_a_jar_that_is_gone_is_fine_other_400s_are_not() -> None:
    gone = Response(400, {"errors": ["File x.jar does not exist in /tmp/flink-web-upload."]}, "does not exist")
    assert drive(rest.delete_jar("x.jar"), lambda request: gone)[0] is None
    other = Response(400, {"errors": ["Bad request"]}, '{"errors": ["Bad request"]}')
    with pytest.raises(FlinkError, match="Bad request"):
        drive(rest.delete_jar("x.jar"), lambda request: other)


def test_trigger_id_is_sent_and_makes_the_request_repeatable() -> None:
    _, with_id = drive(
        rest.trigger_savepoint("j" * 32, "file:///sp", trigger_id="t" * 32),
        lambda request: ok({"request-id": "t" * 32}),
    )
    _, without = drive(rest.trigger_savepoint("j" * 32), lambda request: ok({"request-id": "r"}))

    assert with_id[0].json == {"cancel-job": False, "target-directory": "file:///sp", "triggerId": "t" * 32}
    assert with_id[0].safe_to_repeat and not without[0].safe_to_repeat


def test_stop_sends_the_trigger_id_and_waits_for_that_operation() -> None:
    def answer(request: Request) -> Response:
        if request.method == "POST":
            return ok({"request-id": "t" * 32})
        return ok({"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/savepoint-1"}})

    location, sent = drive(rest.stop_with_savepoint("j" * 32, drain=True, trigger_id="t" * 32), answer)

    assert location == "file:/sp/savepoint-1"
    assert sent[0].json == {"drain": True, "triggerId": "t" * 32} and sent[0].safe_to_repeat
    assert sent[1].path == f"/jobs/{'j' * 32}/savepoints/{'t' * 32}"


def test_find_savepoint_is_none_for_an_unknown_trigger() -> None:
    missing = Response(404, {"errors": ["There is no savepoint operation with triggerId=t"]}, "")
    assert drive(rest.find_savepoint("j" * 32, "t" * 32), lambda request: missing)[0] is None


def test_savepoint_location_reads_progress_success_and_failure() -> None:
    assert rest.savepoint_location("j", {"status": {"id": "IN_PROGRESS"}}) is None
    done = {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/1"}}
    assert rest.savepoint_location("j", done) == "file:/sp/1"
    failed = {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": {"stack-trace": "IOException: disk"}}}
    with pytest.raises(FlinkSavepointError, match="IOException: disk"):
        rest.savepoint_location("j", failed)


def test_find_job_state_asks_the_live_status_and_is_none_for_an_unknown_job() -> None:
    running = ok({"status": "RUNNING"})
    state, sent = drive(rest.find_job_state(JOB), lambda request: running)
    assert state == "RUNNING" and sent[0].path == f"/jobs/{JOB}/status"

    def unknown(request: Request) -> Response:  # the dispatcher's answer: HTTP 500, not 404
        raise error_from_response(500, {"errors": [f"FlinkJobNotFoundException: Could not find Flink job ({JOB})"]})

    assert drive(rest.find_job_state(JOB), unknown)[0] is None
