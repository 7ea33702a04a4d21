"""The dump-site workflow over passes: state per pass, idempotent reruns, exports and a published layer."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from geovigie.settings import Settings
from geovigie.tiles import LayerIndex
from geovigie.workflows import dump_sites, lidar_models, watch_folder
from tests._support.writes import without_largest_site
from tests.conftest import DATA


@pytest.fixture(scope="module")
def lidar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return lidar_models(DATA, tmp_path_factory.mktemp("lidar"))


def test_two_passes_track_and_rerun_is_idempotent(lidar: tuple[Path, Path, Path], tmp_path: Path) -> None:
    dsm, dtm, layer = lidar
    settings = Settings(data_dir=tmp_path / "gv")
    kwargs = {"watch": "montpellier", "candidate": True, "threshold": 0.2, "dsm": dsm, "dtm": dtm}
    first = dump_sites(layer, settings, pass_date=date(2024, 5, 1), **kwargs)  # no warning: every volume measured
    assert set(first.sites["status"]) == {"new"} and len(first.sites) >= 10
    measured = first.sites["volume_m3"]
    assert (measured > 0).all() and (first.sites["volume_uncertainty_m3"] < measured).all()
    largest = first.sites.sort_values("area_m2").iloc[-1]
    second_layer = without_largest_site(layer, tmp_path / "pass2.tif", largest)
    second = dump_sites(second_layer, settings, pass_date=date(2024, 6, 1), **kwargs)
    statuses = dict(zip(second.sites["site_id"], second.sites["status"], strict=True))
    assert statuses[largest["site_id"]] == "removed"
    assert sum(s == "persisting" for s in statuses.values()) == len(first.sites) - 1
    assert second.alerts.empty  # nothing new or grown
    # a rerun of pass 2 replaces its snapshot and gives the same answer (tracked against pass 1 again)
    again = dump_sites(second_layer, settings, pass_date=date(2024, 6, 1), **kwargs)
    assert sorted(again.sites["site_id"]) == sorted(second.sites["site_id"])
    assert sorted(p.name for p in (watch_folder(settings, "montpellier") / "passes").iterdir()) == [
        "20240501.gpkg", "20240601.gpkg"]
    for key in ("geojson", "gpkg", "csv", "alerts_csv", "history_csv"):
        assert second.files[key].is_file()
    layer_info = LayerIndex(settings.results_dir).get("dumps-montpellier")
    assert layer_info.kind == "vector" and "not a validated dump detector" in layer_info.description
    features = json.loads(layer_info.path.read_text())["features"]
    assert len(features) == len(second.sites) and all(f["properties"]["candidate"] for f in features)
    volumes = np.array([f["properties"]["volume_m3"] or 0 for f in features])
    assert volumes.max() > 1000  # buildings of this LiDAR stand-in hold thousands of m³


def test_a_partly_observed_pass_keeps_unseen_sites_as_not_observed(lidar: tuple[Path, Path, Path],
                                                                   tmp_path: Path) -> None:
    """Pass 2 is the real stand-in with nodata written over its western half (a swath edge, clouds)."""
    import geopandas as gpd
    import pandas as pd
    import rasterio

    from tests._support.lidar import pixels_of

    dsm, dtm, layer = lidar
    settings = Settings(data_dir=tmp_path / "gv")
    kwargs = {"watch": "montpellier", "candidate": True, "threshold": 0.2, "dsm": dsm, "dtm": dtm}
    first = dump_sites(layer, settings, pass_date=date(2024, 5, 1), **kwargs)
    with rasterio.open(layer) as src:
        band, profile, transform = src.read(1), src.profile, src.transform
    band[:, : band.shape[1] // 2] = 255
    profile.update(driver="GTiff")
    half = tmp_path / "pass2-half.tif"
    with rasterio.open(half, "w", **profile) as dst:
        dst.write(band[None])
    second = dump_sites(half, settings, pass_date=date(2024, 6, 1), **kwargs)
    shares = {}
    for site_id, geom in zip(first.sites["site_id"], first.sites.geometry, strict=True):
        inside = pixels_of(geom, band.shape, transform)
        shares[site_id] = (inside & (band != 255)).sum() / inside.sum()
    statuses = dict(zip(second.sites["site_id"], second.sites["status"], strict=True))
    unseen = {i for i, s in statuses.items() if s == "not_observed"}
    assert {i for i, s in shares.items() if s == 0} <= unseen and all(shares[i] < 0.5 for i in unseen)
    partly = {i for i, s in shares.items() if 0 < s < 1} - unseen  # partly observed and seen: matched as usual
    assert partly and all(statuses[i] == "persisting" for i in partly)  # compared on the part observed
    assert "removed" not in statuses.values()
    # a site the nodata edge cut in two is one site seen through a gap: one row, no "new" piece, no alert
    assert second.alerts.empty and "new" not in statuses.values()
    assert set(statuses) == set(first.sites["site_id"])
    assert all(statuses[i] == "persisting" for i, s in shares.items() if s == 1)
    counts = second.layer.item.properties["geovigie:status_counts"]
    assert counts["not_observed"] == len(unseen) and sum(counts.values()) == len(second.sites)
    assert f"{len(unseen)} not_observed (non observé)" in second.layer.item.properties["description"] or \
        f"{len(unseen)} not_observed (non observé)" in second.layer.detail
    assert second.layer.item.properties["geovigie:observed_share"] == round((band != 255).sum() / band.size, 4)
    for key in ("geojson", "gpkg"):
        exported = gpd.read_file(second.files[key])
        assert set(exported.loc[exported["status"] == "not_observed", "site_id"]) == unseen
    table = pd.read_csv(second.files["csv"])
    assert set(table.loc[table["status"] == "not_observed", "site_id"]) == unseen
    assert table.loc[table["status"] == "not_observed", "area_m2"].isna().all()
    history = pd.read_csv(second.files["history_csv"])
    assert set(history.loc[history["status"] == "not_observed", "site_id"]) == unseen
    # a pass of nodata only records nothing: the not-observed sites stay as they were
    blank = tmp_path / "blank.tif"
    with rasterio.open(blank, "w", **profile) as dst:
        dst.write(np.full_like(band, 255)[None])
    none = dump_sites(blank, settings, pass_date=date(2024, 6, 15), **kwargs)
    assert none.sites.empty and not (watch_folder(settings, "montpellier") / "passes" / "20240615.gpkg").exists()
    # the next clear pass sees them again: persisting, same ids, nothing new
    third = dump_sites(layer, settings, pass_date=date(2024, 7, 1), **kwargs)
    again = dict(zip(third.sites["site_id"], third.sites["status"], strict=True))
    assert all(again[i] == "persisting" for i in unseen) and "new" not in again.values()
    assert all(again[i] == "persisting" for i in partly)  # whole again
    assert set(again) == set(first.sites["site_id"]) and "removed" not in again.values()
