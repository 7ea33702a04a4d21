"""Bad input through the command line: one line naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pystac
import pytest

from tests.conftest import DATA, SLOVENIA_SCENE

GEOVIGIE = str(Path(sys.executable).parent / "geovigie")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    (cwd / "none.toml").touch()
    return subprocess.run([GEOVIGIE, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"PATH": str(Path(sys.executable).parent), "GEOVIGIE_CONFIG": str(cwd / "none.toml"),
                               "GEOVIGIE_SAMPLE_DATA_DIR": str(DATA), "GEOVIGIE_TILE_SIZE": "64",
                               "GEOVIGIE_OVERLAP": "16", "HOME": str(cwd), "GEOVIGIE_STAC_BACKEND": "static"})


def assert_clean_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")
    for needle in needles:
        assert needle in done.stderr


def test_help() -> None:
    done = subprocess.run([GEOVIGIE, "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("catalog", "predict", "serve", "demo"):
        assert command in done.stdout


def test_missing_file(tmp_path: Path) -> None:
    assert_clean_error(run("predict", "nope.tif", "--out", "o", cwd=tmp_path), "nope.tif")
    assert not (tmp_path / "o").exists()


def test_band_mismatch(tmp_path: Path) -> None:
    red = next((DATA / "s2-l2a-theia-gers").glob("*_FRE_B4.tif"))
    assert_clean_error(run("predict", str(red), "--out", "o", cwd=tmp_path), red.name, "bands")


def test_raster_without_crs(tmp_path: Path) -> None:
    import rasterio

    with rasterio.open(SLOVENIA_SCENE) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs")
    with rasterio.open(tmp_path / "nocrs.tif", "w", **profile) as dst:
        dst.write(data)
    assert_clean_error(run("predict", "nocrs.tif", "--out", "o", "--product-level", "L1C", cwd=tmp_path), "no CRS")


def test_catalog_errors(tmp_path: Path) -> None:
    assert run("catalog", "build", cwd=tmp_path).returncode == 0
    assert_clean_error(run("catalog", "search", "--collections", "sentinel-9", cwd=tmp_path), "sentinel-9")
    assert_clean_error(run("catalog", "search", "--bbox", "-60,-20,-59,-19", cwd=tmp_path), "no item")
    ok = run("catalog", "search", "--collections", "s2-l1c-slovenia", "--json", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.count('"type": "Feature"') == 4


@pytest.mark.slow
def test_predict_command_writes_outputs(tmp_path: Path) -> None:
    done = run("predict", str(SLOVENIA_SCENE), "--out", "o", "--product-level", "L1C", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "o").glob("*.tif"))) == 2
    # every output has a STAC item: predict publishes the class map as a layer of the results store
    (folder,) = (tmp_path / "geovigie-data/results/geovigie-results").glob("landcover-reference_scene_2-*")
    item_path = folder / f"{folder.name}.json"  # the file's layer: its stem and 8 hex digits of its content
    assert "STAC item:" in done.stderr and item_path.is_file()
    item = pystac.Item.from_file(str(item_path))
    assert item.properties["geovigie:model_bundle"].startswith("landcover-s2l1c-slovenia@")
    assert {"data", "probabilities", "model-card"} <= set(item.assets)
    again = run("predict", str(SLOVENIA_SCENE), "--out", "o", "--product-level", "L1C", cwd=tmp_path)
    assert "up to date" in again.stderr


@pytest.mark.slow
def test_diagnose_and_report_commands(tmp_path: Path) -> None:
    odeon = DATA / "odeon-change-labels-2016-2019"
    patch = "zone_v13_478208-0000_6275584-0000.tiff"
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    with rasterio.open(odeon / "2016/naf" / patch) as src:
        gpd.GeoDataFrame({"zone_id": ["p"], "zone_name": ["patch"]}, geometry=[box(*src.bounds)],
                         crs=src.crs).to_file(tmp_path / "zones.geojson")
    done = run("diagnose", "zan", "--before", str(odeon / "2016/naf" / patch), "--after",
               str(odeon / "2019/naf" / patch), "--start", "2016-07-01", "--end", "2019-07-01",
               "--zones", "zones.geojson", "--place", "patch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "zan-patch-2016-2019" in done.stderr
    table = (tmp_path / "geovigie-data/results/geovigie-results/zan-zones-patch-2016-2019/zones.csv").read_text()
    assert "artificialised_ha_no_mmu" in table
    report = run("report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "land take" in (tmp_path / "geovigie-data/report/index.html").read_text()
    assert_clean_error(run("diagnose", "zan", "--before", str(odeon / "2016/naf" / patch), "--after",
                           str(odeon / "2019/naf" / patch), "--start", "2016-07-01", "--end", "2019-07-01",
                           "--zones", "zones.geojson", "--mapping", "landcover-s2l1c-slovenia", cwd=tmp_path),
                       "not in the ZAN mapping")
    assert_clean_error(run("diagnose", "zan", "--before", "x.tif", "--after", "y.tif", "--start", "2016-07-01",
                           "--end", "2019-07-01", "--zones", "missing.geojson", cwd=tmp_path), "missing.geojson")
