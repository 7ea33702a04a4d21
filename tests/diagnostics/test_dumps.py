"""Dump sites on real data.

No labelled dump imagery exists offline, so the site layers here are stand-ins built from real rasters:
the IGN LiDAR HD height above ground of Montpellier (DSM − DTM, scaled as a probability: height / 10 m, capped
at 1) and a Sentinel-2 NDVI of the Gers (NDVI as a probability). Sites extracted from them are trees and
buildings, not dumps; what is tested is the geometry, measurement, location and export.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features
from pyproj import Transformer
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from shapely.geometry import box

from geovigie.cog import write_array_cog
from geovigie.diagnostics._dumps import (
    CANDIDATE_NOTE,
    DETECTOR_COLUMNS,
    NO_SURFACE_NOTE,
    SITE_COLUMNS,
    extract_sites,
    sensitive_zones,
    site_volumes,
    write_sites,
)
from geovigie.errors import (
    DiagnosticsWarning,
    GridMismatchError,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
    InvalidZonesError,
)
from tests._support.lidar import LIDAR, lidar_mosaic, pixels_of, write_lidar_layers
from tests.conftest import DATA, GERS_DIR

TILE_A, TILE_B = "test_data_77050_627755", "test_data_77060_627760"  # south-west and north-east tiles
COMMUNES = GERS_DIR / "COMMUNE_32xxx.geojson"
GERS_BAND = str(GERS_DIR / "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9_FRE_{}.tif")
PASS = date(2024, 5, 1)
HEIGHT_THRESHOLD = 0.2  # height >= 2 m on the stand-in layer
PIXEL_AREA = 0.25  # LiDAR grid: 0.5 m


def tile(kind: str, name: str) -> Path:
    return LIDAR / kind / f"{name}_LA93_IGN69_50CM_TIN.tif"


def label4(mask: np.ndarray) -> np.ndarray:
    """Connected components (4-connectivity) by breadth-first search: an independent reference for the tests."""
    labels = np.zeros(mask.shape, np.int32)
    count = 0
    height, width = mask.shape
    for r0, c0 in zip(*np.nonzero(mask), strict=True):
        if labels[r0, c0]:
            continue
        count += 1
        labels[r0, c0] = count
        queue = deque([(r0, c0)])
        while queue:
            r, c = queue.popleft()
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < height and 0 <= cc < width and mask[rr, cc] and not labels[rr, cc]:
                    labels[rr, cc] = count
                    queue.append((rr, cc))
    return labels


def component_sizes(mask: np.ndarray, min_px: int) -> list[int]:
    sizes = np.bincount(label4(mask).ravel())[1:]
    return sorted(int(s) for s in sizes if s >= min_px)


@pytest.fixture(scope="module")
def lidar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_lidar_layers(tmp_path_factory.mktemp("lidar"))


@pytest.fixture(scope="module")
def sites(lidar: dict[str, Path]) -> gpd.GeoDataFrame:
    return extract_sites(lidar["probability"], threshold=HEIGHT_THRESHOLD, pass_date=PASS, candidate=True)


@pytest.fixture(scope="module")
def zones() -> gpd.GeoDataFrame:
    communes = gpd.read_file(COMMUNES)
    return communes.rename(columns={"INSEE_COM": "zone_id", "NOM_COM": "zone_name"})[["zone_id", "zone_name",
                                                                                       "geometry"]]


@pytest.fixture(scope="module")
def gers_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NDVI of a 2 × 2 km Gers window where four communes meet, as a probability layer (EPSG:32630)."""
    window = Window(0, 50, 200, 200)
    with rasterio.open(GERS_BAND.format("B4")) as src:
        red = src.read(1, window=window).astype(np.float64)
        transform, crs = src.window_transform(window), src.crs
    with rasterio.open(GERS_BAND.format("B8")) as src:
        nir = src.read(1, window=window).astype(np.float64)
    valid = (red > 0) & (nir > 0)
    ndvi = np.where(valid, (nir - red) / np.where(valid, nir + red, 1), 0)
    probability = np.clip(np.rint(ndvi * 250), 0, 250).astype(np.uint8)
    probability[~valid] = 255
    path = tmp_path_factory.mktemp("gers") / "ndvi_probability.tif"
    profile = {"driver": "GTiff", "crs": crs, "transform": transform, "nodata": 255}
    return write_array_cog(path, probability[None], profile=profile)


