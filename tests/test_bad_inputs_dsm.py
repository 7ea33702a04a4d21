"""Bad input to `geovigie diagnose dumps-change` (dump candidates from two height models): one `error:` line
naming the problem, exit code 2, no traceback, nothing left behind under the data directory.

Every input is made here from the shipped IGN LiDAR HD surface model of Montpellier: the same tile written in
another CRS, moved away, stacked into two bands, in degrees; footprint layers without polygons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, box

from tests._support.feedback import DSM, feedback_config
from tests._support.figures import assert_fails_cleanly, files_under, run_cli


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    words: tuple[str, ...]


def _write(path: Path, array: np.ndarray, crs: str, transform: Affine) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[-1], height=array.shape[-2],
                       count=1 if array.ndim == 2 else array.shape[0], dtype="float32", crs=crs,
                       transform=transform, nodata=-9999.0) as dst:
        if array.ndim == 2:
            dst.write(array, 1)
        else:
            dst.write(array)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dsm-bad")
    with rasterio.open(DSM) as src:
        heights, transform = src.read(1), src.transform
    # the same numbers declared in UTM 31N (a pass delivered in another CRS)
    _write(folder / "utm.tif", heights, "EPSG:32631", transform)
    _write(folder / "far.tif", heights, "EPSG:2154", Affine.translation(10_000, 0) * transform)
    _write(folder / "two_bands.tif", np.stack([heights, heights]), "EPSG:2154", transform)
    _write(folder / "degrees.tif", heights, "EPSG:4326", Affine(1e-5, 0, 3.87, 0, -1e-5, 43.6))
    (folder / "text.tif").write_text("not a raster\n")
    x, y = transform.c + 25, transform.f - 25
    gpd.GeoDataFrame({"name": ["pole"]}, geometry=[Point(x, y)], crs="EPSG:2154").to_file(folder / "points.gpkg")
    gpd.GeoDataFrame({"name": ["b"]}, geometry=[box(x, y, x + 5, y + 5)], crs="EPSG:2154").to_file(
        folder / "noprj.shp")
    (folder / "noprj.prj").unlink()
    return folder


def _change(before: str = str(DSM), after: str = str(DSM), *extra: str) -> tuple[str, ...]:
    return ("diagnose", "dumps-change", "--dsm-before", before, "--dsm-after", after, "--watch", "w",
            "--date", "2024-05-01", *extra)


CASES = {
    "crs-differs": Case(_change(after="{in}/utm.tif"), ("utm.tif", "EPSG:32631", "EPSG:2154")),
    "no-overlap": Case(_change(after="{in}/far.tif"), ("far.tif", "does not overlap")),
    "after-missing": Case(_change(after="{in}/nothing.tif"), ("nothing.tif",)),
    "before-not-a-raster": Case(_change(before="{in}/text.tif"), ("text.tif", "not a readable raster")),
    "two-bands": Case(_change(after="{in}/two_bands.tif"), ("two_bands.tif", "2 bands")),
    "degrees": Case(_change(before="{in}/degrees.tif"), ("degrees.tif", "EPSG:4326", "metres")),
    "zero-rise": Case(_change(str(DSM), str(DSM), "--min-rise", "0"), ("--min-rise",)),
    "negative-rise": Case(_change(str(DSM), str(DSM), "--min-rise", "-1"), ("--min-rise",)),
    "nan-min-area": Case(_change(str(DSM), str(DSM), "--min-area", "nan"), ("--min-area",)),
    "bad-date": Case(("diagnose", "dumps-change", "--dsm-before", str(DSM), "--dsm-after", str(DSM), "--watch", "w",
                      "--date", "yesterday"), ("--date", "yesterday")),
    "bad-watch": Case(("diagnose", "dumps-change", "--dsm-before", str(DSM), "--dsm-after", str(DSM), "--watch",
                       "../up", "--date", "2024-05-01"), ("../up",)),
    "buildings-missing": Case(_change(str(DSM), str(DSM), "--buildings", "{in}/nothing.gpkg"), ("nothing.gpkg",)),
    "buildings-points": Case(_change(str(DSM), str(DSM), "--buildings", "{in}/points.gpkg"),
                             ("buildings", "no polygon")),
    "buildings-without-crs": Case(_change(str(DSM), str(DSM), "--buildings", "{in}/noprj.shp"),
                                  ("noprj.shp", "--zones-crs")),
    "sensitive-missing": Case(_change(str(DSM), str(DSM), "--sensitive", "water={in}/nothing.gpkg"),
                              ("nothing.gpkg",)),
}



@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_error_line(name: str, inputs: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    assert_fails_cleanly(case.args, case.words, inputs, tmp_path, monkeypatch)


# `geovigie train` on field feedback (the service's export) for the dump-site detector




TRAIN_CASES = {
    "too-few-false-alarms": (["confirmed"] * 5 + ["false_alarm"] * 2, {},
                             ("2 field record(s)", "'background'", "false_alarm", "labels.min_records")),
    "too-few-confirmed": (["confirmed"] * 1 + ["false_alarm"] * 6, {"min_records": 2},
                          ("1 field record(s)", "'dump'", "confirmed")),
    "buffer-erases-sites": (["confirmed"] * 5 + ["false_alarm"] * 5, {"buffer_m": -3.0},
                            ("labels.buffer_m = -3", "erases every site")),
    "bad-status": (["confirmed"] * 5 + ["maybe"] * 5, {}, ("status 'maybe'",)),
    "feedback-elsewhere": (["confirmed"] * 5 + ["false_alarm"] * 5, {"__far__": True},
                           ("no field record lies on the images",)),
}


@pytest.mark.parametrize("name", list(TRAIN_CASES))
def test_bad_feedback_labels_give_one_error_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    statuses, labels, words = TRAIN_CASES[name]
    inputs = tmp_path / "in"
    inputs.mkdir()
    if name == "bad-status":  # field_record refuses it: write the record by hand, as another tool might
        config = feedback_config(inputs, name, ["confirmed"] * 10, **labels)
        geojson = inputs / f"{name}.geojson"
        payload = json.loads(geojson.read_text())
        for feature in payload["features"][5:]:
            feature["properties"]["status"] = "maybe"
        geojson.write_text(json.dumps(payload))
    else:
        config = feedback_config(inputs, name, statuses, **labels)
    work = tmp_path / "work"
    work.mkdir()
    (work / "none.toml").write_text("# no settings\n")
    before = files_under(work)
    code, stderr = run_cli(["train", str(config), "--quiet", "--device", "cpu"], work, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert files_under(work) == before, files_under(work) - before
