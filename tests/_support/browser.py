"""Headless Chromium on the map page: open it, wait for the map, read its pixels."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require

IDLE = """() => new Promise((done) => { const map = window.geovigie.map;
  map.once('idle', () => done(true)); map.triggerRepaint(); })"""


SET_RANGE = "(el, value) => { el.value = value; el.dispatchEvent(new Event('input', { bubbles: true })); }"


@contextmanager
def map_browser(server: str) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page that blocks and records every request not to `server`, and records every failed or erroring
    request and every console error."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    record: Callable[[str], None] = problems.append

    def gate(route: Any) -> None:
        url = route.request.url
        if url.startswith((server + "/", "data:", "blob:")):
            route.continue_()
        else:
            record(f"outside: {url}")
            route.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.route("**/*", gate)
        page = context.new_page()
        # a tile request the map cancels when it moves away (ERR_ABORTED) is not a failure
        page.on("requestfailed", lambda r: record(f"failed: {r.url} {r.failure}") if "ABORTED" not in r.failure
                else None)
        # TiTiler answers 404 for a tile inside a layer's bounding box but outside its (rotated) footprint: the map
        # draws nothing there, as it should; any other 4xx/5xx, and any console error, is a problem
        outside_footprint = re.compile(re.escape(server) + r"/layers/[^/]+/tiles/")
        page.on("response", lambda r: record(f"{r.status} {r.url}") if r.status >= 400 and not (
            r.status == 404 and outside_footprint.match(r.url)) else None)
        page.on("console", lambda msg: record(f"{msg.text} {msg.location.get('url', '')}") if msg.type == "error"
                and not ("404" in msg.text and outside_footprint.match(msg.location.get("url", ""))) else None)
        page.on("pageerror", lambda exc: record(str(exc)))
        try:
            yield page, problems
        finally:
            browser.close()


def map_pixels(page: Any) -> tuple[np.ndarray, dict[str, float]]:
    """The page's screenshot as an RGB array, and the map's box in it."""
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(int)
    return shot, page.locator("#map").bounding_box()


CHROMIUM = "/usr/bin/chromium"
