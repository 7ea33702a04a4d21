"""Batch selection against a real STAC API: the batch picks, from a static catalog, exactly the items pystac-client
gets from the project's pgstac STAC API for the same CQL2 filter, over more matches than one page.

The items are copies of the shipped Gers scene's item (acquired at 10:51:07.455Z): each copy is moved in time by
whole seconds (keeping the .455 fraction) and in longitude, and given a cloud cover, except every seventh copy, which
has none, and a platform. The same copies go into a static catalog and into a fresh pgstac database served by the
project's STAC API (stac-fastapi-pgstac) on 127.0.0.1.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pystac
import pytest
from shapely.affinity import translate
from shapely.geometry import mapping, shape

from geovigie.catalog.samples import GERS
from geovigie.catalog.stac import CatalogClient, PgstacItemStore, StaticItemStore
from geovigie.workflows import BatchConfig, search_items
from tests._support.servers import served
from tests.conftest import fresh_database

COPIES = 230
PAGE = 50
"""pystac-client's page size here: several filters match more than one page."""
COLLECTION = "gers-copies"
WHEN = "2018-10-23T10:51:07Z"
"""A whole second before the original acquisition (10:51:07.455Z): compared as instants, the original is after it."""

FILTERS = {
    "timestamp with fraction": {"op": ">=", "args": [{"property": "datetime"}, {"timestamp": WHEN}]},
    "timestamp window": "datetime > TIMESTAMP('2018-10-23T10:50:30Z') AND "
                        "datetime <= TIMESTAMP('2018-10-23T10:51:07Z')",
    "timestamp as a plain string": f"datetime >= '{WHEN}'",  # pgstac reads it as an instant: so does the batch
    "t_intersects": "T_INTERSECTS(datetime, INTERVAL('2018-10-23T10:50:00Z', '2018-10-23T10:51:07Z'))",
    "casei": "CASEI(platform) = CASEI('SENTINEL-2A')",
    "<> with missing property": {"op": "<>", "args": [{"property": "eo:cloud_cover"}, 50]},
    "not over missing property": "NOT (eo:cloud_cover > 10)",
    "is null": "eo:cloud_cover IS NULL",
    "and / or / between": "(eo:cloud_cover BETWEEN 20 AND 60 AND platform = 'sentinel-2b') OR platform = 'sentinel-2c'",
    "in / like": "platform IN ('sentinel-2a', 'sentinel-2c') AND id LIKE 'copy-1%'",
    "s_intersects": "S_INTERSECTS(geometry, POLYGON((0.5 43 , 0.9 43, 0.9 44.5, 0.5 44.5, 0.5 43)))",
    "s_intersects or missing": {"op": "or", "args": [
        {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [0.6, 43.7]}]},
        {"op": "isNull", "args": [{"property": "eo:cloud_cover"}]}]},
}


def _copies(original: pystac.Item) -> list[pystac.Item]:
    base, footprint = original.datetime, shape(original.geometry)
    assert base is not None and base.microsecond == 455_000
    items = []
    for i in range(COPIES):
        item = original.clone()
        item.id, item.collection_id = f"copy-{i:03d}", COLLECTION
        item.datetime = base + timedelta(seconds=i - COPIES // 2)
        moved = translate(footprint, xoff=0.1 * (i % 9))
        item.geometry, item.bbox = mapping(moved), list(moved.bounds)
        item.properties["platform"] = ("sentinel-2a", "sentinel-2b", "sentinel-2c")[i % 3]
        if i % 7:
            item.properties["eo:cloud_cover"] = float(i % 101)
        else:
            item.properties.pop("eo:cloud_cover", None)
        item.clear_links()
        items.append(item)
    return items


@pytest.fixture(scope="module")
def sources(catalog_dir: Path, pgstac_cluster, tmp_path_factory: pytest.TempPathFactory):
    """(static catalog folder, STAC API URL) holding the same copies."""
    from fastapi import FastAPI

    from geovigie.service.stac_api import mount_stac_api

    pgstac_url, tmp_path = fresh_database(pgstac_cluster), tmp_path_factory.mktemp("selection")
    [original] = CatalogClient.open(catalog_dir).search(collections=[GERS]).item_list()
    items = _copies(original)
    collection = pystac.Collection(COLLECTION, "Copies of the Gers scene's item", pystac.Extent(
        pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]), pystac.TemporalExtent([[None, None]])))
    static = StaticItemStore(tmp_path / "static")
    for item in items:
        static.upsert(item, collection)
    with PgstacItemStore(pgstac_url, tmp_path / "files") as store:
        assert store.upsert_many(items, collection) == COPIES
    app = FastAPI()
    mount_stac_api(app, data_dir=tmp_path / "gv", database_url=pgstac_url, transactions=False, eager=True)
    with served(app) as base:
        yield static.root, f"{base}/api/stac"


