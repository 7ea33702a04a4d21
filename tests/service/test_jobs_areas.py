"""Area tasks of jobs over HTTP on a real PostgreSQL, on the shipped data: a land-cover job on two real Slovenia scenes
reports its progress in tiles; a `zan` job on the two class layers it published gives the same per-zone figures as
the workflow `geovigie diagnose zan` runs, linked as CSV / GeoJSON / OGC API Features; a `dumps` job on the shipped
IGN LiDAR HD height model loads its sites into PostGIS, where a site gets feedback."""

from __future__ import annotations

import csv
import io
import warnings
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping, shape

from geovigie.catalog.samples import SLOVENIA
from geovigie.catalog.stac import CatalogClient, StaticItemStore
from geovigie.service import create_app
from geovigie.workflows import run_jobs
from tests._support.jobs import EAST, NORTH, SLOVENIA_AREA, SOUTH, WEST, dumps_job, lidar_bbox
from tests._support.writes import make_key, writes_settings

PUBLIC = "https://geo.example.fr/geovigie"
MIDDLE = (WEST + EAST) / 2
HALVES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"zone_id": zone, "zone_name": f"moitié {zone}"},
     "geometry": {"type": "Polygon", "coordinates": [[[w, SOUTH], [e, SOUTH], [e, NORTH], [w, NORTH], [w, SOUTH]]]}}
    for zone, w, e in (("ouest", WEST, MIDDLE), ("est", MIDDLE, EAST))]}
BEFORE, AFTER = "landcover-slovenia-reference-scene-1", "landcover-slovenia-reference-scene-2"
ZAN_JOB = {"territory": SLOVENIA_AREA, "period": "2015-07-11/2017-12-22", "tasks": ["zan"],
           "zan": {"before": BEFORE, "after": AFTER, "zones": HALVES, "mapping": "landcover-s2l1c-slovenia",
                   "mmu_other_m2": 0}}


@pytest.fixture
def inputs(tmp_path: Path, catalog_dir: Path) -> Path:
    """A catalog holding two real Slovenia scenes on the same grid (the job's source `samples`)."""
    items = {i.id: i for i in CatalogClient.open(catalog_dir).search(collections=[SLOVENIA]).items()}
    store = StaticItemStore(tmp_path / "inputs")
    for name in ("slovenia-reference-scene-1", "slovenia-reference-scene-2"):
        store.upsert(items[name].clone())
    return store.root


@pytest.fixture
def settings(tmp_path: Path, pgstac_url: str, inputs: Path):
    return writes_settings(tmp_path / "gv", pgstac_url, catalog_sources={"samples": str(inputs)},
                           public_url=PUBLIC, chunk_tiles=1)


def _local(href: str) -> str:
    return href.removeprefix(PUBLIC)


