"""docs/architecture.md stays current: its PNG was rendered from its Mermaid source, its settings table from
the flink_phase5 family."""

from __future__ import annotations

import pytest
from flink_lessons.phase5 import diagram
from flink_lessons.phase5.settings import PHASE5
from flink_lessons.settings import schema_markdown

pytestmark = pytest.mark.unit


def test_png_is_rendered_from_the_current_mermaid_source() -> None:
    source = diagram.mermaid_source()
    assert "flowchart" in source and "customer_totals" in source
    assert diagram.PNG.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert diagram.png_digest() == diagram.source_digest(source), (
        "docs/images/architecture.png is stale: run python -m flink_lessons.phase5.diagram"
    )


def test_digest_chunk_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = diagram.PNG.read_bytes()
    other = tmp_path / "x.png"
    other.write_bytes(diagram.with_digest(png, "abc"))
    assert diagram.png_digest(other) in ("abc", diagram.png_digest())  # the first tEXt chunk wins
    assert diagram.png_digest(tmp_path / "missing.png") is None


def test_settings_table_is_current() -> None:
    assert schema_markdown(PHASE5) in diagram.DOC.read_text()
