"""Layers through TiTiler's factories: WMTS that GDAL opens, TileJSON with absolute public URLs, default renders
from the layer's item, point values and statistics, ETag / 304, the tile cache by layer version, load shedding,
metrics and request ids."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.service import create_app
from geovigie.service.metrics import Metrics
from geovigie.service.tile_cache import TileCache
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, LayerSpec, Provenance, publish_layer
from tests._support.layers import CLASSES, PROFILE, class_cog
from tests._support.servers import free_port, served

WATER, FOREST = (0, 0, 255), (0, 255, 0)


def _continuous_cog(path: Path, scale: float = 1.0) -> Path:
    from geovigie.cog import write_array_cog

    ramp = np.tile(np.linspace(-1, 1, 300, dtype="float32"), (300, 1))[None] * scale
    return write_array_cog(path, ramp, profile={**PROFILE, "dtype": "float32", "nodata": np.nan})


def _publish_both(settings: Settings, folder: Path) -> None:
    publish_layer(settings.results_dir, class_cog(folder / "c.tif"),
                  LayerSpec("lc", "Land cover", "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))
    publish_layer(settings.results_dir, _continuous_cog(folder / "n.tif"),
                  LayerSpec("ndvi", "NDVI", "continuous", rescale=(-1.0, 1.0), colormap_name="rdylgn", unit="1"),
                  Provenance(inputs=[], lineage="t"))


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path / "gv", public_url="https://geo.example.fr/geovigie")
    _publish_both(settings, tmp_path)
    return TestClient(create_app(settings))


def _tile(client: TestClient, layer_id: str, zoom: int = 14) -> morecantile.Tile:
    west, south, east, north = client.get(f"/layers/{layer_id}").json()["bounds"]
    return morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, zoom)


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).reshape(-1, 4)
    return {tuple(int(v) for v in p[:3]) for p in rgba if p[3] == 255}


def test_links_are_absolute_from_the_public_url(client: TestClient) -> None:
    public = "https://geo.example.fr/geovigie"
    info = client.get("/layers/lc", headers={"Host": "evil.example"}).json()
    assert info["tiles"] == [f"{public}/layers/lc/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png"]
    assert info["wmts"] == f"{public}/layers/lc/WMTSCapabilities.xml"
    assert info["assets"]["data"] == f"{public}/assets/lc/data"
    assert all(href.startswith(f"{public}/assets/lc/") for href in info["assets"].values())
    tilejson = client.get("/layers/lc/WebMercatorQuad/tilejson.json", headers={"X-Forwarded-Host": "evil"}).json()
    assert tilejson["tilejson"] == "3.0.0"
    assert tilejson["tiles"][0].startswith(f"{public}/layers/lc/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}")
    assert tilejson["bounds"] == pytest.approx(info["bounds"], abs=1e-5)
    wmts = client.get("/layers/lc/WMTSCapabilities.xml").text
    assert f"{public}/layers/lc/tiles/WebMercatorQuad/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png" in wmts
    assert "evil" not in wmts and str(client.app.state.layer_index.results_dir) not in wmts


def test_bare_tiles_are_drawn_with_the_layer_default_render(client: TestClient) -> None:
    tile = _tile(client, "lc")
    classes = client.get(f"/layers/lc/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png")
    assert classes.status_code == 200 and classes.headers["content-type"] == "image/png"
    assert _colours(classes.content) == {WATER, FOREST}
    tile = _tile(client, "ndvi")
    bare = client.get(f"/layers/ndvi/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png")
    explicit = client.get(f"/layers/ndvi/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png",
                          params={"rescale": "-1,1", "colormap_name": "rdylgn"})
    assert bare.status_code == explicit.status_code == 200
    assert bare.content == explicit.content  # the item's ramp and range, with no query
    assert len(_colours(bare.content)) > 20  # a ramp, not grey levels
    grey = client.get(f"/layers/ndvi/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png",
                      params={"colormap_name": "greys_r", "rescale": "-1,1"})
    assert _colours(grey.content) != _colours(bare.content)
    legend = client.get("/layers/ndvi/legend").json()
    assert legend[0]["min"] == -1 and legend[0]["max"] == 1 and len(legend[0]["colors"]) == 8
    assert {entry["name"] for entry in client.get("/layers/lc/legend").json()} == {c.name for c in CLASSES}


def test_older_tile_urls_still_answer(client: TestClient) -> None:
    tile = _tile(client, "lc")
    old = client.get(f"/layers/lc/tiles/{tile.z}/{tile.x}/{tile.y}.png")
    new = client.get(f"/layers/lc/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png")
    assert old.status_code == 200 and old.content == new.content


def test_point_values_and_statistics(client: TestClient) -> None:
    west, south, east, north = client.get("/layers/lc").json()["bounds"]
    middle = (south + north) / 2
    east_side = client.get(f"/layers/lc/point/{east - (east - west) * 0.1},{middle}").json()
    west_side = client.get(f"/layers/lc/point/{west + (east - west) * 0.1},{middle}").json()
    assert east_side["values"] == [1] and west_side["values"] == [0]  # forest east, water west (the COG)
    assert client.get(f"/layers/lc/point/{east + 1},{middle}").status_code == 404
    stats = client.get("/layers/lc/statistics").json()["b1"]
    assert stats["min"] == 0 and stats["max"] == 1 and stats["count"] > 0
    ndvi = client.get("/layers/ndvi/statistics").json()["b1"]
    assert ndvi["min"] == pytest.approx(-1, abs=0.02) and ndvi["max"] == pytest.approx(1, abs=0.02)


def test_conditional_get_on_tiles_and_metadata(client: TestClient) -> None:
    tile = _tile(client, "lc")
    url = f"/layers/lc/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    first = client.get(url)
    etag = first.headers["etag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    for path in ("/layers/lc", "/layers", "/layers/lc/WebMercatorQuad/tilejson.json",
                 "/layers/lc/WMTSCapabilities.xml"):
        answer = client.get(path)
        assert answer.status_code == 200 and "etag" in answer.headers, path
        assert client.get(path, headers={"If-None-Match": answer.headers["etag"]}).status_code == 304, path


def test_republishing_invalidates_cached_tiles(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    spec = LayerSpec("ndvi", "NDVI", "continuous", rescale=(-1.0, 1.0), colormap_name="rdylgn")
    publish_layer(settings.results_dir, _continuous_cog(tmp_path / "a.tif"), spec, Provenance(inputs=[], lineage="t"))
    client = TestClient(create_app(settings))
    tile = _tile(client, "ndvi")
    url = f"/layers/ndvi/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    before = client.get(url)
    assert client.get(url).content == before.content  # a hit
    publish_layer(settings.results_dir, _continuous_cog(tmp_path / "b.tif", scale=-1.0), spec,
                  Provenance(inputs=[], lineage="t"))
    after = client.get(url)
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert after.content != before.content
    assert client.get(url, headers={"If-None-Match": before.headers["etag"]}).status_code == 200  # a hit
    metrics = client.get("/metrics").text
    assert 'geovigie_tile_cache_total{result="hit"} 2.0' in metrics
    assert 'geovigie_tile_cache_total{result="miss"} 2.0' in metrics
    assert "geovigie_tile_seconds_bucket" in metrics and "geovigie_requests_total" in metrics


def test_disk_cache_is_shared_by_apps(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv", tile_cache_dir=tmp_path / "tiles")
    _publish_both(settings, tmp_path)
    first, second = TestClient(create_app(settings)), TestClient(create_app(settings))
    tile = _tile(first, "lc")
    url = f"/layers/lc/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    rendered = first.get(url)
    assert list((tmp_path / "tiles").glob("*/*"))
    again = second.get(url)  # another process would read the same folder
    assert again.content == rendered.content and again.headers["etag"] == rendered.headers["etag"]
    assert 'geovigie_tile_cache_total{result="hit"} 1.0' in second.get("/metrics").text


def test_too_many_waiting_tiles_are_shed_with_503(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    _publish_both(settings, tmp_path)
    release = asyncio.Event()

    async def slow_renderer(scope, receive, send) -> None:  # stands for a tile that takes long to render
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"image/png")]})
        await send({"type": "http.response.body", "body": b"png"})

    cache = TileCache(slow_renderer, LayerIndex(settings.results_dir), Metrics(), max_renders=1, max_waiting=1)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=cache)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            requests = [asyncio.create_task(http.get(f"/layers/lc/tiles/WebMercatorQuad/14/{x}/5000.png"))
                        for x in range(3)]
            for _ in range(50):  # one renders, one waits, the third is refused at once
                await asyncio.sleep(0.01)
                if requests[2].done():
                    break
            release.set()
            return list(await asyncio.gather(*requests))

    answers = asyncio.run(scenario())
    assert sorted(answer.status_code for answer in answers) == [200, 200, 503]
    shed = next(answer for answer in answers if answer.status_code == 503)
    assert shed.headers["retry-after"] == "1" and "retry" in shed.json()["detail"]
    assert cache.metrics.shed._value.get() == 1


def test_every_response_has_a_request_id(client: TestClient) -> None:
    ids = {client.get(path).headers["x-request-id"] for path in ("/healthz", "/layers", "/nope")}
    assert len(ids) == 3
    assert client.get("/healthz", headers={"X-Request-ID": "mine"}).headers["x-request-id"] != "mine"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[str]:
    """The service on a free loopback port with both layers published."""
    port = free_port()
    settings = Settings(data_dir=tmp_path / "gv", port=port)
    _publish_both(settings, tmp_path)
    with served(create_app(settings), port) as base:
        yield base


def test_gdal_opens_the_wmts_and_reads_class_colours(live: str) -> None:
    capabilities = f"{live}/layers/lc/WMTSCapabilities.xml"
    with rasterio.Env(GDAL_HTTP_TIMEOUT=30), rasterio.open(f"WMTS:{capabilities}") as listing:
        layers = listing.subdatasets  # one layer per tile grid
    assert len(layers) == 2 and any("WGS1984Quad" in name for name in layers)
    mercator = next(name for name in layers if "WebMercatorQuad" in name)
    with rasterio.Env(GDAL_HTTP_TIMEOUT=30), rasterio.open(mercator) as wmts:
        assert wmts.count == 4 and wmts.crs.to_epsg() == 3857
        # the whole layer (the dataset's extent), read at about zoom 13 through the WMTS overviews: class colours,
        # water west and forest east as in the COG
        rgba = wmts.read(out_shape=(4, 224, 224))
    opaque = rgba[3] == 255
    colours = {tuple(int(v) for v in rgba[:3, r, c]) for r, c in zip(*np.nonzero(opaque), strict=True)}
    assert colours == {WATER, FOREST}
    west_half = rgba[:3, :, : rgba.shape[2] // 4][:, opaque[:, : rgba.shape[2] // 4]]
    assert {tuple(int(v) for v in px) for px in west_half.T} == {WATER}


def test_assets_answer_range_requests_that_vsicurl_reads(live: str, tmp_path: Path) -> None:
    href = httpx.get(f"{live}/layers/lc").json()["assets"]["data"]
    assert href == f"{live}/assets/lc/data"
    local = tmp_path / "gv" / "results" / "geovigie-results" / "lc" / "data.tif"
    partial = httpx.get(href, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206 and partial.content == local.read_bytes()[100:200]
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(f"/vsicurl/{href}") as remote, \
            rasterio.open(local) as src:
        np.testing.assert_array_equal(remote.read(1), src.read(1))
        assert remote.colormap(1)[1][:3] == FOREST