def test_landcover_progress_in_tiles_then_a_zan_job_on_its_layers(settings, dask_client, monkeypatch) -> None:
    from geovigie.diagnostics import shipped_mapping
    from geovigie.service import feedback
    from geovigie.tiles import LayerIndex, results_store_for
    from geovigie.workflows import _jobs, zan

    reports: list[dict] = []
    real_report = _jobs.report_job

    def recorded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if kwargs.get("tiles") is not None:
            reports.append(kwargs["tiles"])
        return real_report(*args, **kwargs)

    monkeypatch.setattr(_jobs, "report_job", recorded)
    monkeypatch.setattr(_jobs, "TILE_REPORT_INTERVAL_S", 0.0)
    monkeypatch.setattr(feedback, "SYNC_INTERVAL_S", 0.0)
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        landcover = {"territory": SLOVENIA_AREA, "period": "2015-01-01/2018-12-31", "tasks": ["landcover"],
                     "collection": SLOVENIA, "source": "samples"}
        # the zan inputs are checked at POST time: the layers are not published yet
        early = client.post("/jobs", json=ZAN_JOB, headers=key)
        assert early.status_code == 422 and "zan.before: no published layer" in early.text
        first = client.post("/jobs", json=landcover, headers=key).json()["id"]
        assert run_jobs(settings, until_empty=True, client=dask_client) == 1
        done = client.get(f"/jobs/{first}").json()
        assert done["state"] == "succeeded", done
        progress = done["progress"]
        assert (progress["done"], progress["total"], progress["unit"]) == (2, 2, "item tasks"), done["log"]
        tiles = progress["tiles"]
        assert tiles["done"] == tiles["total"] > 1 and tiles["item"] == "slovenia-reference-scene-2"
        assert any(f"{tiles['total']} tiles" in line for line in done["log"])  # the inference's own count
        for item in ("slovenia-reference-scene-1", "slovenia-reference-scene-2"):
            seen = [r["done"] for r in reports if r["item"] == item]
            assert seen[0] == 0 and seen[-1] == tiles["total"] and seen == sorted(seen) and len(seen) > 2

        submitted = client.post("/jobs", json=ZAN_JOB, headers=key)
        assert submitted.status_code == 202, submitted.text
        assert run_jobs(settings, until_empty=True) == 1
        job = client.get(f"/jobs/{submitted.json()['id']}").json()
        assert job["state"] == "succeeded", job
        assert (job["progress"]["done"], job["progress"]["total"]) == (1, 1)
        links = job["links"]
        layers = [link["title"] for link in links if link["rel"] == "layer"]
        place = f"job-{job['id']}"
        assert layers == [f"zan-{place}-2015-2017", f"zan-zones-{place}-2015-2017"]
        listed = [entry["id"] for entry in client.get("/layers").json()]
        assert set(layers) <= set(listed)
        table = next(link["href"] for link in links if link.get("type") == "text/csv")
        assert table.startswith(PUBLIC + "/assets/")
        rows = list(csv.DictReader(io.StringIO(client.get(_local(table)).text)))
        assert sorted(r["zone_id"] for r in rows) == ["est", "ouest"]

        # the same workflow run directly (as `geovigie diagnose zan`) gives the same figures
        index = LayerIndex(results_store_for(settings))
        zones = gpd.GeoDataFrame(pd.DataFrame([f["properties"] for f in HALVES["features"]]),
                                 geometry=[shape(f["geometry"]) for f in HALVES["features"]], crs=4326)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            direct = zan(index.get(BEFORE).path, index.get(AFTER).path, settings, place="direct", zones=zones,
                         start=date(2015, 7, 11), end=date(2017, 12, 22),
                         mapping=shipped_mapping("landcover-s2l1c-slovenia"), mmu_other_m2=0)
        expected = {str(r["zone_id"]): r for r in direct.table.to_dict("records")}
        assert direct.raw.artificialised_m2 + direct.raw.renaturalised_m2 > 0  # the two passes differ
        for row in rows:
            for column in ("artificialised_ha", "renaturalised_ha", "net_ha", "covered_fraction"):
                assert float(row[column]) == pytest.approx(expected[row["zone_id"]][column]), column

        features = next(link["href"] for link in links if link["rel"] == "features")
        served = client.get(_local(features)).json()
        assert served["numberMatched"] == 2
        assert {f["properties"]["zone_id"] for f in served["features"]} == {"est", "ouest"}
        assert all(f["properties"]["diagnostic"] == "zan" for f in served["features"])


