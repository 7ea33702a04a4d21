"""Publishing goes into the STAC API (pgstac) through one store, the map reads its layers from there, and the static
catalog stays as an export; without PostgreSQL, `auto` falls back to the static catalog with one notice.

Real components: the NDVI workflow on the shipped Gers scene (Theia L2A), the PostgreSQL cluster the project starts
itself (the session cluster of tests/conftest.py, one fresh database per test), the service through its ASGI app.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pydantic
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from geovigie.catalog.samples import GERS
from geovigie.catalog.stac import CatalogClient, MirroredItemStore, PgstacItemStore, StaticItemStore, export_static
from geovigie.postgres import PrivatePostgres
from geovigie.service import create_app, stac_api_url
from geovigie.settings import Settings
from geovigie.tiles import (
    RESULTS_COLLECTION,
    LayerIndex,
    results_store_for,
    stac_backend,
    stop_results_database,
    validate_offline,
)
from tests.conftest import require


@pytest.fixture
def gers_item(catalog_dir: Path):
    return CatalogClient.open(catalog_dir).search(collections=[GERS]).item_list()[0]


@pytest.fixture
def published(tmp_path: Path, pgstac_url: str, gers_item):
    """The NDVI workflow run on the Gers scene with the pgstac backend."""
    from geovigie import workflows

    settings = Settings(data_dir=tmp_path / "gv", stac_backend="pgstac", database_url=pgstac_url)
    return settings, workflows.ndvi(gers_item, settings)


def _opaque_pixels(png: bytes) -> int:
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).reshape(-1, 4)
    return int((rgba[:, 3] == 255).sum())


def test_workflow_publish_lands_in_pgstac_and_the_map_reads_it_from_there(published) -> None:
    import morecantile

    settings, layer = published
    assert isinstance(results_store_for(settings), MirroredItemStore)
    with PgstacItemStore(settings.database_url, settings.results_dir) as store:
        stored = store.get(RESULTS_COLLECTION, layer.id)
    data = Path(stored.assets["data"].href.removeprefix("file://"))
    assert data == (settings.results_dir / RESULTS_COLLECTION / layer.id / "data.tif").resolve() and data.is_file()
    # the static copy is only an export: without it the map still lists and draws the layer from pgstac
    layer.item_path.unlink()
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json()["stac_api"] == "/api/stac"
        listed = client.get("/layers").json()
        assert [entry["id"] for entry in listed] == [layer.id]
        west, south, east, north = listed[0]["bounds"]
        tile = morecantile.tms.get("WebMercatorQuad").tile((west + east) / 2, (south + north) / 2, 13)
        response = client.get(f"/layers/{layer.id}/tiles/{tile.z}/{tile.x}/{tile.y}.png")
        assert response.status_code == 200 and _opaque_pixels(response.content) > 1000
        found = client.get("/api/stac/search", params={"collections": RESULTS_COLLECTION}).json()
        assert [feature["id"] for feature in found["features"]] == [layer.id]
        assert found["features"][0]["properties"]["title"] == stored.properties["title"]
        assert client.get("/layers/no-such-layer").status_code == 404
        assert client.get("/layers/..%2Fsecret").status_code == 404


def test_static_export_matches_what_pgstac_holds(published, tmp_path: Path) -> None:
    settings, layer = published
    exported = json.loads(layer.item_path.read_text(encoding="utf-8"))
    validate_offline(layer.item)
    assert exported["assets"]["data"]["href"] == "./data.tif"
    # the catalog item it came from: linked when in the data directory, else named (never a broken link)
    assert layer.item.get_links("derived_from") or layer.item.properties["geovigie:inputs"]
    # what the store reads back from pgstac is the export, link for link and asset for asset
    again = results_store_for(settings).get(RESULTS_COLLECTION, layer.id)
    assert again.get_self_href() == str(layer.item_path)
    assert {k: a.href for k, a in again.assets.items()} == {k: a["href"] for k, a in exported["assets"].items()}
    assert {(link.rel, posixpath.normpath(link.href)) for link in again.links if link.rel != "self"} >= {
        (link["rel"], posixpath.normpath(link["href"])) for link in exported["links"]
        if link["rel"] in ("derived_from", "via")}
    assert again.properties == exported["properties"] and again.bbox == exported["bbox"]
    # and a full re-export of the database gives the same item
    with PgstacItemStore(settings.database_url, settings.results_dir) as store:
        target = StaticItemStore(settings.results_dir)
        assert export_static(store, target, (RESULTS_COLLECTION,)) == 1
    assert json.loads(layer.item_path.read_text(encoding="utf-8"))["assets"] == exported["assets"]
    assert LayerIndex(settings.results_dir).get(layer.id).path == LayerIndex(results_store_for(settings)).get(
        layer.id).path


def test_auto_without_postgres_falls_back_to_static_with_one_notice(tmp_path: Path, caplog, gers_item) -> None:
    from geovigie import workflows

    empty = tmp_path / "no-postgres"
    empty.mkdir()
    settings = Settings(data_dir=tmp_path / "gv", stac_backend="auto", postgres_bin_dir=empty)
    with caplog.at_level(logging.WARNING, logger="geovigie.tiles"):
        assert stac_backend(settings) == "static"
        assert isinstance(results_store_for(settings), StaticItemStore)
        layer = workflows.ndvi(gers_item, settings)
        with TestClient(create_app(settings)) as client:
            assert client.get("/api/stac/").status_code == 404
            assert client.get("/healthz").json()["stac_api"] is None
            assert [entry["id"] for entry in client.get("/layers").json()] == [layer.id]
    notices = [r.getMessage() for r in caplog.records if "no STAC API" in r.getMessage()]
    assert len(notices) == 1, notices
    assert "apt-get install postgresql postgis" in notices[0] and "GEOVIGIE_DATABASE_URL" in notices[0]
    assert str(empty) in notices[0] and stac_api_url(settings) is None


def test_auto_picks_pgstac_with_a_database_url_or_postgres_installed(tmp_path: Path) -> None:
    url = "postgresql://geovigie:secret@db.example:5432/geovigie"
    assert stac_backend(Settings(data_dir=tmp_path, stac_backend="auto", database_url=url,
                                 postgres_bin_dir=tmp_path)) == "pgstac"
    assert stac_backend(Settings(data_dir=tmp_path, stac_backend="static", database_url=url)) == "static"
    with pytest.raises(pydantic.ValidationError, match="postgresql://"):
        Settings(database_url="mysql://root@db.example/geovigie")
    from geovigie.postgres import PostgresNotInstalledError, find_bin_dir

    try:
        find_bin_dir()
    except PostgresNotInstalledError as err:
        require(False, str(err))
    settings = Settings(data_dir=tmp_path, stac_backend="auto")
    assert stac_backend(settings) == "pgstac" and stac_api_url(settings) == "http://127.0.0.1:8000/api/stac"


def test_the_service_starts_the_private_cluster_and_stops_it_with_the_app() -> None:
    """No database URL: the private cluster under the data directory (its own folder: as root the server runs as
    `postgres`, which cannot enter pytest's 0700 folders)."""
    from geovigie.postgres import PostgresNotInstalledError, find_bin_dir

    try:
        find_bin_dir()
    except PostgresNotInstalledError as err:
        require(False, str(err))
    folder = Path(tempfile.mkdtemp(prefix="geovigie-test-service-"))
    folder.chmod(0o711)  # ours: geovigie changes no mode of a folder it did not create
    try:
        settings = Settings(data_dir=folder / "gv", stac_backend="pgstac")
        cluster = PrivatePostgres(settings.data_dir / "postgres")
        with TestClient(create_app(settings)) as client:
            assert client.get("/layers").json() == []  # the first read starts the cluster
            assert cluster.is_running()
            landing = client.get("/api/stac/").json()
            assert landing["id"] == "geovigie"
            assert client.post("/api/stac/collections", json={}).status_code == 405  # writes off by default
        assert not cluster.is_running()
    finally:
        stop_results_database(Settings(data_dir=folder / "gv", stac_backend="pgstac"))  # if an assert failed first
        shutil.rmtree(folder, ignore_errors=True)


def test_ingested_orthophotos_go_into_the_stac_api_and_the_static_export(tmp_path: Path, pgstac_url: str) -> None:
    from geovigie.catalog.ortho import ingest_ortho
    from geovigie.tiles import inputs_store_for
    from tests.conftest import DATA

    delivery = tmp_path / "delivery"
    delivery.mkdir()
    shutil.copy(DATA / "ortho-like-gers" / "rvb.tif", delivery / "32-2018-0463-6294-LA93-0M10-E080.tif")
    settings = Settings(data_dir=tmp_path / "gv", stac_backend="pgstac", database_url=pgstac_url)
    report = ingest_ortho(delivery, inputs_store_for(settings))
    assert len(report.ingested) == 1
    with PgstacItemStore(pgstac_url, settings.catalog_dir) as store:
        item = store.get("ign-ortho", "32-2018-0463-6294-LA93-0M10-E080")
    assert all(Path(a.href.removeprefix("file://")).is_file() for a in item.assets.values()) and item.assets
    exported = StaticItemStore(settings.catalog_dir).get("ign-ortho", "32-2018-0463-6294-LA93-0M10-E080")
    assert exported.id == item.id
    assert len(ingest_ortho(delivery, inputs_store_for(settings)).skipped) == 1  # idempotent through pgstac too
