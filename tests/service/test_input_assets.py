"""Input imagery over http: the STAC API gives the shipped scenes' assets as http URLs the service serves with
Range requests, which GDAL opens over `/vsicurl/` (as QGIS or odc-stac on another machine would); nothing but the
files the input items name is served."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pystac
import rasterio

from geovigie.catalog.samples import build_sample_catalog
from geovigie.catalog.stac import PgstacItemStore
from geovigie.service import create_app
from geovigie.service.stac_api import STAC_API_PREFIX
from geovigie.tiles import index_inputs
from tests._support.servers import free_port, served
from tests._support.writes import writes_settings
from tests.conftest import DATA

GERS = "s2-l2a-theia-gers"


def test_input_items_carry_http_hrefs_that_gdal_opens_over_vsicurl(tmp_path: Path, pgstac_url: str) -> None:
    port = free_port()
    settings = writes_settings(tmp_path / "gv", pgstac_url, port=port)
    build_sample_catalog(DATA, settings.catalog_dir)
    assert index_inputs(settings) > 0
    # an item posted with a hostile href (e.g. through STAC transactions): its asset is not served
    hostile = pystac.Item("hostile", {"type": "Point", "coordinates": [0.1, 43.7]}, [0.1, 43.7, 0.1, 43.7],
                          None, {"start_datetime": "2018-01-01T00:00:00Z", "end_datetime": "2018-01-02T00:00:00Z"})
    hostile.add_asset("data", pystac.Asset(str(DATA.parent / "pyproject.toml")))
    with PgstacItemStore(pgstac_url, settings.catalog_dir) as store:
        store.upsert(hostile, pystac.Collection.from_file(str(settings.catalog_dir / GERS / "collection.json")))
    with served(create_app(settings), port) as base:
        items = httpx.get(f"{base}{STAC_API_PREFIX}/collections/{GERS}/items", params={"limit": 10}).json()
        scene = next(f for f in items["features"] if f["id"] != "hostile")
        hrefs = {key: asset["href"] for key, asset in scene["assets"].items()}
        assert all(href.startswith(f"{base}/assets/inputs/{GERS}/{scene['id']}/") for href in hrefs.values()), hrefs
        key = next(k for k, href in hrefs.items() if href and scene["assets"][k].get("type", "").startswith(
            "image/tiff"))
        local = Path(pystac.Item.from_file(str(settings.catalog_dir / GERS / scene["id"] / f"{scene['id']}.json"))
                     .assets[key].get_absolute_href())
        # GDAL must not list the folder: rasterio holds the GIL while GDAL waits, and the server runs in a thread
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), \
                rasterio.open(f"/vsicurl/{hrefs[key]}") as remote, rasterio.open(local) as src:
            assert (remote.width, remote.height, remote.crs) == (src.width, src.height, src.crs)
            window = ((5, 45), (10, 70))
            np.testing.assert_array_equal(remote.read(1, window=window), src.read(1, window=window))
        ranged = httpx.get(hrefs[key], headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == local.read_bytes()[100:200]
        bad = httpx.get(f"{base}{STAC_API_PREFIX}/collections/{GERS}/items/hostile").json()["assets"]["data"]["href"]
        assert bad == f"{base}/assets/inputs/{GERS}/hostile/data"
        assert httpx.get(bad).status_code == 404  # outside the input catalog and the sample data
        assert httpx.get(f"{base}/assets/inputs/{GERS}/nothing/data").status_code == 404
        assert httpx.get(f"{base}/assets/inputs/..%2F..%2Fetc/passwd/data").status_code == 404
