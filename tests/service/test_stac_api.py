"""The STAC API mounted in the service, on the PostgreSQL + pgstac the project starts itself, served by uvicorn on
127.0.0.1 and checked with real clients: stac-api-validator, pystac-client and odc-stac.

The items are what the project really writes there: NDVI windows of the shipped Gers scene published with
`tiles.publish_layer` (see tests/catalog/test_pgstac.py) and the sample catalog ingested item by item.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pystac
import pytest
import rasterio
from fastapi.testclient import TestClient

from geovigie.catalog.stac import PgstacItemStore, SearchQuery, StaticItemStore
from geovigie.service import create_app
from geovigie.service.stac_api import STAC_API_PREFIX
from geovigie.settings import Settings
from geovigie.tiles import RESULTS_COLLECTION
from tests._support.pgstac import (
    CLEAR,
    CLOUDY,
    private_folder,
    publish_window,
    remove_private_folder,
    start_private_postgres,
)
from tests._support.servers import free_port, served

GERS = "s2-l2a-theia-gers"
GERS_AREA = {"type": "Polygon", "coordinates": [[[0.05, 43.67], [0.12, 43.67], [0.12, 43.75], [0.05, 43.75],
                                                 [0.05, 43.67]]]}


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
    port = free_port()
    app = create_app(Settings(data_dir=data_dir, stac_backend="pgstac", stac_api_transactions=True, port=port))
    with served(app, port) as base:
        yield f"{base}{STAC_API_PREFIX}", data_dir
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


def _official_schemas_only(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """stac-validator, stac-check and pystac read the official schemas shipped with pystac (core, GeoJSON) and
    with geovigie (`tiles/schemas`, extensions) instead of downloading them; any other schema is an error.
    Returns the set the URIs stac-validator reads are added to."""
    import stac_validator.utilities as utilities
    from pystac.validation.local_validator import get_local_schema_cache

    from geovigie.tiles import use_offline_validation
    from geovigie.tiles._validate import shipped_schemas

    schemas = {**get_local_schema_cache(), **shipped_schemas()}
    read_file = utilities.fetch_and_parse_file
    read: set[str] = set()

    def fetch(path: str, headers: dict | None = None) -> dict:
        read.add(path)
        if path.split("#", 1)[0] in schemas:
            return schemas[path.split("#", 1)[0]]
        if "://" in path:
            raise LookupError(f"no official schema shipped for {path}")
        return read_file(path, headers)

    monkeypatch.setattr(utilities, "fetch_and_parse_file", fetch)
    utilities.fetch_and_parse_schema.cache_clear()
    use_offline_validation()
    return read


# the validator's names of the conformance classes it checks, by the URI pattern it recognises them with
VALIDATOR_CLASSES = {"core": "core", "collections": "collections", "features": "ogcapi-features",
                     "item-search": "item-search", "transaction": "ogcapi-features/extensions/transaction",
                     "browseable": "browseable", "children": "children",
                     **{f"{base}#{ext}": f"{path}#{ext}" for base, path in (("item-search", "item-search"),
                                                                             ("features", "ogcapi-features"))
                        for ext in ("fields", "sort", "query", "filter")}}
VALIDATOR_ITEM_ID = "S2A_47XNF_20230423_0_L2A"  # the item validate_transaction writes (its code, fixed)


def test_stac_api_validator(stac_server: tuple[str, Path], catalog_dir: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    """stac-api-validator with every conformance class the API advertises, pagination included, on the results
    collection (two published NDVI windows), every schema read offline: no error."""
    import ast
    import re

    from stac_api_validator.validations import QueryConfig, validate_api

    from geovigie.service.auth import create_key

    schemas_read = _official_schemas_only(monkeypatch)
    url, data_dir = stac_server
    conforms_to = httpx.get(url).json()["conformsTo"]
    advertised = [name for name, path in VALIDATOR_CLASSES.items() if any(
        re.fullmatch(rf"https://api\.stacspec\.org/(.+)/{re.escape(path)}", uri) for uri in conforms_to)]
    assert set(advertised) >= {"core", "collections", "features", "item-search", "transaction", "item-search#fields",
                               "item-search#sort", "item-search#query", "item-search#filter", "features#fields",
                               "features#sort", "features#query"}
    key = {"X-API-Key": create_key(Settings(data_dir=data_dir, stac_backend="pgstac"), "validator")[1]}
    # the validator DELETEs its item first and wants 204: it exists (a missing item is 404, as OGC API Features
    # part 4 has it)
    item = json.loads((catalog_dir / "s2-l2a-theia-gers").glob("*/*.json").__next__().read_text())
    item.update(id=VALIDATOR_ITEM_ID, collection=GERS, links=[])
    assert httpx.post(f"{url}/collections/{GERS}/items", json=item, headers=key).status_code == 201
    # eo:cloud_cover of the clear window is 0.0, of the cloudy one above 20; the layer kind is a string; the
    # validator reads `in` as an overlap with an array property (instruments)
    query = QueryConfig("eo:cloud_cover", "0", "0", "50", "50", "0", "0", "geovigie:layer_kind", "cont", "nuous",
                        "tinu", "instruments", "msi,oli")
    warnings, errors = validate_api(url, advertised, RESULTS_COLLECTION, json.dumps(GERS_AREA), None, None,
                                    "properties.geovigie:layer_kind", True, query, GERS, key,
                                    open_assets_urls=False)
    print(f"stac-api-validator: {len(advertised)} classes ({', '.join(advertised)}), {len(errors.errors)} errors, "
          f"{len(warnings.errors)} warnings")
    assert errors.errors == [], "\n".join(message for _, message in errors.errors)
    for schema in ("https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json",
                   "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json",
                   "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                   "https://stac-extensions.github.io/raster/v1.1.0/schema.json"):
        assert schema in schemas_read  # items and collections were checked against the official schemas
    # warnings allowed: the Fields extension's answers carry type, stac_version, id and collection beside the
    # fields asked (the spec allows these; the validator notes them), and pgstac reading `ids` together with the
    # other parameters
    kept = {"type", "stac_version", "id", "collection", "properties"}  # properties: the nested field asked
    extra = re.compile(r"response contained extra fields (\[.*\])$")
    advice = [message for _, message in warnings.errors
              if not ((found := extra.search(message)) and set(ast.literal_eval(found.group(1))) <= kept)
              and "to validate ids does not override" not in message]
    assert advice == [], "\n".join(advice)
    assert httpx.get(f"{url}/collections/{GERS}/items/{VALIDATOR_ITEM_ID}").status_code == 404  # it cleaned up


def test_pystac_client_searches_and_odc_stac_loads(stac_server: tuple[str, Path]) -> None:
    import odc.stac
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses

    url, data_dir = stac_server
    client = Client.open(url)
    for conformance in (ConformanceClasses.ITEM_SEARCH, ConformanceClasses.FILTER, ConformanceClasses.SORT,
                        ConformanceClasses.FIELDS, ConformanceClasses.QUERY):
        assert client.conforms_to(conformance), conformance  # as pystac-client looks for them
    clear, cloudy = (client.get_collection(RESULTS_COLLECTION).get_item(i) for i in ("ndvi-clear", "ndvi-cloudy"))
    assert clear is not None and cloudy is not None
    common = {"collections": [RESULTS_COLLECTION], "bbox": clear.bbox, "datetime": "2018-10-01/2018-10-31"}
    assert {i.id for i in client.search(**common).items()} == {"ndvi-clear"}  # the cloudy window lies elsewhere
    everywhere = {**common, "bbox": [0.0, 43.6, 0.2, 43.8]}
    assert {i.id for i in client.search(**everywhere).items()} == {"ndvi-clear", "ndvi-cloudy"}
    assert list(client.search(**{**everywhere, "datetime": "2019"}).items()) == []
    cloudiest_first = client.search(**everywhere, sortby=[{"field": "properties.eo:cloud_cover", "direction": "desc"}])
    assert [i.id for i in cloudiest_first.items()] == ["ndvi-cloudy", "ndvi-clear"]
    assert cloudiest_first.matched() == 2
    # CQL2 text in a GET query string, and in a POST body (converted to CQL2 JSON before pgstac reads it)
    clear_only = list(client.search(**everywhere, filter="eo:cloud_cover < 20", filter_lang="cql2-text",
                                    method="GET").items())
    assert [i.id for i in clear_only] == ["ndvi-clear"]
    for text in ("eo:cloud_cover < 20", "eo:cloud_cover >= 20 AND platform = 'sentinel-2b'",
                 "instruments = 'msi' OR eo:cloud_cover < 20"):
        by_get, by_post = ({i.id for i in client.search(**everywhere, filter=text, filter_lang="cql2-text",
                                                         method=method).items()} for method in ("GET", "POST"))
        assert by_get == by_post and by_get, text
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


def test_queryables_number_matched_and_fields(stac_server: tuple[str, Path]) -> None:
    url, _ = stac_server
    queryables = httpx.get(f"{url}/collections/{RESULTS_COLLECTION}/queryables").json()["properties"]
    assert queryables["eo:cloud_cover"]["type"] == "number" and queryables["platform"]["type"] == "string"
    assert queryables["instruments"] == {"title": "instruments", "type": "array", "items": {"type": "string"}}
    assert queryables["processing:datetime"]["format"] == "date-time"
    assert "processing:software" not in queryables  # an object: nothing CQL2 compares
    assert "eo:cloud_cover" in httpx.get(f"{url}/queryables").json()["properties"]
    assert "eo:cloud_cover" not in httpx.get(f"{url}/collections/landsat-lst-muenster/queryables").json()[
        "properties"]  # no Münster item has one
    page = httpx.post(f"{url}/search", json={"collections": [RESULTS_COLLECTION], "limit": 1}).json()
    assert page["numberMatched"] == 2 and page["numberReturned"] == 1
    empty = httpx.get(f"{url}/search", params={"collections": RESULTS_COLLECTION,
                                               "datetime": "2019-01-01T00:00:00Z/2019-12-31T23:59:59Z"})
    assert empty.json()["numberMatched"] == 0 and empty.json()["features"] == []
    # the Fields extension: GeoJSON answers, the default fields for an empty request, `{"fields": null}` refused
    default = httpx.get(f"{url}/search", params={"collections": RESULTS_COLLECTION, "fields": ""})
    assert default.headers["content-type"].startswith("application/geo+json")
    feature = default.json()["features"][0]
    assert set(feature["properties"]) == {"datetime"} and {"assets", "geometry", "links"} <= set(feature)
    only = httpx.post(f"{url}/search", json={"collections": [RESULTS_COLLECTION], "fields": {
        "include": ["properties.eo:cloud_cover"], "exclude": ["properties"]}}).json()["features"][0]
    assert set(only) == {"type", "stac_version", "id", "collection", "properties"}
    assert set(only["properties"]) == {"eo:cloud_cover"}
    all_but = httpx.post(f"{url}/search", json={"collections": [RESULTS_COLLECTION],
                                               "fields": {"exclude": ["geometry"]}}).json()["features"][0]
    assert "geometry" not in all_but and "eo:cloud_cover" in all_but["properties"]
    refused = httpx.post(f"{url}/search", json={"fields": None})
    assert refused.status_code == 400 and "fields" in refused.json()["description"]
    # the Query extension, every operator
    for query, expected in (({"eo:cloud_cover": {"gte": 20}}, {"ndvi-cloudy"}),
                            ({"platform": {"startsWith": "sentinel-"}}, {"ndvi-clear", "ndvi-cloudy"}),
                            ({"platform": {"endsWith": "2a"}}, set()),
                            ({"platform": {"contains": "nel-2"}, "eo:cloud_cover": {"lt": 20}}, {"ndvi-clear"}),
                            ({"platform": {"in": ["sentinel-2a", "sentinel-2b"]}}, {"ndvi-clear", "ndvi-cloudy"})):
        for answer in (httpx.post(f"{url}/search", json={"collections": [RESULTS_COLLECTION], "query": query}),
                       httpx.get(f"{url}/search", params={"collections": RESULTS_COLLECTION,
                                                          "query": json.dumps(query)})):
            assert answer.status_code == 200, answer.text
            assert {f["id"] for f in answer.json()["features"]} == expected, query
    bad = httpx.post(f"{url}/search", json={"query": {"platform": {"matches": "x"}}})
    assert bad.status_code == 400 and "matches" in bad.json()["description"]


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
