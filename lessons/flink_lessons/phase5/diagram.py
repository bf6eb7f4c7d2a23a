"""Render the Mermaid diagram of ``docs/architecture.md`` to ``docs/images/architecture.png``.

Mermaid (npm package ``mermaid``, pinned below, installed once into a cache folder) renders in Debian's
Chromium driven by Playwright: no browser download. The PNG carries the SHA-256 of the Mermaid source in a
``tEXt`` chunk, so a test can tell whether the picture is current without rendering it::

    python -m flink_lessons.phase5.diagram            # render
    python -m flink_lessons.phase5.diagram --check    # exit 1 when the PNG is stale

``CHROMIUM`` names another Chromium binary; ``MERMAID_JS`` an already downloaded ``mermaid.min.js``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "architecture.md"
PNG = ROOT / "docs" / "images" / "architecture.png"
MERMAID_VERSION = "11.17.2"
KEY = b"mermaid-sha256"
_BLOCK = re.compile(r"```mermaid\n(.*?)```", re.DOTALL)


def mermaid_source(doc: Path = DOC) -> str:
    """The first Mermaid block of the document.

    :param doc: the Markdown file.
    :raises ValueError: when it has none.
    """
    match = _BLOCK.search(doc.read_text())
    if not match:
        raise ValueError(f"{doc} has no ```mermaid block")
    return match.group(1)


def source_digest(source: str) -> str:
    """The SHA-256 of a Mermaid source, as stored in the PNG.

    :param source: the diagram's text.
    """
    return hashlib.sha256(source.encode()).hexdigest()


def png_digest(png: Path = PNG) -> str | None:
    """The digest stored in a PNG's ``mermaid-sha256`` text chunk, ``None`` when it has none.

    :param png: the image.
    """
    data = png.read_bytes() if png.exists() else b""
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"tEXt" and body.startswith(KEY + b"\0"):
            return body[len(KEY) + 1 :].decode()
        position += 12 + length
    return None


def with_digest(png: bytes, digest: str) -> bytes:
    """The PNG with a ``tEXt`` chunk holding the digest, right after its header chunk.

    :param png: a PNG file's bytes.
    :param digest: the source's digest.
    """
    body = KEY + b"\0" + digest.encode()
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    header_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:header_end] + chunk + png[header_end:]


def mermaid_js() -> Path:
    """``mermaid.min.js``: ``MERMAID_JS``, or the pinned package installed with npm into the user's cache."""
    if os.environ.get("MERMAID_JS"):
        return Path(os.environ["MERMAID_JS"])
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / f"flink-lessons-mermaid-{MERMAID_VERSION}"
    script = folder / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if not script.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder),
                        f"mermaid@{MERMAID_VERSION}"], check=True)  # fmt: skip
    return script


def render(source: str, out: Path = PNG) -> Path:
    """Render the diagram to a PNG (2x scale, white background) with the source's digest inside.

    :param source: the Mermaid text.
    :param out: where to write.
    """
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000}, device_scale_factor=2)
            page.set_content('<html><body style="margin:0;background:white"><div id="d"></div></body></html>')
            page.add_script_tag(path=str(mermaid_js()))
            page.evaluate(
                """async (text) => {
                    mermaid.initialize({startOnLoad: false, theme: "default", flowchart: {htmlLabels: true}});
                    const {svg} = await mermaid.render("architecture", text);
                    document.getElementById("d").innerHTML = svg;
                }""",
                source,
            )
            png = page.locator("#d svg").screenshot(type="png")
        finally:
            browser.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(with_digest(png, source_digest(source)))
    return out


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring).

    :param argv: the arguments.
    """
    parser = argparse.ArgumentParser(prog="python -m flink_lessons.phase5.diagram", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the PNG is current")
    opts = parser.parse_args(argv)
    source = mermaid_source()
    if opts.check:
        current = png_digest() == source_digest(source)
        verdict = "current" if current else "STALE: run python -m flink_lessons.phase5.diagram"
        print(f"{PNG.relative_to(ROOT)} is {verdict}")
        return 0 if current else 1
    print(f"wrote {render(source).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
