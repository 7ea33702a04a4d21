"""The API docs and the map page in headless Chromium, served by uvicorn: nothing leaves the server, no error.

The map page is checked over real IGN boundaries (shipped Gers communes, Admin Express départements) with one broken
layer beside them.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import httpx
import pytest
import uvicorn

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, VectorStyle, publish_layer, publish_vector_layer
from tests.conftest import DATA, GERS_DIR, require
from tests.tiles.test_publish import CLASSES, _class_cog

CHROMIUM = "/usr/bin/chromium"
INJECTED = '<img src="x" id="injected">Aignan'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    """The app for `settings` served by uvicorn on a free loopback port, in a thread of this process."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _browser(server: str) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page that records every failed, erroring or off-server request and every console error."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    problems: list[str] = []
    record: Callable[[str], None] = problems.append
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("request", lambda r: record(f"outside: {r.url}") if not r.url.startswith((server, "data:")) else None)
        # a tile request the map cancels when it moves away (ERR_ABORTED) is not a failure
        page.on("requestfailed", lambda r: record(f"failed: {r.url} {r.failure}") if "ABORTED" not in r.failure
                else None)
        page.on("response", lambda r: record(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("console", lambda msg: record(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: record(str(exc)))
        try:
            yield page, problems
        finally:
            browser.close()


def test_docs_render_operations_offline(tmp_path: Path) -> None:
    with _serve(Settings(data_dir=tmp_path / "gv")) as server, _browser(server) as (page, problems):
        page.goto(server + "/docs")
        page.wait_for_selector(".opblock", timeout=20000)
        page.wait_for_load_state("networkidle")
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        title = page.locator(".info .title").inner_text()
        operations = httpx.get(server + "/openapi.json").json()["paths"]
    assert {path.replace("\u200b", "") for path in paths} == set(operations)
    assert "geovigie" in title
    assert problems == []


def _publish_map(tmp_path: Path, settings: Settings) -> gpd.GeoDataFrame:
    """A raster, a broken raster, the Gers communes (choropleth), one point and the départements as base layer."""
    results = settings.results_dir
    for layer_id in ("lc", "broken"):
        publish_layer(results, _class_cog(tmp_path / f"{layer_id}.tif"),
                      LayerSpec(layer_id, f"Occupation {layer_id}", "classes", classes=CLASSES),
                      Provenance(inputs=[], lineage="t"))
    (results / "geovigie-results" / "broken" / "data.tif").unlink()
    communes = gpd.read_file(GERS_DIR / "COMMUNE_32xxx.geojson").to_crs(4326)
    communes = communes[["INSEE_COM", "NOM_COM", "POPULATION", "geometry"]]
    communes.to_file(tmp_path / "communes.geojson")
    publish_vector_layer(results, tmp_path / "communes.geojson", LayerSpec(
        "communes", "Communes du Gers", "vector",
        style=VectorStyle(color_by="POPULATION", colormap_name="ylgn", unit="hab.", label="NOM_COM")),
        Provenance(inputs=[], lineage="t"))
    # a hand-made point on a real commune, its name made hostile: the popup must show it as text
    point = communes[communes["NOM_COM"] == "Aignan"].copy()
    point["geometry"] = point.geometry.representative_point()
    point["NOM_COM"] = INJECTED
    point.to_file(tmp_path / "point.geojson")
    publish_vector_layer(results, tmp_path / "point.geojson", LayerSpec(
        "aignan", "Aignan (point)", "vector", style=VectorStyle(label="NOM_COM", color="#0055ff")),
        Provenance(inputs=[], lineage="t"))
    publish_vector_layer(results, DATA / "admin-express" / "departements_simplified_1km.geojson", LayerSpec(
        "base-departements", "Départements", "vector", style=VectorStyle(base=True)),
        Provenance(inputs=[], lineage="t"))
    return communes


def _legend_number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def test_map_page_draws_vector_layers_over_the_offline_base(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    communes = _publish_map(tmp_path, settings)
    departements = gpd.read_file(DATA / "admin-express" / "departements_simplified_1km.geojson")
    with _serve(settings) as server, _browser(server) as (page, problems):
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        listed = page.locator("#layers li").evaluate_all("items => items.map(i => i.dataset.layerId)")
        assert sorted(listed) == ["aignan", "communes", "lc"]  # no base layer, no broken layer
        assert "broken" in page.inner_text("#notice")
        assert page.locator(".leaflet-base-pane path").count() == len(departements)
        page.click('li[data-layer-id="communes"] button')
        page.wait_for_selector(".leaflet-overlay-pane path")
        assert page.locator(".leaflet-overlay-pane path").count() == len(communes)
        fills = page.locator(".leaflet-overlay-pane path").evaluate_all("ps => ps.map(p => p.getAttribute('fill'))")
        assert len(set(fills)) > 5  # a choropleth, not one colour
        low, high = page.locator("#legend .ramp-labels span").all_inner_texts()
        assert (_legend_number(low), _legend_number(high)) == (communes.POPULATION.min(), communes.POPULATION.max())
        assert high.endswith(" hab.") and page.inner_text("#legend .ramp-property") == "POPULATION"
        page.check('li[data-layer-id="aignan"] input')
        page.wait_for_selector(".leaflet-overlay-pane path.leaflet-interactive >> nth=19")
        page.locator(".leaflet-overlay-pane path").nth(len(communes)).click()
        popup = page.wait_for_selector(".feature-popup")
        assert INJECTED in popup.inner_text() and page.locator("#injected").count() == 0
        page.wait_for_load_state("networkidle")
    assert problems == []
