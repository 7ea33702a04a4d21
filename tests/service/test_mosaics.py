"""Mosaics of the latest pass through titiler-pgstac, on the shipped Landsat Münster series (2024-08-13 and
2025-05-11, the same place): the surface temperature workflow publishes one layer per pass, the sample catalog's
Landsat items are indexed in the STAC API; the mosaic's tile at a datetime is that pass's own tile, the newest pass
wins without one, an empty window or a bad datetime is answered clearly, GDAL opens the mosaic's WMTS."""

from __future__ import annotations

import io
from pathlib import Path

import morecantile
import numpy as np
import pytest
import rasterio
import rasterio.warp
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.catalog.stac import SearchQuery, StaticItemStore
from geovigie.service import create_app
from geovigie.tiles import RESULTS_COLLECTION, index_inputs
from tests._support.servers import free_port, served
from tests._support.writes import writes_settings

PUBLIC = "https://geo.example.fr/geovigie"
LANDSAT = "landsat-lst-muenster"
OLD, NEW = "2024-08-13", "2025-05-11"
RENDER = {"rescale": "0,45", "colormap_name": "inferno"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, pgstac_cluster, catalog_dir: Path):
    """Settings on a test database holding both Landsat passes: as input items and as published LST layers."""
    import shutil

    from geovigie.workflows import surface_temperature
    from tests.conftest import fresh_database

    folder = tmp_path_factory.mktemp("mosaics")
    settings = writes_settings(folder / "gv", fresh_database(pgstac_cluster), public_url=PUBLIC)
    shutil.copytree(catalog_dir, settings.catalog_dir)
    assert index_inputs(settings) > 0
    items = list(StaticItemStore(settings.catalog_dir).search(SearchQuery(collections=(LANDSAT,), max_items=None)))
    layers = sorted(surface_temperature(item, settings).id for item in items)
    assert layers == ["lst-muenster-20240813", "lst-muenster-20250511"]
    return settings


@pytest.fixture(scope="module")
def client(published):
    with TestClient(create_app(published)) as test_client:
        yield test_client


def _tile(client: TestClient, layer_id: str, zoom: int = 12) -> morecantile.Tile:
    west, south, east, north = client.get(f"/layers/{layer_id}").json()["bounds"]
    return morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, zoom)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_mosaics_are_listed_with_their_passes_and_public_links(client: TestClient) -> None:
    mosaics = {m["id"]: m for m in client.get("/mosaics", headers={"Host": "evil.example"}).json()}
    product = mosaics["layers.lst-muenster"]
    assert product["collection"] == RESULTS_COLLECTION and product["kind"] == "continuous"
    assert [p[:10] for p in product["passes"]] == [NEW, OLD]  # newest first
    assert product["tiles"] == [f"{PUBLIC}/mosaics/layers.lst-muenster/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png"]
    assert product["legend"][0]["unit"] == "celsius"
    assert [p[:10] for p in mosaics[LANDSAT]["passes"]] == [NEW, OLD] and mosaics[LANDSAT]["assets"] == ["lst"]
    tilejson = client.get("/mosaics/layers.lst-muenster/WebMercatorQuad/tilejson.json",
                          params={"datetime": OLD}, headers={"X-Forwarded-Host": "evil"}).json()
    assert tilejson["tiles"][0].startswith(f"{PUBLIC}/mosaics/layers.lst-muenster/tiles/WebMercatorQuad/{{z}}")
    assert f"datetime={OLD}" in tilejson["tiles"][0]  # the pass travels with the tiles
    west, south, east, north = tilejson["bounds"]
    assert west < 7.63 < east and south < 51.96 < north  # Münster
    assert client.get("/mosaics/nope").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/mosaics", "/mosaics/{mosaic_id}", "/mosaics/{mosaic_id}/WMTSCapabilities.xml"} <= set(paths)
    assert "post" in paths["/mosaics"] and "401" in paths["/mosaics"]["post"]["responses"]
    assert client.get("/mosaics/..%2Fetc").status_code == 404