@pytest.fixture(scope="module")
def gers_sites(gers_layer: Path, zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return extract_sites(gers_layer, threshold=0.85, min_area_m2=500, pass_date=datetime(2018, 10, 23, 10, 51, 7),
                         candidate=True, zones=zones)


def test_site_areas_sum_to_the_cleaned_mask(lidar: dict[str, Path], sites: gpd.GeoDataFrame) -> None:
    with rasterio.open(lidar["probability"]) as src:
        values = src.read(1)
    mask = (values <= 250) & (values >= 50)  # 50 / 250 = threshold 0.2
    min_px = math.ceil(20.0 / PIXEL_AREA)  # default sieve: the pixel count of min_area_m2 = 20 m²
    cleaned = rasterio.features.sieve(mask.astype(np.uint8), size=min_px, connectivity=4).astype(bool)
    # the sieve fills small holes, nodata ones too: those pixels are inside a site but not in its area
    labels = label4(cleaned)
    valid_px = np.bincount(labels[values <= 250], minlength=labels.max() + 1)[1:]
    nodata_px = np.bincount(labels[values == 255], minlength=labels.max() + 1)[1:]
    kept = valid_px >= min_px
    expected = sorted(int(n) for n in valid_px[kept])
    assert len(sites) == len(expected) >= 10
    assert sorted(sites["area_m2"] / PIXEL_AREA) == pytest.approx(expected)
    assert sites["area_m2"].sum() == pytest.approx(sum(expected) * PIXEL_AREA)
    assert sites["nodata_px"].sum() == nodata_px[kept].sum() >= 2  # the real layer has sites with nodata inside
    assert (sites["area_m2"] >= 20).all() and list(sites.columns) == [*SITE_COLUMNS, *DETECTOR_COLUMNS, "geometry"]
    assert str(sites.crs) == "EPSG:2154" and sites.geometry.is_valid.all()
    assert not sites.geometry.union_all().is_empty and sites["area_ha"].tolist() == pytest.approx(
        (sites["area_m2"] / 10_000).tolist())


def test_without_sieve_areas_are_the_raw_components(lidar: dict[str, Path]) -> None:
    with rasterio.open(lidar["probability"]) as src:
        values = src.read(1)
    mask = (values <= 250) & (values >= 125)  # threshold 0.5: height >= 5 m
    found = extract_sites(lidar["probability"], threshold=0.5, sieve_px=0, min_area_m2=10, pass_date=PASS,
                          candidate=True)
    assert sorted(found["area_m2"] / PIXEL_AREA) == pytest.approx(component_sizes(mask, 40))


def test_confidence_and_centroids_are_measured_on_the_site(lidar: dict[str, Path], sites: gpd.GeoDataFrame) -> None:
    with rasterio.open(lidar["probability"]) as src:
        values, transform = src.read(1), src.transform
    to_wgs84 = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
    for _, site in sites.head(4).iterrows():
        inside = pixels_of(site.geometry, values.shape, transform) & (values <= 250)
        assert site["mean_confidence"] == pytest.approx(values[inside].mean() / 250)
        assert site["max_confidence"] == pytest.approx(values[inside].max() / 250)
        assert site["max_confidence"] >= HEIGHT_THRESHOLD
        centroid = site.geometry.centroid
        assert (site["centroid_x_l93"], site["centroid_y_l93"]) == pytest.approx((centroid.x, centroid.y))
        lon, lat = to_wgs84.transform(centroid.x, centroid.y)
        assert (site["centroid_lon"], site["centroid_lat"]) == pytest.approx((lon, lat), abs=1e-9)
        assert 3.87 < lon < 3.88 and 43.59 < lat < 43.60  # Montpellier


def test_ids_are_stable_and_candidates_say_so(lidar: dict[str, Path], sites: gpd.GeoDataFrame) -> None:
    again = extract_sites(lidar["probability"], threshold=HEIGHT_THRESHOLD, pass_date=PASS, candidate=True)
    assert again["detection_id"].tolist() == sites["detection_id"].tolist()
    assert again.geometry.geom_equals(sites.geometry).all()
    assert sites["detection_id"].is_unique and sites["detection_id"].str.startswith("20240501-").all()
    later = extract_sites(lidar["probability"], threshold=HEIGHT_THRESHOLD, pass_date=date(2024, 6, 1),
                          candidate=False)
    assert not set(later["detection_id"]) & set(sites["detection_id"])
    assert sites["candidate"].all() and (sites["source_kind"] == "candidate").all()
    assert (sites["note"] == CANDIDATE_NOTE).all() and (sites["pass_date"] == "2024-05-01").all()
    assert not later["candidate"].any() and later["note"].isna().all()
    assert (later["source_kind"] == "validated_model").all()
    assert (sites["volume_note"] == NO_SURFACE_NOTE).all() and sites["volume_m3"].isna().all()


def test_commune_is_the_zone_overlapping_most(gers_sites: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> None:
    assert str(gers_sites.crs) == "EPSG:2154" and len(gers_sites) >= 20  # reprojected from EPSG:32630
    assert (gers_sites["pass_date"] == "2018-10-23T10:51:07Z").all()
    straddling = 0
    for _, site in gers_sites.iterrows():
        overlaps = {z.zone_name: site.geometry.intersection(z.geometry).area for z in zones.itertuples()}
        overlaps = {name: area for name, area in overlaps.items() if area > 0}
        straddling += len(overlaps) > 1
        assert site["commune_name"] == max(overlaps, key=overlaps.get)
        assert site["commune_code"] == zones.loc[zones["zone_name"] == site["commune_name"], "zone_id"].iloc[0]
    assert straddling >= 1 and gers_sites["commune_name"].nunique() >= 3


def test_sites_outside_every_zone_get_no_commune(gers_layer: Path, gers_sites: gpd.GeoDataFrame,
                                                  zones: gpd.GeoDataFrame) -> None:
    sabazan = zones[zones["zone_name"] == "Sabazan"]
    found = extract_sites(gers_layer, threshold=0.85, min_area_m2=500, pass_date=datetime(2018, 10, 23, 10, 51, 7),
                          candidate=True, zones=sabazan)
    inside = found.geometry.intersection(sabazan.geometry.iloc[0]).area > 0
    assert inside.any() and (~inside).any()
    assert (found.loc[inside, "commune_name"] == "Sabazan").all()
    assert found.loc[~inside, "commune_code"].isna().all()
    assert found["detection_id"].tolist() == gers_sites["detection_id"].tolist()


def test_class_layer_reprojected_to_lambert93() -> None:
    layer = DATA / "s2-l1c-slovenia" / "lulc_mask.tif"
    with rasterio.open(layer) as src:
        labels, transform = src.read(1), src.transform
    found = extract_sites(layer, class_value=8, min_area_m2=0, sieve_px=0, pass_date=PASS, candidate=True)
    pixel_area = abs(transform.a * transform.e)
    assert str(found.crs) == "EPSG:2154" and found["layer_kind"].eq("class 8").all()
    assert found["area_m2"].sum() == pytest.approx((labels == 8).sum() * pixel_area, rel=5e-3)
    assert len(found) == len(component_sizes(labels == 8, 1))
    assert found["mean_confidence"].isna().all() and found["max_confidence"].isna().all()
    assert found["commune_code"].isna().all()
    assert (found["centroid_lon"] > 13).all() and (found["centroid_lon"] < 17).all()  # still Slovenia
    none = extract_sites(layer, class_value=7, pass_date=PASS, candidate=True)
    assert none.empty and list(none.columns) == [*SITE_COLUMNS, *DETECTOR_COLUMNS, "geometry"]


def test_volumes_equal_a_direct_integration(lidar: dict[str, Path], sites: gpd.GeoDataFrame) -> None:
    rectangles = gpd.GeoDataFrame(  # hand-drawn, not aligned on the 0.5 m grid
        {"detection_id": ["rect-trees", "rect-roof", "rect-ground"]},
        geometry=[box(770500.3, 6277561.1, 770521.7, 6277575.9), box(770606.2, 6277551.3, 770640.9, 6277580.4),
                  box(770546.1, 6277530.2, 770556.6, 6277545.7)], crs="EPSG:2154")
    polygons = pd.concat([sites[["detection_id", "geometry"]], rectangles], ignore_index=True)
    measured = site_volumes(polygons, lidar["dsm"], lidar["dtm"])  # a handful of nodata pixels voids no volume
    assert measured["volume_m3"].notna().all() and measured["volume_note"].isna().all()
    dsm, transform = lidar_mosaic("DSM")
    dtm, _ = lidar_mosaic("DTM")
    nodata = (dsm == -9999) | (dtm == -9999)
    height = dsm.astype(np.float64) - dtm.astype(np.float64)
    computed = gappy = 0
    for _, row in measured.iterrows():
        inside = pixels_of(row.geometry, dsm.shape, transform)
        h = height[inside & ~nodata]
        assert row["height_max_m"] == pytest.approx(h.max()) and row["height_mean_m"] == pytest.approx(h.mean())
        assert row["valid_fraction"] == pytest.approx(h.size / inside.sum())
        if (inside & nodata).any():
            gappy += 1
            continue
        # the whole height of every pixel above 0.2 m, the threshold not subtracted
        assert row["volume_m3"] == pytest.approx(h[h > 0.2].sum() * PIXEL_AREA, rel=1e-9)
        assert row["volume_uncertainty_m3"] == pytest.approx(0.1 * (h > 0.2).sum() * PIXEL_AREA, rel=1e-9)
        computed += 1
    assert computed >= 12 and gappy >= 2
    by_id = measured.set_index("detection_id")
    assert by_id.at["rect-roof", "volume_m3"] > 1000
    assert by_id.at["rect-ground", "height_max_m"] < 0.2 and by_id.at["rect-ground", "volume_m3"] == 0  # bare ground


def test_min_height_boundary(lidar: dict[str, Path], sites: gpd.GeoDataFrame) -> None:
    site = sites.head(1)
    dsm, transform = lidar_mosaic("DSM")
    dtm, _ = lidar_mosaic("DTM")
    inside = pixels_of(site.geometry.iloc[0], dsm.shape, transform)
    h = (dsm.astype(np.float64) - dtm.astype(np.float64))[inside]
    cut = float(np.median(h))  # the exact height of a pixel of the site: that pixel does not exceed it
    at = site_volumes(site, lidar["dsm"], lidar["dtm"], min_height_m=cut).iloc[0]
    assert at["volume_m3"] == pytest.approx(h[h > cut].sum() * PIXEL_AREA, rel=1e-9)
    below = site_volumes(site, lidar["dsm"], lidar["dtm"], min_height_m=np.nextafter(cut, -1)).iloc[0]
    ties = h[h == cut]
    assert ties.size >= 1
    assert below["volume_m3"] - at["volume_m3"] == pytest.approx(ties.sum() * PIXEL_AREA, rel=1e-9)
    zero = site_volumes(site, lidar["dsm"], lidar["dtm"], min_height_m=0.0).iloc[0]
    assert zero["volume_m3"] == pytest.approx(h[h > 0].sum() * PIXEL_AREA, rel=1e-9)
    assert zero["height_max_m"] == at["height_max_m"]
    none = site_volumes(site, lidar["dsm"], lidar["dtm"], min_height_m=float(h.max())).iloc[0]
    assert none["volume_m3"] == 0 and none["volume_uncertainty_m3"] == 0


def test_a_gap_in_a_real_tile_stays_within_the_uncertainty(tmp_path: Path) -> None:
    """Nodata punched into a gap-free LiDAR HD tile: the volume moves by less than its stated uncertainty."""
    name = "test_data_77050_627760"  # no nodata pixel
    with rasterio.open(tile("DSM", name)) as src:
        dsm, profile, bounds = src.read(1), src.profile, src.bounds
    with rasterio.open(tile("DTM", name)) as src:
        dtm = src.read(1)
    assert not ((dsm == -9999) | (dtm == -9999)).any()
    site = gpd.GeoDataFrame({"detection_id": ["tile"]}, geometry=[box(*bounds)], crs="EPSG:2154")
    whole = site_volumes(site, tile("DSM", name), tile("DTM", name)).iloc[0]
    punched = dsm.copy()
    punched[40:46, 30:35] = -9999  # 30 px inside the tile
    punched[0:2, 80:100] = -9999  # 40 px on its edge
    punched[97:100, 0:3] = -9999  # a corner
    path = tmp_path / "dsm_gaps.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(punched, 1)
    gaps = site_volumes(site, path, tile("DTM", name)).iloc[0]
    assert gaps["valid_fraction"] == pytest.approx(1 - 79 / 10_000)
    assert pd.isna(gaps["volume_note"]) and gaps["volume_m3"] > 1000
    assert abs(gaps["volume_m3"] - whole["volume_m3"]) <= gaps["volume_uncertainty_m3"]
    assert gaps["volume_uncertainty_m3"] > whole["volume_uncertainty_m3"]  # the gaps add to the noise term
    mostly_gone = punched.copy()
    mostly_gone[:60] = -9999
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mostly_gone, 1)
    with pytest.warns(DiagnosticsWarning, match="nodata inside"):
        lost = site_volumes(site, path, tile("DTM", name)).iloc[0]
    assert math.isnan(lost["volume_m3"]) and lost["valid_fraction"] < 0.5


def test_models_not_covering_the_sites(sites: gpd.GeoDataFrame) -> None:
    with pytest.warns(DiagnosticsWarning, match="outside the surface/terrain model") as caught:
        measured = site_volumes(sites, tile("DSM", TILE_B), tile("DTM", TILE_B))
    ours = [w for w in caught if issubclass(w.category, DiagnosticsWarning)]
    assert len(ours) == 1
    tile_box = box(770600, 6277550, 770650, 6277600)
    overlap = sites.geometry.intersection(tile_box).area
    outside = overlap == 0
    partly = (overlap > 0) & ~sites.geometry.within(tile_box)
    assert outside.sum() >= 8 and partly.sum() >= 1
    assert (measured.loc[outside, "volume_note"] == "site outside the surface/terrain model").all()
    assert measured.loc[outside, "volume_m3"].isna().all()
    assert str(ours[0].message).count(sites.loc[outside, "detection_id"].iloc[0]) == 1
    # partly outside: the part beyond the edge is a gap like any other, null only when most of the site is missing
    share = overlap / sites.geometry.area
    for index in sites.index[partly]:
        row = measured.loc[index]
        assert row["valid_fraction"] == pytest.approx(share[index], abs=0.05)
        assert math.isnan(row["volume_m3"]) == (row["valid_fraction"] < 0.5)
    covered = measured[~outside & ~partly]
    assert covered["volume_m3"].notna().all() and len(covered) >= 2


def test_volume_inputs_refused(sites: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(GridMismatchError, match="same grid"):
        site_volumes(sites, tile("DSM", TILE_A), tile("DTM", TILE_B))
    with pytest.raises(InputNotFoundError, match="missing.tif"):
        site_volumes(sites, tmp_path / "missing.tif", tile("DTM", TILE_A))
    with pytest.raises(InvalidInputError, match="both"):
        site_volumes(sites, tile("DSM", TILE_A), None)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="min_height_m"):
            site_volumes(sites, tile("DSM", TILE_A), tile("DTM", TILE_A), min_height_m=bad)
    none = site_volumes(sites, None, None)
    assert none["volume_m3"].isna().all() and (none["volume_note"] == NO_SURFACE_NOTE).all()


def _write_without_crs(path: Path) -> None:
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.full((1, 4, 4), 200, np.uint8))


