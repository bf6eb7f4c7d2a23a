"""The JobManager drill's guard: the shared stack's folder is refused before anything is looked up or killed."""

from __future__ import annotations

from pathlib import Path

import pytest
from flink_lessons.phase3.failover import ROOT, LocalStack

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("folder", [ROOT / ".stack", ROOT / "x" / ".." / ".stack", Path(".stack")])
def test_the_shared_stack_is_refused(folder: Path) -> None:
    with pytest.raises(ValueError, match="shared stack"):
        LocalStack(folder, 0)


def test_a_private_stack_gets_its_offset_rest_port() -> None:
    assert LocalStack(ROOT / ".stack-p3", 4000).rest_port == 12081
