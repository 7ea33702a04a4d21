"""Providers, AOIs and the imagery search: the local catalog, a STAC API on 127.0.0.1, Earth Search when online.

The loopback API serves the project's real items (the sample catalog and the Sen2Cor fixture) with a landing page
whose conformance URIs are those of the STAC API 1.0.0 specification; it records each search body so the test
checks what geovigie asks (collections, intersects, datetime, the cloud-cover limit as `query` or CQL2 `filter`).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pystac
import pytest

from geovigie.catalog.imagery import (
    BUILTIN,
    UnknownAreaError,
    UnknownProviderError,
    parse_aoi,
    resolve_provider,
    search_imagery,
    signer,
)
from geovigie.catalog.sensors import reflectance_scaling
from geovigie.errors import EmptySearchError, InputNotFoundError, UnknownCollectionError
from tests._support.servers import STAC_CORE, JsonHandler, QuietServer, landing_page
from tests.conftest import DATA

QUERY = "https://api.stacspec.org/v1.0.0/item-search#query"
FILTER = ["https://api.stacspec.org/v1.0.0-rc.2/item-search#filter", "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
          "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2"]
FIXTURE_COLLECTION = "sen2cor-fixture-gers"


class Api:
    """STAC API over real items; `/q/` advertises the query extension, `/f/` the filter extension."""

    def __init__(self, catalog_dir: Path) -> None:
        catalog = pystac.Catalog.from_file(str(catalog_dir / "catalog.json"))
        fixture = pystac.Item.from_file(str(DATA / "sen2cor-fixture-gers" / "item.json"))
        fixture.collection_id = FIXTURE_COLLECTION
        self.httpd = QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        for key, asset in fixture.assets.items():  # served over HTTP; B08 on purpose at a missing path
            asset.href = f"{self.url}/files/{'missing' if key == 'B08' else Path(asset.href).name}"
        self.items = [{**i.to_dict(), "links": []} for i in catalog.get_items(recursive=True)]
        self.items.append({**fixture.to_dict(), "links": []})
        self.collections = [{**c.to_dict(include_self_link=False), "links": []} for c in catalog.get_all_collections()]
        self.collections.append(pystac.Collection(FIXTURE_COLLECTION, "Sen2Cor fixture", pystac.Extent.from_items(
            [fixture]), license="other").to_dict(include_self_link=False))
        self.bodies: list[dict] = []
        self.files: list[str] = []
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(JsonHandler):

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/files/"):
                    outer.files.append(self.path)
                    path = DATA / "sen2cor-fixture-gers" / self.path.removeprefix("/files/")
                    if not path.is_file():
                        self.send_error(404)
                        return
                    data = path.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                prefix, rest = self.path[:3], self.path[3:].rstrip("/")
                base = f"{outer.url}{prefix}"
                if rest == "":
                    extra = [QUERY] if prefix == "/q/" else FILTER
                    self.send_json(landing_page(base, STAC_CORE + extra))
                elif rest == "collections":
                    self.send_json({"collections": outer.collections, "links": []})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                wanted = set(body.get("collections") or [])
                found = [i for i in outer.items if not wanted or i["collection"] in wanted]
                self.send_json({"type": "FeatureCollection", "features": found[:body.get("limit", 10)], "links": []})

        return Handler


@pytest.fixture(scope="module")
def api(catalog_dir: Path) -> Iterator[Api]:
    server = Api(catalog_dir)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def aignan():
    return parse_aoi("insee:32001", sample_dir=DATA)


def test_aoi_from_insee_codes_on_the_shipped_boundaries(aignan) -> None:
    assert aignan.label == "commune 32001 Aignan"
    west, south, east, north = aignan.bbox
    assert 0.0 < west < east < 0.2 and 43.6 < south < north < 43.8
    gers = parse_aoi("dep:32", sample_dir=DATA)
    assert gers.label == "département 32 Gers" and gers.geometry.buffer(0.01).contains(aignan.geometry.centroid)
    bezons = parse_aoi("insee:95063", sample_dir=DATA)
    assert bezons.label == "commune 95063 Bezons" and 2.1 < bezons.bbox[0] < 2.3


def test_aoi_errors_are_clear() -> None:
    with pytest.raises(UnknownAreaError, match=r"32013 is not in the shipped boundaries \(communes-95-val-d-oise"):
        parse_aoi("insee:32013", sample_dir=DATA)
    with pytest.raises(UnknownAreaError, match="use 5 characters"):
        parse_aoi("insee:3201", sample_dir=DATA)
    with pytest.raises(UnknownAreaError, match="4 numbers"):
        parse_aoi("0,43,1,44,5")
    with pytest.raises(InputNotFoundError, match="AOI file not found"):
        parse_aoi("nowhere/commune.geojson")


def test_aoi_from_file_and_bbox() -> None:
    core = parse_aoi(str(DATA / "landsat-lst-muenster-extra" / "muenster_urban_core.geojson"))
    assert 7.5 < core.bbox[0] < core.bbox[2] < 7.8
    assert parse_aoi("0.1,43.6,0.2,43.7").bbox == (0.1, 43.6, 0.2, 43.7)


def test_provider_resolution(settings) -> None:
    assert resolve_provider(None, settings).location == str(settings.catalog_dir)
    assert resolve_provider("earth-search", settings) is BUILTIN["earth-search"]
    configured = settings.model_copy(update={"catalog_sources": {"geovigie-api": "http://127.0.0.1:8000/stac",
                                                                 "pc": BUILTIN["planetary-computer"].location}})
    assert resolve_provider("geovigie-api", configured).collections is None  # asked to the API itself
    pc = resolve_provider("pc", configured)
    assert pc.signing == "planetary-computer" and pc.collections == ("sentinel-2-l2a", "landsat-c2-l2")
    assert signer(BUILTIN["earth-search"]) is None
    import planetary_computer

    assert signer(pc) is planetary_computer.sign_inplace
    with pytest.raises(UnknownProviderError, match="unknown provider 'earthsearch': use one of local, earth-search"):
        resolve_provider("earthsearch", settings)


def test_unknown_collection_refused_before_any_request(settings) -> None:
    # no network here: an attempt to reach the API would raise RemoteSourceError instead
    with pytest.raises(UnknownCollectionError, match="sentinel-2-l1c for provider earth-search; it serves"):
        search_imagery("earth-search", "sentinel-2-l1c", settings=settings)
    with pytest.raises(UnknownCollectionError, match="sentinel-2-c1-l2a for provider planetary-computer"):
        search_imagery("planetary-computer", "sentinel-2-c1-l2a", settings=settings)


def test_local_catalog_search_by_commune(catalog_dir: Path, aignan, settings) -> None:
    found = search_imagery(str(catalog_dir), "s2-l2a-theia-gers", aoi=aignan, period="2018-10-01/2018-10-31",
                           max_cloud=20, settings=settings)
    assert [i.id for i in found] == ["SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"]
    with pytest.raises(EmptySearchError, match="no item in .* over commune 95063 Bezons"):
        search_imagery(str(catalog_dir), "s2-l2a-theia-gers", aoi=parse_aoi("insee:95063", sample_dir=DATA),
                       settings=settings)
    with pytest.raises(EmptySearchError, match="period=2019-06-01/2019-08-31"):
        search_imagery(str(catalog_dir), "s2-l2a-theia-gers", aoi=aignan, period="2019-06-01/2019-08-31",
                       settings=settings)


def test_api_request_carries_aoi_period_and_cloud_limit(api: Api, aignan, settings) -> None:
    api.bodies.clear()
    found = search_imagery(f"{api.url}/q/", FIXTURE_COLLECTION, aoi=aignan, period="2018-10-01/2018-10-31",
                           max_cloud=20, settings=settings)
    assert [i.id for i in found] == ["sen2cor-fixture-gers-20181023"]
    body = api.bodies[-1]
    assert body["collections"] == [FIXTURE_COLLECTION]
    assert body["intersects"]["type"] in ("Polygon", "MultiPolygon") and body["intersects"] == \
        json.loads(json.dumps(aignan.geojson()))
    assert body["datetime"].startswith("2018-10-01T00:00:00") and "/2018-10-31T23:59:59" in body["datetime"]
    assert body["query"] == {"eo:cloud_cover": {"lte": 20}}
    assert reflectance_scaling(found[0], "B04") == pytest.approx((1e-4, -0.1))


def test_api_cloud_limit_as_cql2_filter_and_checked_again(api: Api, aignan, settings) -> None:
    api.bodies.clear()
    with pytest.raises(EmptySearchError, match="cloud cover ≤ 10 %"):  # the server ignores it; geovigie does not
        search_imagery(f"{api.url}/f/", FIXTURE_COLLECTION, aoi=aignan, max_cloud=10, settings=settings)
    body = api.bodies[-1]
    assert body["filter"] == {"op": "or", "args": [{"op": "<=", "args": [{"property": "eo:cloud_cover"}, 10]},
                                                   {"op": "isNull", "args": [{"property": "eo:cloud_cover"}]}]}
    assert body.get("filter-lang") == "cql2-json" and "query" not in body


def test_api_unknown_collection_named(api: Api, settings) -> None:
    with pytest.raises(UnknownCollectionError, match="sentinel-2-l2a in .*; known: landsat-lst-muenster"):
        search_imagery(f"{api.url}/q/", "sentinel-2-l2a", settings=settings)


def _online(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _online("earth-search.aws.element84.com"), reason="offline: Earth Search not reachable")
def test_earth_search_over_a_commune_online(aignan, settings) -> None:
    found = search_imagery("earth-search", "sentinel-2-l2a", aoi=aignan, period="2024-06-01/2024-06-30",
                           max_cloud=20, max_items=5, settings=settings)
    assert found and all(float(i.properties["eo:cloud_cover"]) <= 20 for i in found)
    assert all("scl" in i.assets and "red" in i.assets for i in found)


@pytest.fixture
def cli(settings):
    import typer
    from typer.testing import CliRunner

    from geovigie._cli_catalog import register
    from geovigie.cli import friendly_errors

    app = typer.Typer()
    app.add_typer(typer.Typer(), name="catalog")
    register(app, friendly_errors, lambda: settings)
    runner = CliRunner(env={"COLUMNS": "300"})
    return lambda *args: runner.invoke(app, list(args))


def test_cli_search_same_command_local_and_api(cli, catalog_dir: Path, api: Api) -> None:
    local = cli("catalog", "search", "--provider", str(catalog_dir), "--collection", "s2-l2a-theia-gers",
                "--aoi", "insee:32001", "--period", "2018-10-01/2018-10-31", "--max-cloud", "20")
    assert local.exit_code == 0, local.output
    assert "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9" in local.output and "1 items" in local.output
    remote = cli("catalog", "search", "--api", f"{api.url}/q/", "--collection", FIXTURE_COLLECTION,
                 "--aoi", "insee:32001", "--period", "2018-10-01/2018-10-31", "--max-cloud", "20", "--json")
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.stdout.splitlines()[0])["properties"]["s2:processing_baseline"] == "05.10"
    outside = cli("catalog", "search", "--provider", str(catalog_dir), "--aoi", "insee:95063")
    assert outside.exit_code == 2 and "no item in" in outside.output and "Bezons" in outside.output
    unknown = cli("catalog", "search", "--provider", "sentinel-hub", "--collection", "x")
    assert unknown.exit_code == 2 and "unknown provider 'sentinel-hub'" in unknown.output


def test_cli_fetch_fills_the_cache_and_carries_on(cli, api: Api, settings) -> None:
    args = ("catalog", "fetch", "--api", f"{api.url}/q/", "--collection", FIXTURE_COLLECTION, "--no-progress")
    api.files.clear()
    done = cli(*args, "--bands", "red,scl")
    assert done.exit_code == 0, done.output
    cached = sorted(p for p in (settings.data_dir / "cache").rglob("*.tif"))
    served = [DATA / "sen2cor-fixture-gers" / f"T30TYP_20181023T105107_{b}.tif" for b in ("B04_10m", "SCL_20m")]
    assert sorted(p.read_bytes() for p in cached) == sorted(p.read_bytes() for p in served)
    assert cli(*args, "--bands", "red,scl").exit_code == 0
    assert len(api.files) == 2  # the second run was served by the cache
    partial = cli(*args)  # every data asset: B08 is missing on the server, the others arrive
    assert partial.exit_code == 2 and "1 assets could not be fetched" in partial.output and "B08" in partial.output
    assert len(list((settings.data_dir / "cache").rglob("*.tif"))) == 4


def test_loader_reads_remote_assets_through_the_cache(api: Api, aignan, settings) -> None:
    from geovigie.catalog.imagery import AssetCache, patch_url_through
    from geovigie.catalog.sensors import load_s2

    found = search_imagery(f"{api.url}/q/", FIXTURE_COLLECTION, aoi=aignan, settings=settings)
    local = pystac.Item.from_file(str(DATA / "sen2cor-fixture-gers" / "item.json"))
    api.files.clear()
    cache = AssetCache(settings.data_dir / "cache")
    remote = load_s2(found, ["red"], crs="EPSG:32630", resolution=10, patch_url=patch_url_through(cache))
    expected = load_s2([local], ["red"], crs="EPSG:32630", resolution=10)
    assert remote["red"].equals(expected["red"])
    assert sorted(api.files) == [f"/files/T30TYP_20181023T105107_{b}.tif" for b in ("B04_10m", "SCL_20m")]


def test_a_filter_goes_to_an_api_with_the_extension_and_is_matched_here_otherwise(api: Api) -> None:
    from geovigie.catalog.samples import SLOVENIA
    from geovigie.catalog.stac import CatalogClient

    cql2 = "\"geovigie:cloudy\" = true AND id LIKE 'slovenia-%'"
    api.bodies.clear()
    without = CatalogClient.open(f"{api.url}/q/").search(collections=[SLOVENIA], filter=cql2, max_items=None)
    assert [i.id for i in without.items()] == ["slovenia-reference-scene-0"]  # matched here with cql2
    assert "filter" not in api.bodies[-1]
    with_filter = CatalogClient.open(f"{api.url}/f/").search(collections=[SLOVENIA], filter=cql2, max_items=None)
    assert len(list(with_filter.items())) == 4  # this test server ignores what it is sent: the API decides
    assert api.bodies[-1]["filter"]["op"] == "and" and api.bodies[-1]["filter-lang"] == "cql2-json"
