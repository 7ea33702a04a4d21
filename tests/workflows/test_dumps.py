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
