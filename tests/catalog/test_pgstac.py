"""The pgstac item store on the PostgreSQL the project starts itself, fed by real publishing and ingesting.

Layers are NDVI windows (100 x 100 px) of the shipped Theia Gers scene; their `eo:cloud_cover` is the share of
cloudy pixels in the scene's own CLM mask over the window (measured here, not invented): the window at row 0,
col 0 is clear, the one at row 300, col 150 is the cloudiest of the scene.
"""

from __future__ import annotations

from pathlib import Path

import pystac
import pytest
import rasterio

from geovigie.catalog.stac import PgstacItemStore, SearchQuery, StaticItemStore, export_static
from geovigie.catalog.stac._pgstac import local_path
from geovigie.errors import DatabaseError, InputNotFoundError, UnknownCollectionError
from geovigie.postgres import PostgresNotInstalledError, PrivatePostgres
from geovigie.tiles import RESULTS_COLLECTION, results_collection
from tests._support.pgstac import (
    CLEAR,
    CLOUDY,
    GERS_WHEN,
    private_folder,
    publish_window,
    remove_private_folder,
    start_private_postgres,
)
from tests.conftest import REPO


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory):
    folder = private_folder(tmp_path_factory, "pgstac-catalog")
    cluster = start_private_postgres(folder)
    yield cluster
    cluster.stop()
    remove_private_folder(folder)


@pytest.fixture(scope="session")
def store(pg_cluster: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory):
    with PgstacItemStore(pg_cluster.url, tmp_path_factory.mktemp("pg-results") / "results") as opened:
        yield opened


def test_published_layer_goes_into_pgstac(store: PgstacItemStore, tmp_path: Path) -> None:
    item = publish_window(store, tmp_path, "ndvi-clear", CLEAR)
    assert item.assets["data"].href.startswith("file:///")
    data = local_path(item.assets["data"].href)
    assert data is not None and data.is_file()
    assert data.parent == store.files_dir(RESULTS_COLLECTION, "ndvi-clear")
    with rasterio.open(data) as src:
        assert src.count == 1 and src.shape == (100, 100)
    again = store.get(RESULTS_COLLECTION, "ndvi-clear")
    assert again.properties["eo:cloud_cover"] == 0.0
    assert again.datetime == GERS_WHEN
    assert again.properties["geovigie:layer_kind"] == "continuous"
    assert RESULTS_COLLECTION in store.collection_ids()
    found = [i.id for i in store.search(SearchQuery(collections=(RESULTS_COLLECTION,), bbox=tuple(item.bbox),
                                                    datetime="2018-10-23"))]
    assert "ndvi-clear" in found
    assert "ndvi-clear" not in [i.id for i in store.search(SearchQuery(collections=(RESULTS_COLLECTION,),
                                                                       datetime="2019"))]
    extent = store.collection(RESULTS_COLLECTION)["extent"]["spatial"]["bbox"][0]
    assert extent[0] <= item.bbox[0] and extent[2] >= item.bbox[2]
    assert store.collection(RESULTS_COLLECTION)["title"] == results_collection().title


def test_republish_replaces(store: PgstacItemStore, tmp_path: Path) -> None:
    publish_window(store, tmp_path, "ndvi-cloudy", CLOUDY)
    second = publish_window(store, tmp_path, "ndvi-cloudy", CLOUDY)
    ids = [i.id for i in store.search(SearchQuery(collections=(RESULTS_COLLECTION,), max_items=None))]
    assert ids.count("ndvi-cloudy") == 1
    assert second.properties["eo:cloud_cover"] > 20  # the cloudiest window of the scene


