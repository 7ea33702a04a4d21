from pathlib import Path

import pytest

from geovigie.catalog.stac import CatalogClient, read_item
from geovigie.errors import EmptySearchError, InputNotFoundError, UnknownCollectionError

GERS_BBOX = (0.0, 43.6, 0.2, 43.8)  # Aignan, Gers
MUENSTER_BBOX = (7.5, 51.9, 7.7, 52.0)


def test_collections(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir / "catalog.json")
    assert set(client.collection_ids()) == {"s2-l2a-theia-gers", "s2-l1c-slovenia", "landsat-lst-muenster"}


def test_bbox_selects_the_right_place(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir)
    gers = client.search(bbox=GERS_BBOX).item_list()
    assert [i.collection_id for i in gers] == ["s2-l2a-theia-gers"]
    muenster = client.search(bbox=",".join(map(str, MUENSTER_BBOX))).item_list()
    assert {i.collection_id for i in muenster} == {"landsat-lst-muenster"}
    assert len(muenster) == 2


def test_datetime_filters(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir)
    assert [i.id for i in client.search(datetime="2018-10-23").items()] == [
        "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"]
    summer = client.search(collections=["landsat-lst-muenster"], datetime="2024-06-01/2024-09-30").item_list()
    assert [i.id[:25] for i in summer] == ["LC08_L2SP_196024_20240813"]
    # each Slovenia scene has its own acquisition time (data/s2-l1c-slovenia/acquisitions.json), all in 2015
    assert len(client.search(collections="s2-l1c-slovenia", datetime="2015-08").item_list()) == 2
    assert client.search(collections="s2-l1c-slovenia", datetime="2016").item_list(require=False) == []
    assert client.search(datetime="../2015-01-01").item_list(require=False) == []


def test_max_items_and_laziness(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir)
    search = client.search(max_items=3)
    assert len(list(search.items())) == 3
    assert len(list(client.search(max_items=None).items())) == 7


def test_unknown_collection_is_named(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir)
    with pytest.raises(UnknownCollectionError, match="sentinel-3"):
        client.search(collections=["sentinel-3"])


def test_empty_search_raises_with_the_query(catalog_dir: Path) -> None:
    client = CatalogClient.open(catalog_dir)
    with pytest.raises(EmptySearchError, match="bbox"):
        client.search(bbox=(-60, -20, -59, -19)).item_list()


def test_bad_bbox_and_datetime() -> None:
    from geovigie.catalog.stac._datetime import to_interval
    from geovigie.types import normalize_bbox

    with pytest.raises(ValueError, match="4 numbers"):
        normalize_bbox("1,2,3")
    with pytest.raises(ValueError, match="order"):
        normalize_bbox((3, 0, 1, 1))
    with pytest.raises(ValueError, match="ISO 8601"):
        to_interval("23/10/2018")


def test_missing_catalog_and_item(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="catalog"):
        CatalogClient.open(tmp_path / "nowhere")
    with pytest.raises(InputNotFoundError):
        read_item(tmp_path / "item.json")


def test_items_carry_extensions(catalog_dir: Path) -> None:
    from geovigie.tiles import validate_offline

    client = CatalogClient.open(catalog_dir)
    item = client.search(collections=["s2-l2a-theia-gers"]).item_list()[0]
    assert {"B02", "B04", "B08", "B8A", "B12", "CLM"} <= set(item.assets)
    assert item.assets["B04"].extra_fields["proj:shape"] == [800, 800]
    assert item.assets["B12"].extra_fields["proj:shape"] == [400, 400]
    assert item.properties["processing:level"] == "L2A"
    validate_offline(item)