def test_extract_sites_refuses_bad_input(lidar: dict[str, Path], tmp_path: Path, zones: gpd.GeoDataFrame) -> None:
    with pytest.raises(InputNotFoundError, match="nothing.tif"):
        extract_sites(tmp_path / "nothing.tif", pass_date=PASS, candidate=True)
    with pytest.raises(InvalidInputError, match="threshold"):
        extract_sites(lidar["probability"], threshold=0, pass_date=PASS, candidate=True)
    with pytest.raises(InvalidInputError, match="class_value"):
        extract_sites(lidar["probability"], class_value=255, pass_date=PASS, candidate=True)
    with pytest.raises(InvalidInputError, match="pass_date"):
        extract_sites(lidar["probability"], pass_date="2024-05-01", candidate=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidRasterError, match="float32"):
        extract_sites(lidar["dsm"], pass_date=PASS, candidate=True)
    with pytest.raises(InvalidZonesError, match="zone_id"):
        extract_sites(lidar["probability"], threshold=0.2, pass_date=PASS, candidate=True,
                      zones=zones.rename(columns={"zone_id": "code"}))
    no_crs = tmp_path / "no_crs.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        _write_without_crs(no_crs)
    with pytest.raises(InvalidRasterError, match="no CRS"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        extract_sites(no_crs, pass_date=PASS, candidate=True)


def test_distances_to_sensitive_zones(gers_sites: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> None:
    # Stand-ins, no such layer ships: a commune polygon for Natura 2000, another commune's outline (a line) for a
    # water course, and the other communes for ZNIEFF; real IGN geometries, not real protected areas.
    natura = zones[zones["zone_name"] == "Sabazan"].rename(columns={"zone_name": "name"})
    water = gpd.GeoDataFrame({"name": ["outline of Aignan"]},
                             geometry=[zones.loc[zones["zone_name"] == "Aignan", "geometry"].iloc[0].boundary],
                             crs=zones.crs)
    znieff = zones[zones["zone_name"] != "Sabazan"]
    out = sensitive_zones(gers_sites, {"natura2000": natura, "water": water, "znieff": znieff})
    for _, site in out.iterrows():
        assert site["dist_natura2000_m"] == pytest.approx(site.geometry.distance(natura.geometry.iloc[0]), abs=1e-6)
        assert site["inside_natura2000"] == (site.geometry.distance(natura.geometry.iloc[0]) == 0)
        assert site["dist_water_m"] == pytest.approx(site.geometry.distance(water.geometry.iloc[0]), abs=1e-6)
        distances = {z.zone_name: site.geometry.distance(z.geometry) for z in znieff.itertuples()}
        assert site["dist_znieff_m"] == pytest.approx(min(distances.values()), abs=1e-6)
        assert distances[site["nearest_znieff"]] == pytest.approx(site["dist_znieff_m"], abs=1e-6)
    assert out["inside_natura2000"].any() and (~out["inside_natura2000"]).any()
    assert (out["dist_water_m"] > 0).any() and (out["nearest_water"] == "outline of Aignan").all()
    with pytest.raises(InvalidInputError, match="Natura 2000"):
        sensitive_zones(gers_sites, {"Natura 2000": natura})
    with pytest.raises(InvalidZonesError, match="name"):
        sensitive_zones(gers_sites, {"water": water.rename(columns={"name": "label"})})


def test_write_sites_three_formats(gers_sites: gpd.GeoDataFrame, tmp_path: Path) -> None:
    paths = write_sites(gers_sites, tmp_path / "out", "sites-2018-10-23")
    assert sorted(paths) == ["csv", "geojson", "gpkg"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
    geojson, gpkg = gpd.read_file(paths["geojson"]), gpd.read_file(paths["gpkg"])
    assert geojson.crs.to_epsg() == 4326 and gpkg.crs.to_epsg() == 2154
    assert gpkg["detection_id"].tolist() == gers_sites["detection_id"].tolist()
    assert gpkg["area_m2"].tolist() == pytest.approx(gers_sites["area_m2"].tolist())
    back = geojson.to_crs("EPSG:2154").geometry.centroid
    assert back.x.to_numpy() == pytest.approx(gers_sites["centroid_x_l93"].to_numpy(), abs=0.01)
    table = pd.read_csv(paths["csv"])
    assert "geometry" not in table.columns and len(table) == len(gers_sites)
    assert not table.astype(str).apply(lambda c: c.str.contains("POLYGON")).any().any()
    assert table["commune_name"].tolist() == gers_sites["commune_name"].tolist()
    assert table["centroid_x_l93"].tolist() == pytest.approx(gers_sites["centroid_x_l93"].tolist())
    assert (table["note"] == CANDIDATE_NOTE).all()
    with pytest.raises(InvalidInputError, match="stem"):
        write_sites(gers_sites, tmp_path, "a/b")
