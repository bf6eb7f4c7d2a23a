"""The Airflow UI in a real browser, as a user meets it: the seven steps of issue 14.

One Airflow (API server, scheduler, DAG processor, triggerer, as ``make airflow-ui`` runs them) for the whole
module, on the shared stack, in a private Airflow home (``tests/e2e/airflow_ui.py``). Each step is a test of
its own, saving a screenshot per stage under ``test-results/screenshots/<test>/``; what the browser shows is
checked in the page, what it caused (runs, their states, the stored Variable) through the REST API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from airflow_flink_provider.connection_fields import CONNECTION_FIELDS, REST_FIELDS
from tests.e2e.airflow_ui import ROOT, AirflowUI, wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    # The module's first test also starts Airflow (db migrate took 2 min, the API server 20 min at load 35).
    pytest.mark.timeout(1500 + 900),
]

FLINK_REST = "http://127.0.0.1:8081"
STARTUP = 1500  # seconds: four Airflow processes on a busy 2-core machine
RUN_DEADLINE = 900
UI_WAIT = 120_000  # milliseconds, for one element of the React UI
PHASE1 = {"window_size": "10s", "window_slide": "5s"}
EDITED = {"window_size": "20s", "window_slide": "10s"}


DAG_FILES = frozenset(p.name for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowUI]:
    ui = AirflowUI(tmp_path_factory.mktemp("airflow-ui"), {"flink_phase1": PHASE1})
    try:
        ui.start(STARTUP)
        wait_until("the DAG processor to parse every DAG file", lambda: ui.parsed(DAG_FILES), STARTUP, 5)
        yield ui
    finally:
        ui.stop()


class Steps:
    """A page and the numbered screenshots of one test."""

    def __init__(self, page: Page, folder: Path, airflow: AirflowUI) -> None:
        self.page, self.folder, self.airflow, self.count = page, folder, airflow, 0

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def open(self, path: str) -> None:
        self.page.goto(f"{self.airflow.url}{path}", timeout=UI_WAIT)

    def trigger_dialog(self, dag_id: str) -> None:
        self.open(f"/dags/{dag_id}")
        self.page.get_by_role("button", name="Trigger").first.click(timeout=UI_WAIT)
        expect(self.page.get_by_role("dialog")).to_contain_text(f"Trigger Dag - {dag_id}", timeout=UI_WAIT)

    def submit_trigger(self, dag_id: str, before: set[str]) -> str:
        """Click the dialog's Trigger button; the id of the run it created."""
        self.page.get_by_role("dialog").get_by_role("button", name="Trigger", exact=True).click(timeout=UI_WAIT)

        def new_run() -> str | None:
            runs = {r["dag_run_id"] for r in self.airflow.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]}
            return next(iter(runs - before), None)

        return wait_until(f"a new run of {dag_id}", new_run, 120)

    def run_ids(self, dag_id: str) -> set[str]:
        return {r["dag_run_id"] for r in self.airflow.api("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]}

    def wait_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        # Leave the DAG page while the run goes: its auto-refresh polls (9 min each at load 40) held the one API
        # worker that also answers the tasks' execution-API calls, and the first task timed out starting. Leave
        # only once the form's "Unpause on trigger" went through: leaving earlier cancelled it (the run stayed
        # queued on a paused DAG).
        wait_until(f"{dag_id} unpaused", lambda: not self.airflow.api("GET", f"/dags/{dag_id}")["is_paused"], 300)
        self.page.goto("about:blank")

        def ended() -> dict[str, Any] | None:
            self.airflow.check_alive()
            run = self.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        run = wait_until(f"{dag_id} {run_id} to end", ended, RUN_DEADLINE, 3)
        if run["state"] != "success":
            tis = self.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
            raise AssertionError(f"{dag_id} {run_id} {run['state']}: {[(t['task_id'], t['state']) for t in tis]}")
        return run

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        answer = self.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")
        return json.dumps(answer["content"]) if not isinstance(answer["content"], str) else answer["content"]


@pytest.fixture
def steps(airflow: AirflowUI, browser: BrowserContext, screenshots: Path) -> Steps:
    page = browser.new_page()
    page.set_default_timeout(UI_WAIT)
    return Steps(page, screenshots, airflow)


def test_1_every_dag_is_listed_without_import_errors(steps: Steps) -> None:
    errors = steps.airflow.api("GET", "/importErrors")["import_errors"]
    assert not errors, [(e["filename"], e["stack_trace"].strip().splitlines()[-1]) for e in errors]
    dags = steps.airflow.api("GET", "/dags", params={"limit": 100})["dags"]
    files = {Path(d["fileloc"]).name for d in dags}
    assert files >= DAG_FILES, f"DAG files with no DAG in the UI: {sorted(DAG_FILES - files)}"
    steps.open("/dags")
    # The count reads "0 Dags" while the list is still loading.
    expect(steps.page.get_by_text(f"{len(dags)} Dags", exact=True)).to_be_visible(timeout=UI_WAIT)
    for dag in dags:
        expect(steps.page.get_by_role("link", name=dag["dag_id"], exact=True)).to_be_visible(timeout=UI_WAIT)
    steps.shot("dags")


def test_2_3_4_phase0_triggered_from_the_ui_its_log_and_the_flink_link(steps: Steps) -> None:
    dag_id = "flink_phase0_print"
    before = steps.run_ids(dag_id)
    steps.trigger_dialog(dag_id)
    steps.shot("trigger-form")
    run_id = steps.submit_trigger(dag_id, before)
    steps.wait_run(dag_id, run_id)
    steps.open(f"/dags/{dag_id}/runs/{run_id}")
    expect(steps.page.get_by_text("success").first).to_be_visible(timeout=UI_WAIT)
    steps.shot("run-succeeded")

    # 3: the observe task's log shows the print sink's lines.
    expected_file = ROOT / "include" / "sql" / "phase0_print" / "expected" / "print.txt"
    expected = [line for line in expected_file.read_text().splitlines() if line]
    steps.open(f"/dags/{dag_id}/runs/{run_id}/tasks/observe_print_output")
    expect(steps.page.get_by_text(expected[0], exact=False).first).to_be_visible(timeout=UI_WAIT)
    steps.shot("observe-log")
    body = steps.page.inner_text("body")
    assert all(line in body for line in expected), "print-sink lines missing from the log view"

    # 4: the Flink job extra link of the submit task opens the job's page of the Flink web UI.
    job_id = steps.airflow.api(
        "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/submit_print/xcomEntries/flink_job_id"
    )["value"]
    links = steps.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/submit_print/links")["extra_links"]
    assert links.get("Flink Job") == f"{FLINK_REST}/#/job/running/{job_id}/overview", links
    steps.open(f"/dags/{dag_id}/runs/{run_id}/tasks/submit_print/details")
    link = steps.page.get_by_role("link", name=re.compile("Flink Job"))
    expect(link).to_have_attribute("href", links["Flink Job"], timeout=UI_WAIT)
    steps.shot("extra-link")
    with steps.page.context.expect_page(timeout=UI_WAIT) as opened:
        link.click()
    flink = opened.value
    flink.wait_for_load_state("networkidle", timeout=UI_WAIT)
    expect(flink.get_by_text(job_id[:8], exact=False).first).to_be_visible(timeout=UI_WAIT)
    flink.screenshot(path=str(steps.folder / "flink-job-page.png"), full_page=True)
    assert flink.url.startswith(f"{FLINK_REST}/#/job/") and job_id in flink.url
    # The job's Flink UI URL is also in the task log (one click from the Logs tab).
    assert links["Flink Job"] in steps.task_log(dag_id, run_id, "submit_print")


def test_5_edited_variable_changes_the_windows(steps: Steps) -> None:
    steps.open("/variables")
    row = steps.page.get_by_role("row").filter(has_text="flink_phase1")
    row.get_by_role("button", name="Edit Variable").click(timeout=UI_WAIT)
    dialog = steps.page.get_by_role("dialog")
    value = dialog.get_by_role("textbox").nth(1)
    value.fill(json.dumps(EDITED))
    steps.shot("variable-edited")
    dialog.get_by_role("button", name="Save").click()
    wait_until(
        "the edited Variable",
        lambda: json.loads(steps.airflow.api("GET", "/variables/flink_phase1")["value"]) == EDITED,
        60,
    )
    steps.shot("variables")
    dag_id = "flink_phase1_event_time_watermarks"
    before = steps.run_ids(dag_id)
    steps.trigger_dialog(dag_id)
    run_id = steps.submit_trigger(dag_id, before)
    steps.wait_run(dag_id, run_id)
    # The windows compared are the 20 s ones: each sink matched the expected rows of the edited settings.
    expected = "window_size=20s,window_slide=10s,watermark_delay=2s"
    steps.open(f"/dags/{dag_id}/runs/{run_id}/tasks/compare_windows")
    expect(steps.page.get_by_text(expected).first).to_be_visible(timeout=UI_WAIT)
    steps.shot("compare-log")
    log = steps.task_log(dag_id, run_id, "compare_windows")
    for sink in ("tumble", "hop"):
        assert f"matches phase1_event_time_watermarks/expected/{expected}/{sink}.jsonl exactly" in log, log[-3000:]


@pytest.mark.parametrize(
    ("conn_type", "fields"),
    [("Apache Flink REST API", {**CONNECTION_FIELDS, **REST_FIELDS}), ("Apache Flink SQL Gateway", CONNECTION_FIELDS)],
)
def test_6_connection_forms_show_the_custom_fields(
    steps: Steps, conn_type: str, fields: dict[str, dict[str, Any]]
) -> None:
    steps.open("/connections")
    steps.page.get_by_role("button", name="Add Connection").click()
    steps.page.get_by_role("combobox").first.click()
    steps.page.keyboard.type(conn_type)
    steps.page.get_by_role("option", name=conn_type).click()
    dialog = steps.page.get_by_role("dialog")
    # Airflow 3.3's form keeps the provider's fields in the collapsed "Extra Fields" section.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    for field in fields.values():
        label = re.compile(rf"^{re.escape(field['label'])}\s*\*?$")  # a required field's label ends in '*'
        expect(dialog.get_by_text(label).first).to_be_visible(timeout=UI_WAIT)
        if "description" in field:
            expect(dialog.get_by_text(field["description"], exact=True)).to_be_visible()
    steps.shot(conn_type.lower().replace(" ", "-"))
    auth = dialog.get_by_role("group").filter(has=steps.page.get_by_role("combobox", name="Auth type"))
    expect(auth).to_contain_text("none")
    assert "null" not in auth.inner_text(), "the Auth type field shows 'null'"
    expect(dialog.get_by_role("checkbox", name="TLS verification")).to_be_checked()


def test_7_upgrade_with_rollback_triggered_from_its_form(steps: Steps) -> None:
    dag_id = "flink_upgrade_with_rollback"
    before = steps.run_ids(dag_id)
    steps.trigger_dialog(dag_id)
    dialog = steps.page.get_by_role("dialog")
    # Keep the DAG paused: the run is created with the form's values and stays queued (no deployment to upgrade).
    unpause = dialog.get_by_role("checkbox", name=f"Unpause {dag_id} on trigger")
    dialog.get_by_text(f"Unpause {dag_id} on trigger").click()  # the styled box covers the input
    expect(unpause).not_to_be_checked()
    # The form lists the DAG's params (version, fault_injection); a param's input has no label of its own.
    params = dialog.get_by_role("region").get_by_role("group")
    # fault_injection's select shows its default choice, 'none' (it showed 'null' while the param had no default).
    fault = params.filter(has_text="fault_injection")
    expect(fault.get_by_text("none", exact=True)).to_be_visible()
    expect(fault.get_by_text("null", exact=True)).to_have_count(0)
    params.filter(has_text=re.compile(r"^version")).get_by_role("textbox").fill("v2")
    steps.shot("upgrade-form")
    run_id = steps.submit_trigger(dag_id, before)
    run = steps.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    steps.shot("upgrade-triggered")
    try:
        assert run["conf"].get("version") == "v2" and run["conf"].get("fault_injection") == "none", run["conf"]
        assert run["state"] == "queued", run["state"]
    finally:
        steps.airflow.api("DELETE", f"/dags/{dag_id}/dagRuns/{run_id}")
