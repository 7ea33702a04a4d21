"""OGC API Features (tipg) over the dump sites of real passes in PostGIS: owslib lists and pages them on a real
socket; bbox, datetime, property and CQL2 filters; vector tiles; public links; CSV and GeoPackage downloads."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geovigie.service import create_app
from tests._support.servers import free_port, served
from tests._support.writes import two_dump_passes, writes_settings

SITES = "geovigie.dump_sites"
ZONES = "geovigie.zone_figures"


@pytest.fixture
def passes(tmp_path: Path, pgstac_url: str):
    port = free_port()
    settings = writes_settings(tmp_path / "gv", pgstac_url, port=port)
    first, second = two_dump_passes(settings, tmp_path)
    return settings, first, second


def test_owslib_lists_and_pages_the_sites(passes) -> None:
    from owslib.ogcapi.features import Features

    settings, _, second = passes
    with served(create_app(settings), settings.port) as base:
        api = Features(f"{base}/ogc")
        conformance = api.conformance()["conformsTo"]
        for wanted in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                       "ogcapi-features-3/1.0/conf/features-filter", "ogcapi-tiles-1/1.0/conf/mvt"):
            assert any(c.endswith(wanted) for c in conformance), wanted
        assert sorted(api.feature_collections()) == [SITES, ZONES]
        pages, offset = [], 0
        while True:
            page = api.collection_items(SITES, limit=4, offset=offset)
            assert page["numberMatched"] == len(second.sites)
            pages.append([f["properties"]["site_id"] for f in page["features"]])
            if not any(link["rel"] == "next" for link in page["links"]):
                break
            offset += 4
        assert [len(p) for p in pages] == [4, 4, 4, 3]
        assert sorted(sum(pages, [])) == sorted(second.sites["site_id"])
        # every link the server gives points back at the served address (public_url unset: host and port)
        assert all(link["href"].startswith(base) for link in page["links"])
        removed = api.collection_items(SITES, status="removed")
        assert [f["properties"]["site_id"] for f in removed["features"]] == list(
            second.sites.loc[second.sites["status"] == "removed", "site_id"])
        one = api.collection_item(SITES, f"montpellier:{removed['features'][0]['properties']['site_id']}")
        assert one["properties"]["status"] == "removed"


def test_bbox_datetime_and_cql2_filters(passes) -> None:
    settings, _, second = passes
    sites = second.sites.to_crs("EPSG:4326")
    largest = sites.sort_values("area_m2").iloc[-2]  # the largest still present (the largest was removed)
    with TestClient(create_app(settings)) as client:
        def ids(**params: object) -> list[str]:
            answer = client.get(f"/ogc/collections/{SITES}/items", params={"limit": 100, **params})
            assert answer.status_code == 200, answer.text
            return sorted(f["properties"]["site_id"] for f in answer.json()["features"])

        west, south, east, north = largest.geometry.buffer(1e-6).bounds
        inside = ids(bbox=f"{west},{south},{east},{north}")
        assert largest["site_id"] in inside and len(inside) < len(sites)
        expected = sorted(sites.loc[(sites["status"] == "persisting") & (sites["area_m2"] > 100), "site_id"])
        assert ids(filter="status = 'persisting' AND area_m2 > 100", **{"filter-lang": "cql2-text"}) == expected
        assert 0 < len(expected) < len(sites)
        assert len(ids(datetime="2024-06-01T00:00:00Z", **{"datetime-column": "pass_date"})) == len(sites)
        assert ids(datetime="2020-01-01T00:00:00Z/2020-12-31T00:00:00Z", **{"datetime-column": "pass_date"}) == []
        assert ids(status="nothing-like-this") == []
        bad = client.get(f"/ogc/collections/{SITES}/items", params={"filter": "status = = 1"})
        assert 400 <= bad.status_code < 500
        assert client.get("/ogc/collections/geovigie.api_keys/items").status_code == 404  # never served
        assert client.get("/ogc/collections/geovigie.feedback/items").status_code == 404


def test_vector_tiles_hold_the_sites(passes) -> None:
    import morecantile

    settings, _, second = passes
    lon, lat = second.sites.to_crs("EPSG:4326").geometry.union_all().centroid.coords[0]
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/ogc/collections/{SITES}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert len(answer.content) > 100 and b"site_id" in answer.content
        far = client.get(f"/ogc/collections/{SITES}/tiles/WebMercatorQuad/16/0/0")
        assert far.status_code in (200, 204) and b"site_id" not in far.content


def test_links_use_the_public_url_not_the_host_header(tmp_path: Path, pgstac_url: str) -> None:
    settings = writes_settings(tmp_path / "gv", pgstac_url, public_url="https://geo.example.fr/geovigie")
    two_dump_passes(settings, tmp_path)
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/ogc/collections/{SITES}/items", params={"limit": 2},
                            headers={"Host": "evil.example.com", "X-Forwarded-Host": "evil.example.com"})
        hrefs = [link["href"] for link in answer.json()["links"]]
        assert hrefs and all(h.startswith("https://geo.example.fr/geovigie/ogc/") for h in hrefs), hrefs


def test_csv_and_geopackage_downloads_for_field_teams(passes) -> None:
    settings, _, second = passes
    with TestClient(create_app(settings)) as client:
        csv = client.get("/sites.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        table = pd.read_csv(io.StringIO(csv.text))
        assert sorted(table["site_id"]) == sorted(second.sites["site_id"])
        assert table["lon"].between(3.8, 3.9).all() and table["lat"].between(43.5, 43.7).all()
        gpkg = client.get("/sites.gpkg", params={"status": "persisting"})
        path = settings.data_dir / "downloaded.gpkg"
        path.write_bytes(gpkg.content)
        frame = gpd.read_file(path, layer="sites")
        assert frame.crs.to_epsg() == 2154 and set(frame["status"]) == {"persisting"}
        assert len(frame) == (second.sites["status"] == "persisting").sum()
        assert client.get("/sites.csv", params={"status": "\x00"}).status_code == 422  # PostgreSQL refuses NUL
        empty = client.get("/sites.csv", params={"watch": "nowhere"})
        assert empty.status_code == 200 and pd.read_csv(io.StringIO(empty.text)).empty


def test_a_new_pass_shows_up_without_restarting(tmp_path: Path, pgstac_url: str, monkeypatch) -> None:
    from geovigie.service import feedback

    monkeypatch.setattr(feedback, "SYNC_INTERVAL_S", 0.0)
    settings = writes_settings(tmp_path / "gv", pgstac_url)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/ogc/collections/{SITES}/items").json()["numberMatched"] == 0
        _, second = two_dump_passes(settings, tmp_path)
        statuses = [f["properties"]["status"] for f in client.get(
            f"/ogc/collections/{SITES}/items", params={"limit": 100}).json()["features"]]
        assert sorted(statuses) == sorted(second.sites["status"])
        assert client.get("/sites.csv").status_code == httpx.codes.OK


def test_write_endpoints_conform_to_their_schema(passes) -> None:
    """schemathesis over the jobs, sites and feedback operations with a write key: no 5xx, only documented
    status codes, content types and bodies (tests/service/test_schemathesis.py covers the static backend)."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings

    from tests._support.writes import make_key

    settings, _, _ = passes
    settings = settings.model_copy(update={"rate_limit_per_minute": 100_000})
    key = make_key(settings)
    app = create_app(settings)
    checks = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
              schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    ours = [op for op in operations if op.path.startswith(("/jobs", "/sites", "/feedback"))]
    assert len(ours) == 9
    with TestClient(app):
        for operation in ours:
            @hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
                                 database=None)
            @given(case=operation.as_strategy())
            def conforms(case: schemathesis.Case) -> None:
                case.headers = {**(case.headers or {}), "X-API-Key": key}
                case.call_and_validate(checks=checks)

            conforms()


