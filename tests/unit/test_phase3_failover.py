"""Lesson 4's failure drill, its pure parts: which process listens on a TaskManager's data port, the exactly-once
accounting, and the job's script."""

from __future__ import annotations

from pathlib import Path

import pytest
from flink_lessons.phase3.failover import DrillParams, account, drill_script, listening_pid

pytestmark = pytest.mark.unit

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 0100007F:9C41 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
"""


def fake_proc(root: Path, sockets: dict[int, list[str]]) -> Path:
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(TCP)
    for pid, inodes in sockets.items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        for n, inode in enumerate(inodes):
            (fd / str(n)).symlink_to(f"socket:[{inode}]")
    return root


def test_the_pid_is_the_process_listening_on_the_port_not_one_connected_to_it(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {10: ["222"], 11: ["333"], 12: ["999", "111"]})
    assert listening_pid(0x9C41, [10, 11, 12], proc) == 12  # 222 is an established connection to the port
    assert listening_pid(0x1F90, [10, 11, 12], proc) == 11
    assert listening_pid(0x1F90, [10, 12, 404], proc) is None  # not among the candidates; a gone pid is skipped


def test_account_counts_lost_duplicated_and_unexpected() -> None:
    counts = account(range(10), [0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 42], lambda i: True)
    assert counts == {"expected": 10, "seen": 11, "unique": 10, "lost": 1, "duplicated": 1, "unexpected": 1}


def test_the_drill_job_is_exactly_once_end_to_end() -> None:
    script = drill_script(DrillParams(checkpoint_interval="2 s", restart_delay="500 ms"), "job-'x", "in", "out", "k:9")
    assert "SET 'pipeline.name' = 'job-''x';" in script
    for line in ("'execution.checkpointing.interval' = '2 s'", "'restart-strategy.fixed-delay.delay' = '500 ms'",
                 "'sink.delivery-guarantee' = 'exactly-once'", "'properties.isolation.level' = 'read_committed'",
                 "'sink.transactional-id-prefix' = 'job-''x'"):  # fmt: skip
        assert line in script
