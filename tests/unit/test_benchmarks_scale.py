"""The scale benchmark's pure parts: the fake jobs' toggling schedule, the per-interval count, the table."""

from __future__ import annotations

import pytest

from benchmarks.scale import FakeFlink, Schedule, max_in_window, render_rows

pytestmark = pytest.mark.unit


def test_a_fake_job_toggles_on_its_schedule() -> None:
    schedule = Schedule(n=3, period=10, t0=1000)
    assert schedule.state(2.5, 1001) == "CREATED" and schedule.last_toggle(2.5, 1001) is None
    assert schedule.state(2.5, 1002.5) == "RUNNING" and schedule.last_toggle(2.5, 1003) == 1002.5
    assert schedule.state(2.5, 1013) == "CREATED" and schedule.last_toggle(2.5, 1013) == 1012.5
    assert schedule.offsets() == Schedule(n=3, period=10, t0=0).offsets()  # seeded: both processes agree
    assert all(0 <= offset < 10 for offset in schedule.offsets())


def test_the_fake_server_answers_the_schedule_and_counts() -> None:
    fake = FakeFlink(Schedule(n=2, period=10, t0=0))
    status, body = fake.route("GET", "/jobs/overview")
    assert status == 200 and [job["jid"] for job in body["jobs"]] == [Schedule.job_id(0), Schedule.job_id(1)]
    assert fake.route("GET", f"/jobs/{'f' * 32}")[0] == 404
    assert fake.route("GET", f"/jobs/{Schedule.job_id(1)}/exceptions")[1] == {"exceptionHistory": {"entries": []}}
    _, stats = fake.route("GET", "/_stats?reset=1")
    assert stats["counts"] == {"GET /jobs/overview": 1, "GET /jobs/{id}": 1, "GET /jobs/{id}/exceptions": 1}
    assert fake.route("GET", "/_stats")[1]["counts"] == {}


def test_most_requests_within_one_interval() -> None:
    assert max_in_window([0, 30, 60.5], 30) == 1  # exactly an interval apart: one per interval
    assert max_in_window([0, 29.9, 60], 30) == 2
    assert max_in_window([5, 1, 2, 3], 30) == 4
    assert max_in_window([], 30) == 0


def test_the_table_has_a_row_per_run_and_dashes_for_the_unmeasured() -> None:
    row = {"n": 10, "mode": "shared", "requests_per_s": 0.033, "overview_max_per_interval": 1, "cpu_pct": 1.0}
    table = render_rows([row, {**row, "mode": "per_trigger", "lag_own_ms_p99_herd": 2.0}]).splitlines()
    assert len(table) == 3 and "req/s" in table[0] and "0.03" in table[1]
    assert "2.0/-" in table[2] and table[1].rstrip().endswith("-")