def test_ingested_catalog_searches_like_the_static_one(store: PgstacItemStore, catalog_dir: Path,
                                                       tmp_path: Path) -> None:
    static = StaticItemStore(catalog_dir)
    for collection_id in static.collection_ids():
        collection = pystac.Collection.from_file(str(static.collection_path(collection_id)))
        store.upsert_many(static.search(SearchQuery(collections=(collection_id,), max_items=None)), collection)
    sample = tuple(static.collection_ids())
    gers_box = (0.0, 43.6, 0.2, 43.8)
    for query in (SearchQuery(sample, bbox=gers_box, max_items=None),
                  SearchQuery(sample, datetime="2024/2026", max_items=None),
                  SearchQuery(collections=("s2-l1c-slovenia",), max_items=None, limit=2)):
        expected = {i.id for i in static.search(query)}
        assert expected and {i.id for i in store.search(query)} == expected
    item = store.get("landsat-lst-muenster", "LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10")
    assert item.datetime is None and item.common_metadata.start_datetime is not None
    assert item.assets["lst"].href == (REPO / "data/landsat-lst-muenster" / f"{item.id}.TIF").as_uri()
    exported = StaticItemStore(tmp_path / "export")
    assert export_static(store, exported, ("landsat-lst-muenster",)) == 2
    exported_items = list(exported.search(SearchQuery()))
    assert all(local_path(i.assets["lst"].get_absolute_href() or "").is_file() for i in exported_items)
    assert sorted(i.id for i in exported_items) == sorted(
        i.id for i in static.search(SearchQuery(collections=("landsat-lst-muenster",))))


def test_delete_removes_item_and_files(store: PgstacItemStore, tmp_path: Path) -> None:
    publish_window(store, tmp_path, "ndvi-to-delete", CLEAR)
    folder = store.files_dir(RESULTS_COLLECTION, "ndvi-to-delete")
    assert folder.is_dir()
    store.delete(RESULTS_COLLECTION, "ndvi-to-delete")
    assert not folder.exists()
    with pytest.raises(InputNotFoundError, match="ndvi-to-delete"):
        store.get(RESULTS_COLLECTION, "ndvi-to-delete")


def test_unknown_collection_is_named(store: PgstacItemStore) -> None:
    with pytest.raises(UnknownCollectionError, match="no-such-collection"):
        list(store.search(SearchQuery(collections=("no-such-collection",))))


def test_restart_from_existing_cluster_keeps_items(pg_cluster: PrivatePostgres, store: PgstacItemStore,
                                                   tmp_path: Path) -> None:
    publish_window(store, tmp_path, "ndvi-kept", CLEAR)
    store.close()
    pg_cluster.stop()
    assert not pg_cluster.is_running()
    with pytest.raises(DatabaseError, match="pgstac"):
        store.collection_ids()
    store.close()
    assert pg_cluster.start() == pg_cluster.url and pg_cluster.started
    assert store.get(RESULTS_COLLECTION, "ndvi-kept").id == "ndvi-kept"


def test_a_second_user_of_a_running_cluster_does_not_stop_it(pg_cluster: PrivatePostgres) -> None:
    other = PrivatePostgres(pg_cluster.root)
    assert other.start() == pg_cluster.url and not other.started
    other.stop()
    assert pg_cluster.is_running()


def test_missing_postgres_programs_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresNotInstalledError, match="apt-get install postgresql postgis"):
        PrivatePostgres(tmp_path / "postgres", bin_dir=tmp_path / "no-bin").start()


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/geovigie?host={tmp_path}&port=5432"
    with PgstacItemStore(url, tmp_path / "results") as broken, pytest.raises(DatabaseError, match=str(tmp_path)):
        broken.collection_ids()


def test_open_store_and_catalog_client_take_a_database_url(pg_cluster: PrivatePostgres, store: PgstacItemStore,
                                                            tmp_path: Path) -> None:
    from geovigie.catalog.stac import CatalogClient, open_store

    publish_window(store, tmp_path, "ndvi-by-url", CLEAR)
    opened = open_store(pg_cluster.url, files_root=tmp_path / "results")
    assert isinstance(opened, PgstacItemStore) and opened.get(RESULTS_COLLECTION, "ndvi-by-url").id == "ndvi-by-url"
    opened.close()
    client = CatalogClient.open(pg_cluster.url)
    assert RESULTS_COLLECTION in client.collection_ids()
