"""The STAC API mounted in the service, on the PostgreSQL + pgstac the project starts itself, served by uvicorn on
127.0.0.1 and checked with real clients: stac-api-validator, pystac-client and odc-stac.

The items are what the project really writes there: NDVI windows of the shipped Gers scene published with
`tiles.publish_layer` (see tests/catalog/test_pgstac.py) and the sample catalog ingested item by item.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pystac
import pytest
import rasterio
import uvicorn
from fastapi.testclient import TestClient

from geovigie.catalog.stac import PgstacItemStore, SearchQuery, StaticItemStore
from geovigie.service import create_app
from geovigie.service.stac_api import STAC_API_PREFIX
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION
from tests.catalog.test_pgstac import (
    CLEAR,
    CLOUDY,
    private_folder,
    publish_window,
    remove_private_folder,
    start_private_postgres,
)

GERS = "s2-l2a-theia-gers"
GERS_AREA = {"type": "Polygon", "coordinates": [[[0.05, 43.67], [0.12, 43.67], [0.12, 43.75], [0.05, 43.75],
                                                 [0.05, 43.67]]]}
SCHEMA_HOST = "schemas.stacspec.org"
OFFLINE_SIGNS = ("ConnectionError", "NameResolutionError", "Failed to resolve", "Max retries exceeded",
                 "Failed to establish a new connection", "Network is unreachable")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def stac_server(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path):
    """The geovigie service with the STAC API, over a private cluster holding published and ingested items."""
    folder = private_folder(tmp_path_factory, "stac-api")
    data_dir = folder / "gv"
    cluster = start_private_postgres(data_dir)
    windows = tmp_path_factory.mktemp("windows")
    with PgstacItemStore(cluster.url, data_dir / "results") as store:
        publish_window(store, windows, "ndvi-clear", CLEAR)
        publish_window(store, windows, "ndvi-cloudy", CLOUDY)
        static = StaticItemStore(catalog_dir)
        for collection_id in static.collection_ids():
            collection = pystac.Collection.from_file(str(static.collection_path(collection_id)))
            store.upsert_many(static.search(SearchQuery(collections=(collection_id,), max_items=None)), collection)
    # the service as `geovigie serve` builds it (the pgstac backend mounts the STAC API), writes through the API on
    port = _free_port()
    app = create_app(Settings(data_dir=data_dir, stac_backend="pgstac", stac_api_transactions=True, port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}{STAC_API_PREFIX}", data_dir
    server.should_exit = True
    thread.join(timeout=30)
    cluster.stop()
    remove_private_folder(folder)


def test_landing_page_and_published_layer(stac_server: tuple[str, Path]) -> None:
    url, data_dir = stac_server
    landing = httpx.get(url).json()
    assert landing == httpx.get(url + "/").json()
    assert landing["type"] == "Catalog" and landing["id"] == "geovigie"
    links = {link["rel"]: link["href"] for link in landing["links"]}
    assert links["self"].startswith(url) and links["data"] == url + "/collections"
    assert httpx.get(links["service-desc"]).status_code == 200
    item = httpx.get(f"{url}/collections/{RESULTS_COLLECTION}/items/ndvi-clear").json()
    path = data_dir / "results" / RESULTS_COLLECTION / "ndvi-clear" / "data.tif"
    href = item["assets"]["data"]["href"]
    assert href == url.removesuffix(STAC_API_PREFIX) + "/assets/ndvi-clear/data" and path.is_file()
    # the asset over http, read by GDAL with Range requests (/vsicurl/), is the file published
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(f"/vsicurl/{href}") as remote, \
            rasterio.open(path) as local:
        assert remote.profile["width"] == local.width and remote.crs == local.crs
        np.testing.assert_array_equal(remote.read(1, window=((10, 40), (20, 60))),
                                      local.read(1, window=((10, 40), (20, 60))))
    ranged_bytes = httpx.get(href, headers={"Range": "bytes=0-99"})
    assert ranged_bytes.status_code == 206 and ranged_bytes.content == path.read_bytes()[:100]
    ranged = httpx.get(f"{url}/collections/landsat-lst-muenster/items").json()["features"]
    assert ranged and all(f["properties"]["datetime"] is None for f in ranged)  # pgstac drops it; the API restores it


def test_stac_api_validator(stac_server: tuple[str, Path]) -> None:
    from stac_api_validator.validations import QueryConfig, validate_api

    url, _ = stac_server
    warnings, errors = validate_api(
        url, ["core", "collections", "features", "item-search", "filter"], GERS, json.dumps(GERS_AREA),
        None, None, None, False, QueryConfig(*([None] * 13)), None, None, open_assets_urls=False,
    )
    # offline, the JSON schemas cannot be downloaded from schemas.stacspec.org: exactly those failures are expected
    unexpected = [message for _, message in errors.errors
                  if not (SCHEMA_HOST in message and any(sign in message for sign in OFFLINE_SIGNS))]
    assert unexpected == [], "\n".join(unexpected)
    # warnings allowed: stac-check's best-practice advice on the sample data (upper-case Theia product id, no
    # collection summaries, untitled links) and pgstac's reading of `ids` (combined with the other parameters)
    advice = [message for _, message in warnings.errors
              if "stac-check recommendations" not in message and "to validate ids does not override" not in message]
    assert advice == []


def test_pystac_client_searches_and_odc_stac_loads(stac_server: tuple[str, Path]) -> None:
    import odc.stac
    from pystac_client import Client

    url, data_dir = stac_server
    client = Client.open(url)
    clear, cloudy = (client.get_collection(RESULTS_COLLECTION).get_item(i) for i in ("ndvi-clear", "ndvi-cloudy"))
    assert clear is not None and cloudy is not None
    common = {"collections": [RESULTS_COLLECTION], "bbox": clear.bbox, "datetime": "2018-10-01/2018-10-31"}
    assert {i.id for i in client.search(**common).items()} == {"ndvi-clear"}  # the cloudy window lies elsewhere
    everywhere = {**common, "bbox": [0.0, 43.6, 0.2, 43.8]}
    assert {i.id for i in client.search(**everywhere).items()} == {"ndvi-clear", "ndvi-cloudy"}
    assert list(client.search(**{**everywhere, "datetime": "2019"}).items()) == []
    # CQL2 text travels in a GET query string; POST bodies carry CQL2 JSON
    clear_only = list(client.search(**everywhere, filter="eo:cloud_cover < 20", filter_lang="cql2-text",
                                    method="GET").items())
    assert [i.id for i in clear_only] == ["ndvi-clear"]
    as_json = client.search(**everywhere, filter={"op": ">=", "args": [{"property": "eo:cloud_cover"}, 20]},
                            filter_lang="cql2-json")
    assert [i.id for i in as_json.items()] == ["ndvi-cloudy"]

    loaded = odc.stac.load(clear_only, bands=["data"], chunks={})  # over http: the service's asset URLs
    assert clear_only[0].assets["data"].href.startswith("http://127.0.0.1:")
    # the published file itself (GDAL opening the URL here, in the process that also runs the server, must not
    # list the folder: rasterio holds the GIL while GDAL does, which would wait for the server thread forever)
    local = data_dir / "results" / RESULTS_COLLECTION / "ndvi-clear" / "data.tif"
    with rasterio.open(local) as src:
        expected = src.read(1)
        assert loaded.odc.crs == src.crs
    values = loaded["data"].isel(time=0).values
    assert values.shape == expected.shape
    np.testing.assert_array_equal(values, expected)  # NaN where the CLM mask says cloud, NDVI elsewhere
    assert np.isfinite(values).any()


def test_invalid_item_posted_is_a_clear_4xx(stac_server: tuple[str, Path]) -> None:
    from geovigie.service.auth import create_key

    url, data_dir = stac_server
    key = {"X-API-Key": create_key(Settings(data_dir=data_dir, stac_backend="pgstac"), "test")[1]}  # writes need one
    response = httpx.post(f"{url}/collections/{RESULTS_COLLECTION}/items", headers=key,
                          json={"type": "Feature", "id": "broken", "stac_version": "1.0.0", "properties": {}})
    assert 400 <= response.status_code < 500
    assert "geometry" in response.text  # names what is missing
    response = httpx.post(f"{url}/collections/no-such-collection/items", headers=key, json=httpx.get(
        f"{url}/collections/{RESULTS_COLLECTION}/items/ndvi-clear").json())
    assert 400 <= response.status_code < 500 and "no-such-collection" in response.text
    assert httpx.get(f"{url}/collections/{RESULTS_COLLECTION}/items/broken").status_code == 404


def test_unreachable_database_answers_503_and_the_rest_still_works(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "gv", stac_backend="pgstac",
                        database_url=f"postgresql://postgres@/geovigie?host={tmp_path}&port=5432")
    with TestClient(create_app(settings)) as client:
        response = client.get(STAC_API_PREFIX + "/")
        assert response.status_code == 503
        assert response.json()["code"] == "DatabaseError" and str(tmp_path) in response.json()["description"]
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["layers"] is None  # alive, the database is not
        layers = client.get("/layers")  # the map's layers live in that database too
        assert layers.status_code == 503 and str(tmp_path) in layers.json()["detail"]
        assert client.get("/static/app.js").status_code == 200
