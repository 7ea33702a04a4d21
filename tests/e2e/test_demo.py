"""End to end: the demo on the shipped real data, served by uvicorn, viewed in headless Chromium."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pystac
import pytest
import rasterio
from PIL import Image

from geovigie.tiles import validate_offline
from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"


def test_demo_publishes_all_layers(demo_run) -> None:
    settings, report = demo_run
    ids = [layer["id"] for layer in report.layers]
    assert "ndvi-gers-20181023" in ids
    assert sum(i.startswith("landcover-") for i in ids) == 3  # scene 0 is cloudy and skipped
    assert sum(i.startswith("lst-muenster-") for i in ids) == 2


def test_demo_cogs_pass_rio_cogeo_validate(demo_run) -> None:
    settings, report = demo_run
    rio = Path(sys.executable).parent / "rio"
    rasters = [layer for layer in report.layers
               if (settings.results_dir / "geovigie-results" / layer["id"] / "data.tif").exists()]
    assert len(rasters) >= 6
    for layer in rasters:
        cog = settings.results_dir / "geovigie-results" / layer["id"] / "data.tif"
        done = subprocess.run([str(rio), "cogeo", "validate", str(cog)], capture_output=True, text=True)
        assert done.returncode == 0 and "is a valid cloud optimized GeoTIFF" in done.stdout, done.stdout


def test_demo_items_validate_and_point_to_bundle_and_inputs(demo_run) -> None:
    settings, report = demo_run
    for layer in report.layers:
        folder = settings.results_dir / "geovigie-results" / layer["id"]
        item = pystac.Item.from_file(str(folder / f"{layer['id']}.json"))
        validate_offline(item)
        derived = [link for link in item.links if link.rel == "derived_from"]
        # inputs in the data directory are linked (relative, never a server path), others only named
        assert derived or item.properties.get("geovigie:inputs"), layer["id"]
        assert all(not Path(link.href).is_absolute() and Path(link.get_absolute_href()).exists() for link in derived)
        assert all("/" not in name for name in item.properties.get("geovigie:inputs", []))
        if layer["id"].startswith("landcover-"):
            via = [link for link in item.links if link.rel == "via"][0]
            assert not Path(via.href).is_absolute()  # no server path in a published item
            assert json.loads(Path(via.get_absolute_href()).read_text())["name"] == "landcover-s2l1c-slovenia"
            assert "probabilities" in item.assets


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_run):
    settings, _ = demo_run
    port = _free_port()
    env = {**os.environ, "GEOVIGIE_DATA_DIR": str(settings.data_dir), "GEOVIGIE_PORT": str(port),
           "GEOVIGIE_STAC_BACKEND": settings.stac_backend}
    if settings.database_url:
        env["GEOVIGIE_DATABASE_URL"] = settings.database_url
    geovigie = Path(sys.executable).parent / "geovigie"
    proc = subprocess.Popen([str(geovigie), "serve", "--host", "127.0.0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stdout.read().decode() if proc.stdout else ''}")
    yield base
    proc.terminate()
    proc.wait(timeout=90)  # the service stops its job runner, then its database lease


def test_served_land_cover_tile_has_class_colours(server: str) -> None:
    import morecantile

    layer = httpx.get(f"{server}/layers/landcover-slovenia-reference-scene-2").json()
    colours = {tuple(int(e["color"][i : i + 2], 16) for i in (1, 3, 5)) for e in layer["legend"]}
    west, south, east, north = layer["bounds"]
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 16)
    # absolute (TileJSON 3.0), built from the configured public base URL, never from the request's Host header
    assert layer["tiles"][0].startswith(server + "/layers/")
    spoofed = httpx.get(f"{server}/layers/landcover-slovenia-reference-scene-2",
                        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"}).json()
    assert spoofed["tiles"] == layer["tiles"]
    response = httpx.get(layer["tiles"][0].format(z=tile.z, x=tile.x, y=tile.y))
    assert response.status_code == 200
    rgba = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA")).reshape(-1, 4)
    opaque = rgba[rgba[:, 3] == 255][:, :3]
    assert len(opaque) > 1000
    assert {tuple(p) for p in opaque} <= colours
    assert len({tuple(p) for p in opaque}) >= 2  # a real map, not one flat colour


def test_stac_api_lists_the_demo_layers_and_the_map_lists_them_from_it(server: str, demo_run) -> None:
    settings, report = demo_run
    require(settings.stac_backend == "pgstac", "PostgreSQL not installed: the demo published to the static catalog")
    demo_ids = {layer["id"] for layer in report.layers}
    found = httpx.get(f"{server}/api/stac/collections/geovigie-results/items", params={"limit": 100}).json()
    assert {feature["id"] for feature in found["features"]} == demo_ids
    assert {layer["id"] for layer in httpx.get(server + "/layers").json()} == demo_ids
    search = httpx.post(f"{server}/api/stac/search", json={"collections": ["geovigie-results"], "limit": 100,
                                                            "filter-lang": "cql2-json", "filter": {
                                                                "op": "=", "args": [{"property": "geovigie:layer_kind"},
                                                                                    "classes"]}}).json()
    assert {f["id"] for f in search["features"]} >= {i for i in demo_ids if i.startswith("landcover-")}
    data = next(f for f in found["features"] if f["id"] == "ndvi-gers-20181023")["assets"]["data"]["href"]
    # assets are served over HTTP (Range requests): another machine, GDAL's /vsicurl/ or QGIS can read them
    assert data.startswith(server + "/assets/ndvi-gers-20181023/")
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(f"/vsicurl/{data}") as remote, \
            rasterio.open(settings.results_dir / "geovigie-results" / "ndvi-gers-20181023" / "data.tif") as local:
        assert remote.profile["width"] == local.profile["width"]
        assert np.array_equal(remote.read(1, window=((0, 64), (0, 64))), local.read(1, window=((0, 64), (0, 64))),
                              equal_nan=True)
    assert httpx.get(f"{server}/healthz").json()["stac_api"] == "/api/stac"


def test_the_input_imagery_is_in_the_stac_api_and_catalog_search_reads_it_there(server: str, demo_run) -> None:
    """`geovigie catalog search`: the same command on the local catalog and on the project's STAC API."""
    from typer.testing import CliRunner

    from geovigie.cli import app

    settings, _ = demo_run
    require(settings.stac_backend == "pgstac", "PostgreSQL not installed: the demo published to the static catalog")
    collections = {c["id"] for c in httpx.get(f"{server}/api/stac/collections").json()["collections"]}
    assert {"s2-l2a-theia-gers", "s2-l1c-slovenia", "landsat-lst-muenster", "geovigie-results"} <= collections
    found = {}
    for source in (str(settings.catalog_dir), f"{server}/api/stac"):
        done = CliRunner().invoke(app, ["catalog", "search", "--provider", source, "--collection",
                                        "s2-l2a-theia-gers", "--aoi", "insee:32001", "--json"])
        assert done.exit_code == 0, done.output
        found[source] = sorted(json.loads(line)["id"] for line in done.stdout.splitlines() if line.startswith("{"))
    assert len(set(map(tuple, found.values()))) == 1 and len(found[str(settings.catalog_dir)]) == 1