def test_zone_figures_of_a_published_diagnostic_are_features(tmp_path: Path, pgstac_url: str) -> None:
    """The ZAN account of the shipped ODEON patches (the demo's), published then served per zone."""
    import json
    import warnings
    from datetime import date

    from geovigie import workflows
    from tests.conftest import DATA

    settings = writes_settings(tmp_path / "gv", pgstac_url)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/ogc/collections/{ZONES}/items").json()["numberMatched"] == 0
        before, after, patches = workflows.odeon_mosaics(DATA, tmp_path / "scratch")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # partial coverage of the patches: tested in tests/diagnostics
            result = workflows.zan(before, after, settings, place="gers-odeon", zones=gpd.read_file(patches),
                                   start=date(2016, 7, 1), end=date(2019, 7, 1), mapping="odeon-naf")
        zones_layer = next(layer for layer in result.layers if layer.id.startswith("zan-zones"))
        published = json.loads(Path(zones_layer.item.assets["data"].get_absolute_href()).read_text())["features"]
        from geovigie.service import feedback

        feedback.SYNC_INTERVAL_S = 0.0
        try:
            served = client.get(f"/ogc/collections/{ZONES}/items", params={"layer_id": zones_layer.id}).json()
        finally:
            feedback.SYNC_INTERVAL_S = 2.0
        assert served["numberMatched"] == len(published) > 0
        by_zone = {f["properties"]["zone_id"]: f["properties"] for f in served["features"]}
        for feature in published:
            figures = by_zone[str(feature["properties"]["zone_id"])]
            assert figures["diagnostic"] == "zan" and figures["period"].startswith("2016-07-01")
            assert figures["properties"]["covered_fraction"] == pytest.approx(feature["properties"]["covered_fraction"])
        assert client.get(f"/ogc/collections/{ZONES}/items", params={"diagnostic": "vegetation"}).json()[
            "numberMatched"] == 0
