"""Zones and per-zone figures on the real Gers Theia scene and the 19 shipped communes."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from geovigie.diagnostics import read_zones, zonal_classes, zonal_continuous
from geovigie.errors import DiagnosticsWarning, InvalidInputError, InvalidZonesError
from tests.conftest import GERS_DIR

COMMUNES = GERS_DIR / "COMMUNE_32xxx.geojson"
RED = next(GERS_DIR.glob("*_FRE_B4.tif"))


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class map derived from the real red band: 1 where reflectance > 0.06, 255 on the first 50 rows."""
    target = tmp_path_factory.mktemp("zonal") / "classes.tif"
    with rasterio.open(RED) as src:
        data, profile = src.read(1), src.profile
    out = (data > 600).astype("uint8")
    out[:50] = 255
    profile.update(dtype="uint8", nodata=255)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(out, 1)
    return target


def _aligned_zone(rows: slice, cols: slice, crs: str = "EPSG:32630") -> gpd.GeoDataFrame:
    with rasterio.open(RED) as src:
        west, north = src.transform * (cols.start, rows.start)
        east, south = src.transform * (cols.stop, rows.stop)
        zone = gpd.GeoDataFrame({"zone_id": ["r"], "zone_name": ["rectangle"]},
                                geometry=[box(west, south, east, north)], crs=src.crs)
    return zone.to_crs(crs)


def test_pixel_aligned_zone_matches_numpy(classes: Path) -> None:
    rows, cols = slice(100, 300), slice(250, 400)
    with rasterio.open(RED) as src:
        window = src.read(1)[rows, cols].astype(float)
    figures = zonal_continuous(_aligned_zone(rows, cols), RED).iloc[0]
    assert figures["mean"] == pytest.approx(window.mean(), rel=1e-6)
    assert figures["median"] == pytest.approx(np.median(window), abs=1.0)
    assert figures["covered_fraction"] == pytest.approx(1.0)
    table = zonal_classes(_aligned_zone(rows, cols), classes).set_index("class_value")
    assert table.loc[1, "area_m2"] == pytest.approx((window > 600).sum() * 100.0, rel=1e-6)
    assert table.loc[0, "area_m2"] == pytest.approx((window <= 600).sum() * 100.0, rel=1e-6)


def test_lambert93_and_wgs84_zones_give_the_same_figures(classes: Path) -> None:
    zones = read_zones(COMMUNES)
    assert zones.crs.to_epsg() == 2154 and len(zones) == 19
    with pytest.warns(DiagnosticsWarning, match="not covered"):
        lambert = zonal_classes(zones, classes, min_coverage=0.0)
    with pytest.warns(DiagnosticsWarning):
        wgs84 = zonal_classes(zones.to_crs("EPSG:4326"), classes, min_coverage=0.0)
    merged = lambert.merge(wgs84, on=["zone_id", "class_value"], how="outer")
    assert np.allclose(merged["area_m2_x"], merged["area_m2_y"], rtol=1e-3, atol=50, equal_nan=True)


def test_class_areas_sum_to_the_valid_covered_area(classes: Path) -> None:
    zones = read_zones(COMMUNES)
    with pytest.warns(DiagnosticsWarning):
        table = zonal_classes(zones, classes, {0: "dark", 1: "bright"}, min_coverage=0.0)
    aignan = table[table["zone_name"] == "Aignan"]
    zone = aignan.iloc[0]
    observed = zone["zone_area_m2"] * zone["covered_fraction"]
    assert (aignan["area_m2"] % 100.0 == 0).all()  # whole 10 m pixels
    assert abs(aignan["area_m2"].sum() - observed) <= len(aignan) * 0.5 * 100.0  # each class within half a pixel
    assert set(aignan["class_name"]) == {"dark", "bright"}
    # against a plain rasterisation (pixel centres) of the same commune: within 1 % (edge pixels differ)
    from rasterio.features import geometry_mask

    with rasterio.open(classes) as src:
        data = src.read(1)
        inside = ~geometry_mask(zones[zones.zone_name == "Aignan"].to_crs(src.crs).geometry, data.shape,
                                src.transform)
    assert aignan.set_index("class_value").loc[1, "area_m2"] == pytest.approx(
        ((data == 1) & inside).sum() * 100.0, rel=0.01)


