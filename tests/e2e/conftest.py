"""The real browser for the UI tests: the system Chromium (Debian's package, `make browser`) driven by Playwright.

Playwright downloads no browser here; it launches ``CHROMIUM`` (default ``/usr/bin/chromium``) headless, with a
fresh profile per test and the background traffic (updates, sync, QUIC, ...) switched off. Screenshots go to
``test-results/screenshots/<test>/`` (git-ignored); a failing test names its folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "test-results" / "screenshots"
CHROMIUM_ARGS = [
    # Runs as root in CI, where Chromium's sandbox cannot start.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync driver, per module: it keeps an event loop running in the main thread while it lives,
    which would break every later test that calls ``asyncio.run``."""
    if not CHROMIUM.is_file():
        pytest.fail(f"no browser at {CHROMIUM}: run `make browser` (installs Debian's chromium) or set CHROMIUM")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder for this test's screenshots, named in the failure report when the test fails."""
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    if folder.exists():
        for old in folder.glob("*.png"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        report.sections.append(("screenshots", f"screenshots of this test: {folder}"))


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a profile of its own (``--user-data-dir`` in a fresh folder), closed afterwards."""
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=VIEWPORT,  # type: ignore[arg-type]
    )
    yield context
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
