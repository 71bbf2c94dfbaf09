"""Debian's Chromium under Playwright, launched the one way that works on our machines.

Playwright cannot download its own browser here; tests drive /usr/bin/chromium with
background networking off (the closed network refuses those connections). Test fixtures use
``chromium_or_skip``; scripts check ``CHROMIUM`` themselves and call ``chromium``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Playwright browser; callers skip first when ``CHROMIUM`` is absent."""
    from playwright.sync_api import sync_playwright  # a test-only dependency

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_or_skip() -> Iterator[Any]:
    """``chromium()`` for a pytest fixture: the test is skipped, not failed, on a machine
    without Debian's Chromium or without Playwright."""
    import pytest  # test tooling: only fixtures call this

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (make system-deps installs it)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright==1.65.2")
    with chromium() as browser:
        yield browser