def test_zone_outside_the_layer_is_reported_not_zero() -> None:
    far = gpd.GeoDataFrame({"zone_id": ["far"], "zone_name": ["far away"]},
                           geometry=[box(700000, 6600000, 701000, 6601000)], crs="EPSG:2154")
    with pytest.warns(DiagnosticsWarning, match="far"):
        row = zonal_continuous(far, RED).iloc[0]
    assert row["covered_fraction"] == 0 and np.isnan(row["mean"])


def test_bad_zone_files(tmp_path: Path) -> None:
    communes = gpd.read_file(COMMUNES)
    communes.loc[1, "INSEE_COM"] = communes.loc[0, "INSEE_COM"]
    communes.to_file(tmp_path / "dup.geojson")
    with pytest.raises(InvalidZonesError, match="duplicate zone ids"):
        read_zones(tmp_path / "dup.geojson")
    communes[["POPULATION", "geometry"]].to_file(tmp_path / "noid.geojson")
    with pytest.raises(InvalidZonesError, match="no zone id field"):
        read_zones(tmp_path / "noid.geojson")
    with pytest.raises(InvalidZonesError, match="no zone matches"):
        read_zones(COMMUNES, departement="95")
    bowtie = gpd.GeoDataFrame({"id": ["x"]}, geometry=[__import__("shapely").wkt.loads(
        "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))")], crs="EPSG:2154")
    bowtie.to_file(tmp_path / "bowtie.geojson")
    with pytest.warns(DiagnosticsWarning, match="repaired"):
        assert read_zones(tmp_path / "bowtie.geojson").geometry.is_valid.all()


def test_coverage_status_partial_boundary_and_slivers() -> None:
    with rasterio.open(RED) as src:
        west, north = src.transform * (700, 100)
        east, south = src.transform * (900, 300)  # columns 800-899 lie beyond the raster: half the zone
        edge_x = src.bounds.right
        data = src.read(1)[100:300, 700:800].astype(float)
        crs = src.crs
    zones = gpd.GeoDataFrame(
        {"zone_id": ["half", "sliver", "touch"], "zone_name": ["half out", "1 mm strip", "touching"]},
        geometry=[box(west, south, east, north), box(edge_x - 0.001, south, edge_x + 500, north),
                  box(edge_x, south, edge_x + 500, north)], crs=crs)
    with pytest.warns(DiagnosticsWarning, match="2 not covered: sliver, touch"):
        at = zonal_continuous(zones, RED, min_coverage=0.5).set_index("zone_id")
    assert at.loc["half", "covered_fraction"] == pytest.approx(0.5) and at.loc["half", "status"] == "covered"
    assert at.loc["half", "mean"] == pytest.approx(data.mean(), rel=1e-6)
    assert at.loc["half", "observed_area_ha"] == 100 * 200 * 100 / 1e4  # whole pixels
    for zone in ("sliver", "touch"):  # no 1e-13 ha: nothing observed, no figure
        assert at.loc[zone, "status"] == "not_covered" and at.loc[zone, "observed_area_ha"] == 0
        assert at.loc[zone, ["mean", "median", "p10", "p90", "min", "max"]].isna().all()
    with pytest.warns(DiagnosticsWarning, match="1 partial"):
        above = zonal_continuous(zones, RED, min_coverage=0.5 + 1e-6).set_index("zone_id")
    assert above.loc["half", "status"] == "partial" and np.isnan(above.loc["half", "mean"])
    with pytest.warns(DiagnosticsWarning):
        classes = zonal_classes(zones, RED, min_coverage=0.6)
    assert classes["area_ha"].isna().all() and (classes.groupby("zone_id").size() == 1).all()
    with pytest.raises(InvalidInputError, match="--min-coverage"):
        zonal_continuous(zones, RED, min_coverage=1.5)
    with pytest.raises(InvalidZonesError, match="no CRS"):
        zonal_continuous(zones.set_crs(None, allow_override=True), RED)


def test_read_zones_refuses_a_shapefile_without_prj(tmp_path: Path) -> None:
    read_zones(COMMUNES).to_file(tmp_path / "communes.shp")
    (tmp_path / "communes.prj").unlink()
    with pytest.raises(InvalidZonesError, match="communes.shp.*--zones-crs"):
        read_zones(tmp_path / "communes.shp")
    zones = read_zones(tmp_path / "communes.shp", crs="EPSG:2154")
    assert zones.crs.to_epsg() == 2154
    assert zones.geometry.area.sum() == pytest.approx(read_zones(COMMUNES).geometry.area.sum(), rel=1e-9)