def test_the_tile_at_a_datetime_is_that_pass_and_the_newest_wins(client: TestClient) -> None:
    tile = _tile(client, "lst-muenster-20240813")
    url = f"/mosaics/layers.lst-muenster/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    own = {day: client.get(f"/layers/lst-muenster-{day.replace('-', '')}/tiles/WebMercatorQuad/"
                           f"{tile.z}/{tile.x}/{tile.y}.png", params=RENDER) for day in (OLD, NEW)}
    assert all(answer.status_code == 200 for answer in own.values())
    assert not np.array_equal(_pixels(own[OLD].content), _pixels(own[NEW].content))  # two different passes
    for day in (OLD, NEW):
        mosaic = client.get(url, params={**RENDER, "datetime": day})
        assert mosaic.status_code == 200, mosaic.text
        np.testing.assert_array_equal(_pixels(mosaic.content), _pixels(own[day].content))
    newest = client.get(url, params=RENDER)
    np.testing.assert_array_equal(_pixels(newest.content), _pixels(own[NEW].content))
    # an interval holding both passes: still the newest on top; an open interval up to the old one: the old one
    both = client.get(url, params={**RENDER, "datetime": f"{OLD}/{NEW}"})
    np.testing.assert_array_equal(_pixels(both.content), _pixels(own[NEW].content))
    before = client.get(url, params={**RENDER, "datetime": f"../{OLD}T23:59:59Z"})
    np.testing.assert_array_equal(_pixels(before.content), _pixels(own[OLD].content))
    # the input collection's mosaic reads the Landsat files themselves (°C, the same values as the layer)
    raw = client.get(f"/mosaics/{LANDSAT}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png",
                     params={**RENDER, "datetime": OLD})
    assert raw.status_code == 200
    assert np.mean(np.abs(_pixels(raw.content).astype(int) - _pixels(own[OLD].content))) < 2


