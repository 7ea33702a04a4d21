"""Dump sites and field feedback over HTTP, on real dump passes in a real PostgreSQL: a site's attributes and history,
feedback with a key (author = the key's owner), and the export `geovigie train` reads as field-validation labels."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geovigie.service import create_app
from tests._support.writes import make_key, two_dump_passes, writes_settings


@pytest.fixture
def sites(tmp_path: Path, pgstac_url: str):
    settings = writes_settings(tmp_path / "gv", pgstac_url)
    first, second = two_dump_passes(settings, tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client, settings, first, second


def test_a_site_shows_its_attributes_and_statuses_across_passes(sites) -> None:
    client, _, first, second = sites
    removed = second.sites[second.sites["status"] == "removed"].iloc[0]
    persisting = second.sites[second.sites["status"] == "persisting"].iloc[0]
    answer = client.get(f"/sites/{removed['site_id']}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/geo+json"
    site = answer.json()
    assert site["type"] == "Feature" and site["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert site["properties"]["status"] == "removed" and site["properties"]["watch"] == "montpellier"
    assert site["properties"]["area_m2"] == pytest.approx(removed["area_m2"])
    assert [(h["time"], h["status"]) for h in site["history"]] == [("2024-05-01", "new"), ("2024-06-01", "removed")]
    other = client.get(f"/sites/{persisting['site_id']}").json()
    assert [h["status"] for h in other["history"]] == ["new", "persisting"]
    assert other["properties"]["volume_m3"] == pytest.approx(persisting["volume_m3"], nan_ok=True)
    assert client.get("/sites/20240501-0000000000").status_code == 404


def test_feedback_is_stored_with_its_author_shown_in_history_and_exported_as_training_labels(
        sites, tmp_path: Path) -> None:
    from geovigie.training._labels import read_vectors

    client, settings, first, second = sites
    agent = make_key(settings, "Agent de terrain Lunel")
    confirmed, false_alarm = second.sites["site_id"].iloc[0], second.sites["site_id"].iloc[1]
    before = datetime.now(UTC).replace(microsecond=0)
    posted = client.post(f"/sites/{confirmed}/feedback", json={"status": "false_alarm", "comment": "un toit"},
                         headers={"Authorization": f"Bearer {agent}"})
    assert posted.status_code == 201, posted.text
    record = posted.json()
    assert record["author"] == "Agent de terrain Lunel" and record["status"] == "false_alarm"
    assert datetime.fromisoformat(record["time"].replace("Z", "+00:00")) >= before
    # a later visit changes its mind: the history keeps both, the export the latest
    client.post(f"/sites/{confirmed}/feedback", json={"status": "confirmed", "comment": "gravats derrière le toit"},
                headers={"X-API-Key": agent})
    client.post(f"/sites/{false_alarm}/feedback", json={"status": "false_alarm"}, headers={"X-API-Key": agent})
    history = client.get(f"/sites/{confirmed}").json()["history"]
    assert [h["kind"] for h in history] == ["pass", "pass", "feedback", "feedback"]
    assert [h.get("comment") for h in history[2:]] == ["un toit", "gravats derrière le toit"]
    assert client.get(f"/sites/{confirmed}").json()["properties"]["feedback_status"] == "confirmed"

    exported = client.get("/feedback/export", params={"format": "geojson"})
    assert exported.status_code == 200
    path = tmp_path / "visits.geojson"
    path.write_bytes(exported.content)
    labels = read_vectors(path, None, "status", field_validation=True)  # what `geovigie train` reads
    assert sorted(zip(labels["site_id"], labels["status"], strict=True)) == sorted(
        [(confirmed, "confirmed"), (false_alarm, "false_alarm")])
    assert set(labels["author"]) == {"Agent de terrain Lunel"}
    assert labels.crs.to_epsg() == 4326 and labels.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    every = client.get("/feedback/export", params={"all": "true"}).json()["features"]
    assert len(every) == 3
    assert client.get("/feedback/export", params={"format": "csv"}).status_code == 422


def test_feedback_trains_a_label_grid(sites, tmp_path: Path) -> None:
    """The export rasterises as field-validation labels on a real grid: confirmed -> dump, false alarm -> background."""
    import rasterio

    from geovigie.training._labels import Grid, Mapping, read_vectors, vector_labels

    client, settings, _, second = sites
    agent = make_key(settings, "Agent")
    site_ids = list(second.sites["site_id"].iloc[:2])
    for site_id, status in zip(site_ids, ("confirmed", "false_alarm"), strict=True):
        assert client.post(f"/sites/{site_id}/feedback", json={"status": status},
                           headers={"X-API-Key": agent}).status_code == 201
    path = tmp_path / "visits.geojson"
    path.write_bytes(client.get("/feedback/export").content)
    frame = read_vectors(path, None, "status", field_validation=True)
    with rasterio.open(tmp_path / "pass2.tif") as src:  # the second pass's layer (Lambert 93)
        grid = Grid(src.crs, src.transform, src.height, src.width)
    mapping = Mapping({"false_alarm": 0, "confirmed": 1}, frozenset({"cleaned"}), 255, ["background", "dump"])
    labels = vector_labels(frame, "status", grid, mapping, 15.0, str(path))
    assert (labels == 1).sum() > 0 and (labels == 0).sum() > 0


def test_feedback_input_is_checked(sites) -> None:
    client, settings, _, second = sites
    key = {"X-API-Key": make_key(settings)}
    site_id = second.sites["site_id"].iloc[0]
    assert client.post(f"/sites/{site_id}/feedback", json={"status": "maybe"}, headers=key).status_code == 422
    assert client.post(f"/sites/{site_id}/feedback", json={"status": "confirmed", "extra": 1},
                       headers=key).status_code == 422
    assert client.post(f"/sites/{site_id}/feedback", json={"status": "confirmed", "comment": "x" * 2001},
                       headers=key).status_code == 422
    assert client.post("/sites/nope/feedback", json={"status": "confirmed"}, headers=key).status_code == 404
    assert client.get("/feedback/export").json()["features"] == []  # nothing stored by refused posts


def test_an_unreadable_pass_file_keeps_the_sites_already_loaded(sites, caplog) -> None:
    from geovigie.service import feedback
    from geovigie.workflows import watch_folder

    client, settings, _, second = sites
    site_id = second.sites.loc[second.sites["status"] == "persisting", "site_id"].iloc[0]
    assert client.get(f"/sites/{site_id}").status_code == 200
    latest = sorted((watch_folder(settings, "montpellier") / "passes").glob("*.gpkg"))[-1]
    latest.write_bytes(b"not a geopackage")  # a disk error, a half-copied file
    feedback.SYNC_INTERVAL_S, before = 0.0, feedback.SYNC_INTERVAL_S
    try:
        answer = client.get(f"/sites/{site_id}")
    finally:
        feedback.SYNC_INTERVAL_S = before
    assert answer.status_code == 200 and answer.json()["properties"]["status"] == "persisting"
    assert "not reloaded" in caplog.text and latest.name in caplog.text
