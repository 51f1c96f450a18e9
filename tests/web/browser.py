"""Headless Chromium from Debian (``apt-get install chromium``), driven by Playwright for Python.

Playwright's own browser download cannot be reached here, so it launches the system Chromium; the flags turn
off Chromium's background connections, which this machine's closed network would refuse at every start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system Chromium, or AssertionError saying how to install it (a missing browser fails, never skips)."""
    found = os.environ.get("JOBSTREAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the browser tests need Chromium: apt-get install chromium (or set JOBSTREAM_CHROMIUM)"
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str, directory: Path) -> Path:
    """A full-page PNG of `page` as `<directory>/<name>.png` (README's screenshots come from these)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def page_errors(page: Page) -> list[str]:
    """Collects uncaught script errors of `page` from now on: a page that throws is a failed test."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
