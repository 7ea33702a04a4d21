"""The service's bad-input catalogue: whatever a client sends, a 4xx naming the problem, never a 500, never a stall.

One real service (uvicorn on 127.0.0.1, the STAC API over the session's PostgreSQL + pgstac with one published
layer) takes malformed searches, oversized bodies, hostile headers and huge ids; `/healthz` must keep answering
while the heavy ones are refused. Broken data in the store (a pgstac row whose properties are not an object, a
truncated COG) is skipped and reported, the rest of the service unaffected.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.service import create_app
from geovigie.service.stac_guard import MAX_LIMIT, MAX_VERTICES
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION, LayerSpec, Provenance, publish_layer, results_store_for
from tests._support.layers import CLASSES, class_cog
from tests._support.servers import free_port, served
from tests.conftest import fresh_database

LAYER_ID = "landcover-test"


def _publish(settings: Settings, folder: Path, layer_id: str = LAYER_ID) -> None:
    publish_layer(results_store_for(settings), class_cog(folder / f"{layer_id}.tif"),
                  LayerSpec(layer_id, layer_id, "classes", classes=CLASSES), Provenance(inputs=[], lineage="t"))


@pytest.fixture(scope="module")
def live(pgstac_cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """The service on a free loopback port over a pgstac database holding one published class layer."""
    folder = tmp_path_factory.mktemp("live")
    port = free_port()
    settings = Settings(data_dir=folder / "gv", stac_backend="pgstac", database_url=fresh_database(pgstac_cluster),
                        port=port)
    _publish(settings, folder)
    with served(create_app(settings), port) as base:
        yield base, settings


def _polygon(vertices: int) -> dict[str, object]:
    ring = [[0.17 + 0.05 * np.cos(a), 43.66 + 0.05 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, vertices)]
    ring[-1] = ring[0]
    return {"type": "Polygon", "coordinates": [ring]}


BAD_GET_SEARCHES = {
    "bbox nan": ({"bbox": "nan,43,1,44"}, "finite"),
    "bbox inf": ({"bbox": "0,43,inf,44"}, "finite"),
    "bbox off the globe": ({"bbox": "0,43,1,95"}, "within"),
    "bbox of 3 numbers": ({"bbox": "0,43,1"}, "4 (or 6) numbers"),
    "bbox text": ({"bbox": "a,b,c,d"}, "numbers"),
    "limit 0": ({"limit": "0"}, "limit"),
    "limit text": ({"limit": "ten"}, "limit"),
    "token garbage": ({"token": "zzz"}, "paging token"),
    "token unknown": ({"token": "next:no-such-item"}, "paging token"),
    "filter function": ({"filter": "pg_sleep(5) = 1", "filter-lang": "cql2-text"}, "unknown function 'pg_sleep'"),
    "filter unparsable": ({"filter": "((", "filter-lang": "cql2-text"}, "not valid CQL2"),
    "filter json function": ({"filter": json.dumps({"op": "pg_sleep", "args": [5]}), "filter-lang": "cql2-json"},
                             "unknown function"),
    "intersects not json": ({"intersects": "{bad"}, "intersects"),
    "intersects not a geometry": ({"intersects": "[1, 2]"}, "geometry"),
}


@pytest.mark.parametrize("case", BAD_GET_SEARCHES)
def test_malformed_get_search_is_400(live: tuple[str, Settings], case: str) -> None:
    base, _ = live
    params, named = BAD_GET_SEARCHES[case]
    response = httpx.get(f"{base}/api/stac/search", params=params, timeout=30)
    assert response.status_code == 400, response.text
    assert named.lower() in response.text.lower()


BAD_POST_SEARCHES = {
    "a JSON list": ([1, 2], "JSON object"),
    "a JSON string": ("search", "JSON object"),
    "bbox nan": ({"bbox": [float("nan"), 43, 1, 44]}, "finite"),
    "limit negative": ({"limit": -5}, "limit"),
    "limit fractional": ({"limit": 2.5}, "limit"),
    "filter function": ({"filter": {"op": "=", "args": [{"op": "pg_sleep", "args": [5]}, 1]},
                         "filter-lang": "cql2-json"}, "unknown function"),
    "too many vertices": ({"intersects": _polygon(MAX_VERTICES + 1)}, f"more than {MAX_VERTICES} vertices"),
    "too many vertices in a filter": ({"filter": {"op": "s_intersects", "args": [
        {"property": "geometry"}, _polygon(MAX_VERTICES + 1)]}, "filter-lang": "cql2-json"}, "vertices"),
}


@pytest.mark.parametrize("case", BAD_POST_SEARCHES)
def test_malformed_post_search_is_400(live: tuple[str, Settings], case: str) -> None:
    base, _ = live
    body, named = BAD_POST_SEARCHES[case]
    response = httpx.post(f"{base}/api/stac/search", content=json.dumps(body), timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert named.lower() in response.text.lower()


def test_a_limit_over_the_maximum_is_lowered_to_it(live: tuple[str, Settings]) -> None:
    base, _ = live
    for answer in (httpx.get(f"{base}/api/stac/search", params={"limit": 10**9, "collections": RESULTS_COLLECTION}),
                   httpx.post(f"{base}/api/stac/search", json={"limit": 10**9, "collections": [RESULTS_COLLECTION]})):
        assert answer.status_code == 200 and [f["id"] for f in answer.json()["features"]] == [LAYER_ID]
        next_links = [link for link in answer.json()["links"] if link["rel"] == "next"]
        assert next_links == []


def test_invalid_json_body_is_400(live: tuple[str, Settings]) -> None:
    base, _ = live
    response = httpx.post(f"{base}/api/stac/search", content=b"{not json", timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["description"]


def test_well_formed_searches_still_answer(live: tuple[str, Settings]) -> None:
    base, _ = live
    found = httpx.post(f"{base}/api/stac/search", json={"intersects": _polygon(MAX_VERTICES - 10),
                                                         "limit": MAX_LIMIT}, timeout=60)
    assert found.status_code == 200 and [f["id"] for f in found.json()["features"]] == [LAYER_ID]
    filtered = httpx.get(f"{base}/api/stac/search", timeout=30, params={
        "filter": "\"geovigie:layer_kind\" = 'classes'", "filter-lang": "cql2-text", "bbox": "0,43,1,44"})
    assert filtered.status_code == 200 and [f["id"] for f in filtered.json()["features"]] == [LAYER_ID]


def _stream(size: int, chunk: int = 2**20) -> Iterator[bytes]:
    block = b" " * chunk
    for _ in range(size // chunk):
        yield block


def test_big_bodies_are_413_and_healthz_keeps_answering(live: tuple[str, Settings]) -> None:
    """A 1M-vertex `intersects` (about 40 MB) and 48 MB bodies (3 × the service's limit), sent while /healthz is
    polled: all refused with 413 (the streamed ones, without a Content-Length, counted as they arrive), /healthz
    answering all along."""
    base, _ = live
    huge = json.dumps({"intersects": _polygon(1_000_000)}).encode()
    with httpx.Client(timeout=120) as client, ThreadPoolExecutor(3) as pool:
        heavy = [pool.submit(client.post, f"{base}/api/stac/search", content=huge,
                             headers={"content-type": "application/json"}),
                 pool.submit(client.post, f"{base}/api/stac/search", content=_stream(48 * 2**20),
                             headers={"content-type": "application/json"}),
                 pool.submit(client.post, f"{base}/layers/{LAYER_ID}/statistics", content=_stream(48 * 2**20),
                             headers={"content-type": "application/json"})]
        beats = 0
        while not all(future.done() for future in heavy):
            assert client.get(f"{base}/healthz", timeout=10).status_code == 200  # generous bound: no stall
            beats += 1
        statuses = [future.result().status_code for future in heavy]
    assert statuses == [413, 413, 413] and beats >= 1


def test_declared_length_over_the_limit_is_refused_unread(live: tuple[str, Settings]) -> None:
    base, _ = live
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /api/stac/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 209715200\r\n\r\n{")
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "javascript"},
    {"Forwarded": "proto=javascript;host=evil.example"},
    {"X-Forwarded-Prefix": "/evil.example", "X-Forwarded-Port": "666"},
])
def test_links_come_from_the_public_url_only(live: tuple[str, Settings], headers: dict[str, str]) -> None:
    base, settings = live
    for path in ("/api/stac/", f"/api/stac/collections/{RESULTS_COLLECTION}/items", "/api/stac/search",
                 f"/layers/{LAYER_ID}", f"/layers/{LAYER_ID}/WebMercatorQuad/tilejson.json",
                 f"/layers/{LAYER_ID}/WMTSCapabilities.xml"):
        response = httpx.get(base + path, headers=headers, timeout=30)
        assert response.status_code == 200, path
        assert "evil.example" not in response.text and "javascript" not in response.text
    links = httpx.get(f"{base}/api/stac/", headers=headers).json()["links"]
    assert all(link["href"].startswith(settings.public_base_url + "/") for link in links)


@pytest.mark.parametrize("path", ["/api/stac/collections/{long}", "/api/stac/collections/{long}/items",
                                  f"/api/stac/collections/{RESULTS_COLLECTION}/items/{{long}}",
                                  "/layers/{long}", "/layers/{long}/tiles/WebMercatorQuad/1/1/1.png",
                                  "/assets/{long}/data", f"/assets/{LAYER_ID}/{{long}}"])
def test_long_ids_are_not_echoed_whole(live: tuple[str, Settings], path: str) -> None:
    base, _ = live
    response = httpx.get(base + path.format(long="x" * 5000), timeout=30)
    assert 400 <= response.status_code < 500
    assert "x" * 100 not in response.text and len(response.content) < 1000


def test_the_stac_api_connections_have_a_statement_timeout(tmp_path: Path, pgstac_url: str) -> None:
    from geovigie.service.stac_api import STATEMENT_TIMEOUT_MS, StacApiMount

    app = create_app(Settings(data_dir=tmp_path / "gv", stac_backend="pgstac", database_url=pgstac_url))
    mount = next(route.app for route in app.routes if isinstance(getattr(route, "app", None), StacApiMount))
    with TestClient(app) as client:
        assert client.get("/api/stac/").status_code == 200  # connects the pools
        shown = client.portal.call(mount.app.state.readpool.fetchval, "SHOW statement_timeout")
        waited = client.portal.call(mount.app.state.readpool.fetch, "SELECT pg_sleep(0)")  # the pool works
    assert shown == f"{STATEMENT_TIMEOUT_MS // 1000}s" and waited


# broken data in the store


def test_a_pgstac_row_whose_properties_are_not_an_object_is_one_broken_layer(tmp_path: Path,
                                                                              pgstac_url: str) -> None:
    import psycopg

    settings = Settings(data_dir=tmp_path / "gv", stac_backend="pgstac", database_url=pgstac_url)
    _publish(settings, tmp_path, "good")
    _publish(settings, tmp_path, "bad")
    with psycopg.connect(pgstac_url, autocommit=True) as conn:
        conn.execute("UPDATE pgstac.items SET content = jsonb_set(content, '{properties}', '[1, 2]'::jsonb) "
                     "WHERE id = 'bad'")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json()["layers"] == 2
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert list(ready.json()["broken"]) == ["bad"] and "not JSON objects" in ready.json()["broken"]["bad"]
        assert [layer["id"] for layer in client.get("/layers").json()] == ["good"]
        bad = client.get("/layers/bad")
        assert bad.status_code == 404 and "'bad' is broken" in bad.json()["detail"]
        assert client.get("/layers/good").status_code == 200


def _center_tile(client: TestClient, layer_id: str, zoom: int = 14) -> str:
    import morecantile

    west, south, east, north = client.get(f"/layers/{layer_id}").json()["bounds"]
    tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, zoom)
    return f"/layers/{layer_id}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"


def test_a_truncated_cog_is_reported_and_only_its_tiles_fail(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv")
    _publish(settings, tmp_path, "good")
    _publish(settings, tmp_path, "cut")
    with TestClient(create_app(settings)) as client:
        good_tile, cut_tile = _center_tile(client, "good"), _center_tile(client, "cut")
        data = settings.results_dir / RESULTS_COLLECTION / "cut" / "data.tif"
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and "truncated" in ready["broken"]["cut"]
        cut = client.get(cut_tile)
        assert cut.status_code == 404 and "'cut' is broken: its data file is truncated" in cut.json()["detail"]
        assert client.get("/assets/cut/data").status_code == 404
        assert str(tmp_path) not in cut.text
        assert client.get(good_tile).status_code == 200
        assert [layer["id"] for layer in client.get("/layers").json()] == ["good"]


def test_a_cog_unreadable_at_render_time_is_a_clear_500_then_listed_broken(tmp_path: Path) -> None:
    """Blocks overwritten with garbage (the file keeps its size): the first tile read fails with a 500 naming the
    layer (not its file); the layer is then listed as broken."""
    settings = Settings(data_dir=tmp_path / "gv")
    _publish(settings, tmp_path, "garbled")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        tile = _center_tile(client, "garbled", zoom=16)
        data = settings.results_dir / RESULTS_COLLECTION / "garbled" / "data.tif"
        raw = bytearray(data.read_bytes())
        with rasterio.open(data) as src:  # the IFDs stay; the full-resolution blocks become noise
            header = min(int(src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1))
                         for row in range(2) for col in range(2))
        raw[header:] = np.random.default_rng(0).integers(0, 256, len(raw) - header, dtype=np.uint8).tobytes()
        data.write_bytes(bytes(raw))
        first = client.get(tile)
        if first.status_code == 200:  # the codec decoded noise: nothing to report, but it must be an image
            Image.open(io.BytesIO(first.content)).verify()
            pytest.skip("the garbled blocks decoded without error")
        assert first.status_code == 500 and "'garbled' is broken" in first.json()["detail"]
        assert str(tmp_path) not in first.text
        assert "garbled" in client.get("/readyz").json()["broken"]