def _config(source: str | Path, cql2: str | dict | None, **extra: object) -> BatchConfig:
    return BatchConfig.model_validate({"name": "selection", "source": str(source), "collection": COLLECTION,
                                       "filter": cql2, "max_cloud": 100, "tasks": [{"kind": "ndvi"}], **extra})


def test_batch_selects_what_pystac_client_gets_from_the_stac_api(sources, settings) -> None:
    from pystac_client import Client, ConformanceClasses

    static, url = sources
    api = Client.open(url)
    assert api.conforms_to(ConformanceClasses.FILTER)  # the server evaluates the filter, not a local fallback
    sizes = {}
    for name, cql2 in FILTERS.items():
        expression = _config(static, cql2).cql2
        reference = sorted(i.id for i in api.search(collections=[COLLECTION], filter=expression,
                                                    filter_lang="cql2-json", limit=PAGE).items())
        local = sorted(i.id for i in search_items(_config(static, cql2), settings).items)
        remote = sorted(i.id for i in search_items(_config(url, cql2), settings).items)
        assert local == reference, name
        assert remote == reference, name
        assert 0 < len(reference) < COPIES, name  # each filter decides something
        sizes[name] = len(reference)
    assert sizes["timestamp with fraction"] == COPIES - COPIES // 2  # the original instant (.455 s) is included
    assert sizes["timestamp as a plain string"] == sizes["timestamp with fraction"]
    assert sizes["timestamp window"] == 37  # 10:50:30.455 .. 10:51:06.455
    assert sizes["<> with missing property"] == COPIES - len(range(0, COPIES, 7)) - 2  # two copies at 50 %
    assert sizes["is null"] == len(range(0, COPIES, 7))
    assert max(sizes.values()) > PAGE


def test_a_cap_is_applied_after_the_filter_and_reported(sources, settings) -> None:
    static, url = sources
    matching = FILTERS["<> with missing property"]
    everything = search_items(_config(static, matching), settings)
    for source in (static, url):
        capped = search_items(_config(source, matching, max_items=7), settings)
        assert len(capped.items) == 7 and capped.beyond_cap == len(everything.items) - 7
        assert capped.notes() == [f"{len(everything.items) - 7} more matching items not processed (cap 7)"]
        assert all(item.properties.get("eo:cloud_cover") not in (None, 50) for item in capped.items)


def test_the_cloud_rule_skips_items_after_the_filter(sources, settings) -> None:
    static, url = sources
    for source in (static, url):
        selection = search_items(_config(source, "platform = 'sentinel-2a'", max_cloud=30), settings)
        kept = {i.id: i.properties.get("eo:cloud_cover") for i in selection.items}
        skipped = {i.id: i.properties["eo:cloud_cover"] for i, _ in selection.cloudy}
        assert kept and skipped and all(cover is None or cover <= 30 for cover in kept.values())
        assert all(cover > 30 for cover in skipped.values())
        assert len(kept) + len(skipped) == len(range(0, COPIES, 3))