def test_a_dumps_job_on_the_shipped_lidar_publishes_sites_that_get_feedback(settings) -> None:
    from geovigie.service import feedback

    feedback.SYNC_INTERVAL_S = 0.0
    key = {"Authorization": f"Bearer {make_key(settings, 'Agent de terrain')}"}
    sensitive = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "Lez"},
                 "geometry": {"type": "Point", "coordinates": [float(v) for v in lidar_bbox().split(",")[:2]]}}]}
    try:
        with TestClient(create_app(settings)) as client:
            submitted = client.post("/jobs", json=dumps_job(sensitive={"water": sensitive}), headers=key)
            assert submitted.status_code == 202, submitted.text
            assert run_jobs(settings, until_empty=True) == 1
            job = client.get(f"/jobs/{submitted.json()['id']}").json()
            assert job["state"] == "succeeded", job
            links = {(link["rel"], link.get("title")): link["href"] for link in job["links"]}
            assert links[("layer", "dumps-montpellier-job")] == f"{PUBLIC}/layers/dumps-montpellier-job"
            sites_csv = client.get(_local(links[("data", "Sites for field teams (CSV)")]))
            assert sites_csv.status_code == 200
            rows = list(csv.DictReader(io.StringIO(sites_csv.text)))
            assert rows and all(r["candidate"] in ("True", "true", "1") for r in rows)
            features = client.get(_local(links[("features", "Sites (OGC API Features, PostGIS dump_sites)")])).json()
            assert features["numberMatched"] == len(rows)
            site = features["features"][0]["properties"]
            assert site["watch"] == "montpellier-job" and site["pass_date"] == "2024-05-01"
            assert site["properties"]["dist_water_m"] >= 0 and site["properties"]["nearest_water"] == "Lez"
            posted = client.post(f"/sites/{site['site_id']}/feedback", params={"watch": "montpellier-job"},
                                 json={"status": "confirmed", "comment": "vu"}, headers=key)
            assert posted.status_code == 201 and posted.json()["author"] == "Agent de terrain"
            history = client.get(f"/sites/{site['site_id']}", params={"watch": "montpellier-job"}).json()["history"]
            assert [h["kind"] for h in history] == ["pass", "feedback"]

            # a runner that died after the dumps task: the job claimed again does not run it twice
            snapshot = settings.data_dir / "diagnostics" / "dumps" / "montpellier-job" / "passes" / "20240501.gpkg"
            written = snapshot.stat().st_mtime_ns
            with psycopg.connect(settings.database_url, autocommit=True) as conn:
                conn.execute("UPDATE geovigie.jobs SET state = 'running', worker = 'gone:1', heartbeat = now() - "
                             "interval '1 hour' WHERE id = %s", (job["id"],))
            assert run_jobs(settings, until_empty=True) == 1
            again = client.get(f"/jobs/{job['id']}").json()
            assert again["state"] == "succeeded" and again["attempts"] == 2
            assert "tasks: 1 (1 already done)" in again["log"] and snapshot.stat().st_mtime_ns == written
            assert {link["href"] for link in again["links"]} == {link["href"] for link in job["links"]}
    finally:
        feedback.SYNC_INTERVAL_S = 2.0


def test_a_dumps_job_keeps_only_the_sites_inside_its_territory(settings) -> None:
    """The west half of the LiDAR area: every site lies in it (the height model beyond is cropped away)."""
    west, south, east, north = (float(v) for v in lidar_bbox().split(","))
    half = box(west, south, (west + east) / 2, north)
    key = {"X-API-Key": make_key(settings)}
    with TestClient(create_app(settings)) as client:
        body = {**dumps_job(watch="west-half"), "territory": mapping(half)}
        assert client.post("/jobs", json=body, headers=key).status_code == 202
        assert run_jobs(settings, until_empty=True) == 1
        job = client.get("/jobs").json()["jobs"][0]
        assert job["state"] == "succeeded", job
        data = next(link["href"] for link in job["links"] if link.get("title") == "Sites (GeoJSON)")
        sites = client.get(_local(data)).json()["features"]
        footprints = gpd.GeoSeries([shape(s["geometry"]) for s in sites], crs=4326).to_crs(2154)
        outside = footprints.difference(gpd.GeoSeries([half], crs=4326).to_crs(2154).iloc[0]).area
        # pixels whose centre is inside are kept: a site may overhang the edge by less than half a 0.5 m pixel
        assert len(sites) and float(outside.max()) < 0.25 * footprints.length.max(), outside.max()
        assert any(shape(site["geometry"]).bounds[2] > west + (east - west) / 4 for site in sites)  # not a sliver
