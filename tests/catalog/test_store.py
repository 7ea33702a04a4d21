"""The static item store: search/get/upsert/delete, locking between processes, constant cost per upsert."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pystac
import pytest

from geovigie.catalog.stac import (
    CatalogClient,
    MirroredItemStore,
    PgstacItemStore,
    SearchQuery,
    StaticItemStore,
    open_store,
)
from geovigie.errors import InputNotFoundError, InvalidInputError
from geovigie.postgres import StacDatabase
from tests._support.layers import CLASSES, class_cog

COLLECTION = "layers"


def _item(item_id: str, west: float = 0.0) -> pystac.Item:
    from datetime import UTC, datetime

    geometry = {"type": "Polygon", "coordinates": [[[west, 43], [west + 1, 43], [west + 1, 44], [west, 44],
                                                    [west, 43]]]}
    return pystac.Item(item_id, geometry, [west, 43, west + 1, 44], datetime(2024, 5, 1, tzinfo=UTC), {},
                       collection=COLLECTION)


def test_upsert_get_search_delete(tmp_path: Path) -> None:
    store = StaticItemStore(tmp_path / "store")
    store.upsert(_item("a", 0.0))
    store.upsert(_item("b", 10.0))
    assert store.get(COLLECTION, "a").bbox == [0.0, 43, 1.0, 44]
    found = [i.id for i in store.search(SearchQuery(collections=(COLLECTION,), bbox=(9.5, 43, 10.5, 44)))]
    assert found == ["b"]
    # the folder is a valid static catalog that pystac (and STAC Browser) can walk
    catalog = pystac.Catalog.from_file(str(tmp_path / "store" / "catalog.json"))
    assert sorted(i.id for i in catalog.get_items(recursive=True)) == ["a", "b"]
    collection = json.loads((tmp_path / "store" / COLLECTION / "collection.json").read_text())
    assert collection["extent"]["spatial"]["bbox"] == [[0.0, 43, 11.0, 44]]
    store.delete(COLLECTION, "a")
    with pytest.raises(InputNotFoundError):
        store.get(COLLECTION, "a")
    assert [i.id for i in CatalogClient.open(tmp_path / "store").search(collections=[COLLECTION])] == ["b"]


def test_open_store_decides_what_a_location_is(tmp_path: Path) -> None:
    """Folder, catalog.json, folder + database, database URL (a STAC API URL: tests/catalog/test_sources.py)."""
    folder = tmp_path / "store"
    with pytest.raises(InputNotFoundError, match="no STAC catalog"):
        open_store(folder)
    new = open_store(folder, missing_ok=True, catalog_id="mine")
    assert type(new) is StaticItemStore and not folder.exists()  # written on the first upsert
    new.upsert(_item("a"))
    assert json.loads((folder / "catalog.json").read_text())["id"] == "mine"
    for location in (folder, folder / "catalog.json", str(folder), str(folder / "catalog.json")):
        opened = open_store(location)
        assert type(opened) is StaticItemStore and [i.id for i in opened.search(SearchQuery())] == ["a"]
    database = StacDatabase("postgresql://127.0.0.1:1/none", tmp_path)  # nothing is started before first use
    mirrored = open_store(tmp_path / "export", database=database)
    assert type(mirrored) is MirroredItemStore and mirrored.static.root == (tmp_path / "export").resolve()
    pgstac = open_store("postgresql://127.0.0.1:1/none", files_root=tmp_path / "files")
    assert type(pgstac) is PgstacItemStore and pgstac.root == (tmp_path / "files").resolve()


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "x" * 200])
def test_ids_are_plain_names(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInputError):
        StaticItemStore(tmp_path).upsert(_item(bad))


def test_upsert_writes_one_item_file_and_its_collection_only(tmp_path: Path) -> None:
    store = StaticItemStore(tmp_path / "store")
    for index in range(30):
        store.upsert(_item(f"item-{index:03d}"))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*.json")}
    store.upsert(_item("item-new"))
    changed = [p for p in (tmp_path / "store").rglob("*.json") if before.get(p) != p.stat().st_mtime_ns]
    assert sorted(p.name for p in changed) == ["collection.json", "item-new.json"]


def _publish_many(results: str, prefix: str, count: int, cog: str) -> None:
    from geovigie.tiles import LayerSpec, Provenance, publish_layer

    for index in range(count):
        publish_layer(results, cog, LayerSpec(f"{prefix}-{index}", f"{prefix} {index}", "classes", classes=CLASSES),
                      Provenance(inputs=[], lineage="concurrency test"))


def test_two_processes_publishing_at_once_lose_nothing(tmp_path: Path) -> None:
    from geovigie.tiles import LayerIndex

    cog = str(class_cog(tmp_path / "c.tif"))
    results = str(tmp_path / "results")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_publish_many, args=(results, name, 25, cog)) for name in ("one", "two")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0
    expected = sorted(f"{name}-{i}" for name in ("one", "two") for i in range(25))
    assert LayerIndex(results).ids() == expected
    collection = pystac.Collection.from_file(os.path.join(results, "geovigie-results", "collection.json"))
    assert sorted(i.id for i in collection.get_items()) == expected