def test_map_page_loads_without_console_errors(server: str, tmp_path: Path) -> None:
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        outside: list[str] = []  # the optional IGN base maps are offered, never loaded unless chosen
        mine = (server, "data:", "blob:")
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(mine) else None)
        page.goto(server + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        page.wait_for_load_state("networkidle")
        layers = httpx.get(server + "/layers").json()
        listed = [layer for layer in layers if not layer["id"].startswith("base-")]
        series = {re.sub(r"-\d{8}$", "", layer["id"]) for layer in listed}  # the passes of one series: one item
        assert page.locator("#layers li").count() == len(series) < len(listed) < len(layers)
        assert "NDVI" in page.inner_text("#legend")  # the first view: vegetation per commune, with its legend
        drawn = page.evaluate("() => window.geovigie.map.getStyle().layers.map(l => l.id)")
        bases = [layer["id"] for layer in layers if layer["id"].startswith("base-")]
        assert bases and all(f"{b}-line" in drawn for b in bases) and "hillshade-montpellier" in drawn
        assert page.locator(".maplibregl-ctrl-scale").count() == 1
        base_maps = page.locator("#basemaps label").all_inner_texts()
        assert len(base_maps) == 3 and "Plan IGN" in " ".join(base_maps)
        assert "Hors ligne" in page.locator("#basemaps label:has(input:checked)").inner_text()
        assert page.inner_text("#notice") == ""  # no broken layer, no unreachable base map
        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot))
        browser.close()
    assert errors == [] and outside == []
    if os.environ.get("MAP_SCREENSHOT"):
        shutil.copy(shot, os.environ["MAP_SCREENSHOT"])


def test_demo_report_is_self_contained_and_opens_cleanly(demo_run) -> None:
    settings, _ = demo_run
    page = settings.data_dir / "report" / "index.html"
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for title in ("vegetation per zone", "land take", "dump sites", "urban heat islands"):
        assert title in text
    assert "ILLUSTRATIVE" in text and "Candidates only" in text
    assert (settings.data_dir / "report" / "zan-zones-gers-odeon-2016-2019.csv").is_file()
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} not installed (apt install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        view = browser.new_page()
        view.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        view.goto(page.as_uri())
        widths = view.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
        browser.close()
    assert errors == []
    assert len(widths) >= 8 and min(widths) > 100
