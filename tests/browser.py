"""Headless Chromium (Debian's chromium package, driven by Playwright) on a live
`appliance serve`, for the page tests: one way to start both, skip without them, close both."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.live_server import CHROMIUM, CHROMIUM_ARGS, LiveServer


@contextlib.contextmanager
def live_page(models_dir: Path, state: Path, size: tuple[int, int], path: str = "/",
              env: dict[str, str] | None = None) -> Iterator:
    """A page `size` (width, height) pixels on `path` of a new server for `models_dir`, with
    `page.live_url` and `page.errors` (the page's uncaught JavaScript errors). Skips the test
    without Chromium or Playwright (the test extra)."""
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium package (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the test extra")
    with LiveServer(models_dir, state, env=env) as live, \
            sync_api.sync_playwright() as playwright:
        live.wait_ready()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": size[0], "height": size[1]})
            page.live_url = live.url
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.goto(live.url + path)
            yield page
        finally:
            browser.close()