def test_empty_window_and_bad_datetimes_are_clear(client: TestClient) -> None:
    tile = _tile(client, "lst-muenster-20240813")
    url = f"/mosaics/layers.lst-muenster/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    empty = client.get(url, params={"datetime": "2019-01-01"})
    assert empty.status_code == 404 and "2019-01-01" in empty.json()["detail"]
    outside = client.get("/mosaics/layers.lst-muenster/tiles/WebMercatorQuad/12/0/0.png")
    assert outside.status_code == 404 and "covers" in outside.json()["detail"]
    for bad in ("yesterday", "2024-13-45", f"{NEW}/{OLD}", "../..", "2024-01-01/2024-02-01/2024-03-01"):
        answer = client.get(url, params={"datetime": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["detail"].startswith("datetime:"), bad


def test_registering_a_territory_mosaic_needs_a_write_key(client: TestClient, published) -> None:
    from geovigie.service.auth import create_key

    body = {"collection": RESULTS_COLLECTION, "product": "lst-muenster", "bbox": [7.55, 51.9, 7.7, 52.0],
            "title": "Münster centre"}
    assert client.post("/mosaics", json=body).status_code == 401
    assert client.post("/mosaics", json=body, headers={"X-API-Key": "gvk_00000000_" + "x" * 43}).status_code == 403
    _, key = create_key(published, "test")
    headers = {"Authorization": f"Bearer {key}"}
    made = client.post("/mosaics", json=body, headers=headers)
    assert made.status_code == 201, made.text
    mosaic = made.json()
    assert mosaic["bbox"] == body["bbox"] and [p[:10] for p in mosaic["passes"]] == [NEW, OLD]
    assert client.get(f"/mosaics/{mosaic['id']}").json()["title"] == "Münster centre"
    assert mosaic["id"] in {m["id"] for m in client.get("/mosaics").json()}
    tilejson = client.get(f"/mosaics/{mosaic['id']}/WebMercatorQuad/tilejson.json").json()
    assert tilejson["bounds"] == pytest.approx(body["bbox"])
    again = client.post("/mosaics", json=body, headers=headers).json()
    assert again["id"] == mosaic["id"]  # the same search
    refused = [{**body, "collection": "nope"}, {**body, "product": None}, {**body, "bbox": [8, 52, 7, 51]},
               {"collection": LANDSAT, "product": "x"}]
    assert [client.post("/mosaics", json=b, headers=headers).status_code for b in refused] == [404, 400, 422, 400]


def test_gdal_opens_the_mosaic_wmts(published) -> None:
    port = free_port()  # the links are built from the public URL: here the served address
    with served(create_app(published.model_copy(update={"public_url": None, "port": port})), port) as base:
        reads = {}
        for when in (OLD, None):
            query = f"?datetime={when}" if when else ""
            capabilities = f"{base}/mosaics/layers.lst-muenster/WMTSCapabilities.xml{query}"
            with rasterio.Env(GDAL_HTTP_TIMEOUT="30"), rasterio.open(f"WMTS:{capabilities}") as listing:
                layers = listing.subdatasets  # one layer per tile grid
            assert len(layers) == 2 and any("WGS1984Quad" in name for name in layers)
            mercator = next(name for name in layers if "WebMercatorQuad" in name)
            with rasterio.Env(GDAL_HTTP_TIMEOUT="30"), rasterio.open(mercator) as wmts:
                assert wmts.count == 4 and wmts.crs.to_epsg() == 3857
                west, south, east, north = rasterio.warp.transform_bounds(wmts.crs, "EPSG:4326", *wmts.bounds)
                assert west < 7.63 < east and south < 51.96 < north  # Münster
                reads[when] = wmts.read(out_shape=(4, 128, 128))
        assert all((rgba[3] == 255).mean() > 0.5 for rgba in reads.values())  # GDAL read the mosaic's tiles
        assert not np.array_equal(reads[OLD], reads[None])  # the pass asked for, not the newest


def test_dashboard_pass_slider_browses_the_mosaic(published) -> None:
    from tests._support.browser import IDLE, SET_RANGE, map_browser, map_pixels

    port = free_port()
    with served(create_app(published.model_copy(update={"public_url": None, "port": port})), port) as base, \
            map_browser(base) as (page, problems):
        tiles: list[tuple[int, str]] = []
        page.on("response", lambda r: tiles.append((r.status, r.url)) if "/mosaics/layers.lst-muenster/tiles/"
                in r.url else None)
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]", timeout=30000)
        item = page.locator("#mosaics div[data-mosaic-id='layers.lst-muenster']")
        assert "tous, le plus récent au-dessus" in item.inner_text()
        for layer in page.evaluate("() => window.geovigie.map.getStyle().layers.map((l) => l.id)"):
            if layer.endswith("-raster") or layer.endswith("-fill"):
                page.evaluate("(id) => window.geovigie.map.setLayoutProperty(id, 'visibility', 'none')", layer)
        item.locator("input[type=checkbox]").check()
        item.locator("input.opacity").evaluate(SET_RANGE, "1")
        page.evaluate(IDLE)
        newest, _ = map_pixels(page)
        assert tiles and all(status == 200 and "datetime" not in url for status, url in tiles)
        tiles.clear()
        item.locator("input.time").evaluate(SET_RANGE, "2")  # 0: all passes, 1: the newest, 2: the one before
        assert "août 2024" in item.inner_text()
        page.evaluate(IDLE)
        older, _ = map_pixels(page)
        assert tiles and all(status == 200 and f"datetime={OLD}" in url for status, url in tiles)
        assert (np.abs(older - newest).max(axis=2) > 30).sum() > 1000  # the other pass drawn
    assert problems == []


def test_imagery_without_a_range_is_a_clear_answer(client: TestClient) -> None:
    """The Landsat collection's mosaic has no render of its own: a tile without `rescale` is still an image or a
    4xx naming the problem, never a 500."""
    tile = _tile(client, "lst-muenster-20240813")
    answer = client.get(f"/mosaics/{LANDSAT}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png")
    assert answer.status_code < 500, answer.text
    assert client.get(f"/mosaics/{LANDSAT}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png",
                      params={"assets": "nope"}).status_code in (400, 404)
