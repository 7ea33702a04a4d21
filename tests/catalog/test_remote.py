"""The same search interface over a STAC API (pystac-client), served on loopback by the test."""

from __future__ import annotations

from pathlib import Path

import pystac
import pytest
from fastapi import FastAPI, Request

from geovigie.catalog.stac import CatalogClient
from geovigie.errors import UnknownCollectionError
from tests._support.servers import served

CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
]


def _stac_api(catalog: pystac.Catalog) -> FastAPI:
    """A minimal STAC API over a static catalog, enough for pystac-client's search (test double)."""
    app = FastAPI()
    collections = {c.id: c for c in catalog.get_all_collections()}
    items = [{**i.to_dict(), "links": []} for i in catalog.get_items(recursive=True)]

    @app.get("/")
    def landing(request: Request) -> dict:
        base = str(request.base_url).rstrip("/")
        return {"type": "Catalog", "id": "test", "stac_version": "1.1.0", "description": "test API",
                "conformsTo": CONFORMS,
                "links": [{"rel": "self", "href": base + "/"}, {"rel": "root", "href": base + "/"},
                          {"rel": "search", "href": base + "/search", "method": "POST"},
                          {"rel": "data", "href": base + "/collections"}]}

    @app.get("/collections")
    def list_collections() -> dict:
        return {"collections": [{**c.to_dict(include_self_link=False), "links": []} for c in collections.values()],
                "links": []}

    @app.post("/search")
    async def search(request: Request) -> dict:
        body = await request.json()
        wanted = set(body["collections"]) if body.get("collections") else None
        limit = body.get("limit", 10)
        features = [i for i in items if wanted is None or i["collection"] in wanted][:limit]
        return {"type": "FeatureCollection", "features": features, "links": []}

    return app


@pytest.fixture(scope="module")
def api_url(catalog_dir: Path):
    app = _stac_api(pystac.Catalog.from_file(str(catalog_dir / "catalog.json")))
    with served(app) as base:
        yield base + "/"


def test_remote_search_through_pystac_client(api_url: str) -> None:
    client = CatalogClient.open(api_url, timeout=10)
    assert "landsat-lst-muenster" in client.collection_ids()
    items = client.search(collections=["landsat-lst-muenster"], max_items=5).item_list()
    assert len(items) == 2
    assert all(i.collection_id == "landsat-lst-muenster" for i in items)


def test_remote_unknown_collection(api_url: str) -> None:
    with pytest.raises(UnknownCollectionError):
        CatalogClient.open(api_url).search(collections=["nope"])
