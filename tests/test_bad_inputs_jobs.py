"""The jobs' bad-input catalogue for the area tasks: a `zan` or `dumps` request whose inputs are missing, unknown,
mismatched or hostile is refused at POST time with a 422 naming the field, and nothing is queued.

The layers named exist for real: the IGN odeon label mosaics of 2016 and 2019 (Gers) published as class layers, the
LiDAR HD surface model (Montpellier) as a continuous one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from geovigie.service import create_app
from geovigie.settings import Settings
from geovigie.tiles import LayerSpec, Provenance, publish_layer, results_store_for
from tests._support.jobs import dumps_job
from tests._support.writes import make_key, writes_settings
from tests.conftest import DATA, fresh_database

GERS_PATCHES = "0.25,43.535,0.265,43.55"  # a bbox around the odeon patches (checked below to hold them)
ZAN = {"territory": GERS_PATCHES, "period": "2016-07-01/2019-07-01", "tasks": ["zan"],
       "zan": {"before": "odeon-2016", "after": "odeon-2019", "mapping": "odeon-naf"}}


@pytest.fixture(scope="module")
def service(pgstac_cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict, Settings]]:
    from geovigie.classes import ClassInfo
    from geovigie.workflows import lidar_models, odeon_mosaics

    folder = tmp_path_factory.mktemp("bad-jobs")
    settings = writes_settings(folder / "gv", fresh_database(pgstac_cluster))
    before, after, _ = odeon_mosaics(DATA, folder / "inputs")
    dsm, _, _ = lidar_models(DATA, folder / "inputs")
    store = results_store_for(settings)
    classes = [ClassInfo(value=value, name=f"class {value}", color="#808080") for value in range(1, 20)]
    for layer_id, path in (("odeon-2016", before), ("odeon-2019", after)):
        publish_layer(store, path, LayerSpec(layer_id, layer_id, "classes", classes=classes),
                      Provenance(inputs=[str(path)], lineage="IGN odeon labels"))
    publish_layer(store, dsm, LayerSpec("lidar-dsm", "DSM", "continuous", rescale=(0.0, 100.0)),
                  Provenance(inputs=[str(dsm)], lineage="IGN LiDAR HD"))
    with TestClient(create_app(settings)) as client:
        yield client, {"X-API-Key": make_key(settings)}, settings


def _refused(service: tuple[TestClient, dict, Settings], body: dict[str, Any], message: str) -> None:
    client, key, _ = service
    answer = client.post("/jobs", json=body, headers=key)
    assert answer.status_code == 422, answer.text
    assert message in answer.text, answer.text
    assert client.get("/jobs").json()["jobs"] == []  # nothing queued


def test_the_well_formed_requests_are_accepted(service) -> None:
    """The baseline the bad cases below differ from: each is queued (then removed again)."""
    import psycopg

    client, key, settings = service
    for body in (ZAN, dumps_job(zones="dep:34")):
        answer = client.post("/jobs", json=body, headers=key)
        assert answer.status_code == 202, answer.text
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM geovigie.jobs")


def zan(**change: Any) -> dict[str, Any]:
    return {**ZAN, "zan": {**ZAN["zan"], **change}}


@pytest.mark.parametrize(("body", "message"), [
    ({**ZAN, "zan": None}, "zan: the zan task needs its inputs"),
    ({**ZAN, "tasks": ["dumps"], "dumps": dumps_job()["dumps"]}, "zan: inputs given but 'zan' is not in tasks"),
    ({**ZAN, "tasks": ["zan", "landcover"]}, "collection: the landcover task(s) run on the items of a collection"),
    (zan(before="nope"), "zan.before: no published layer 'nope'"),
    (zan(after="odeon-2016"), "zan.after: the same layer as zan.before"),
    (zan(after="lidar-dsm"), "zan.after: layer 'lidar-dsm' is a continuous layer; a classes raster is needed"),
    (zan(before="../../etc/passwd"), '"loc":["body","zan","before"]'),
    (zan(mapping="nope"), "zan.mapping: no shipped ZAN mapping 'nope'"),
    (zan(mapping="README"), '"loc":["body","zan","mapping"]'),  # a name, never a file of the working folder
    (zan(mapping="../pyproject.toml"), '"loc":["body","zan","mapping"]'),
    (zan(zones="insee:99999"), "zan.zones: INSEE commune code 99999 is not in the shipped boundaries"),
    (zan(zones="/etc/passwd"), "zan.zones: zone '/etc/passwd': use insee:CODE"),
    (zan(zones="insee:95018"), "zan.zones: zones 95018 lie outside the territory"),
    (zan(zones="insee:32001,insee:32001"), "zan.zones"),
    (zan(zones={"type": "FeatureCollection", "features": []}), "zan.zones: give a GeoJSON Feature"),
    (zan(zones={"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"colour": "red"},
                "geometry": {"type": "Polygon", "coordinates": [[[0.2, 43.83], [0.25, 43.83], [0.25, 43.87],
                                                                 [0.2, 43.83]]]}}]}), "zan.zones"),
    (zan(mmu_building_m2=-1), "mmu_building_m2"),
    (zan(min_coverage=1.5), "min_coverage"),
    (zan(extra=1), "extra"),
])
def test_bad_zan_inputs_are_refused_naming_the_field(service, body: dict, message: str) -> None:
    _refused(service, body, message)


@pytest.mark.parametrize(("change", "message"), [
    ({"height_model": "nope"}, "dumps.height_model: no shipped height model 'nope'"),
    ({"height_model": "admin-express"}, "dumps.height_model: no shipped height model 'admin-express'"),
    ({"height_model": "../lidarhd-montpellier-ign"}, "height_model"),
    ({"layer": "nope"}, "dumps.layer: no published layer 'nope'"),
    ({"class_value": 3}, "dumps.class_value: only with dumps.layer"),
    ({"validated": True}, "dumps.validated: the height stand-in is never a validated dump model"),
    ({"threshold": 2}, "threshold"),
    ({"min_height_m": -1}, "min_height_m"),
    ({"pass_date": "2024-13-01"}, "pass_date"),
    ({"watch": "Not A Name"}, "watch"),
    ({"zones": "insee:32001"}, "dumps.zones: zones 32001 lie outside the territory"),
    ({"sensitive": {"water": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [3.87, 43.6]}}]}}},
     "dumps.sensitive.water: feature 0 has no 'name' property"),
    ({"sensitive": {"water": {"type": "Point", "coordinates": [3.87, 43.6]}}},
     "dumps.sensitive.water: give a GeoJSON FeatureCollection"),
    ({"sensitive": {"water": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"}, "geometry": {"type": "Point", "coordinates": [770000,
                                                                                                     6277000]}}]}}},
     "dumps.sensitive.water: feature 0: empty, or not WGS84"),
    ({"sensitive": {"Water!": {"type": "FeatureCollection", "features": []}}}, "sensitive"),
])
def test_bad_dumps_inputs_are_refused_naming_the_field(service, change: dict, message: str) -> None:
    body = dumps_job()
    body["dumps"] = {**body["dumps"], **change}
    _refused(service, body, message)


def test_a_height_model_that_does_not_cover_the_territory_is_refused(service) -> None:
    _refused(service, {**dumps_job(), "territory": GERS_PATCHES},
             "dumps.height_model: lidarhd-montpellier-ign does not cover the territory")


def test_the_gers_bbox_holds_the_odeon_patches() -> None:
    """The territory of the zan cases is where the class layers are (else they would test the wrong thing)."""
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import box

    west, south, east, north = (float(v) for v in GERS_PATCHES.split(","))
    for year in ("2016", "2019"):
        for tile in sorted((DATA / "odeon-change-labels-2016-2019" / year / "naf").glob("*.tiff")):
            with rasterio.open(tile) as src:
                assert box(west, south, east, north).contains(box(*transform_bounds(src.crs, 4326, *src.bounds)))

