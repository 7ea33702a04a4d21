"""Urban heat islands on the shipped Münster Landsat LST scenes (°C) and a proxy on the shipped Gers Sentinel-2 bands.

The urban zone is `data/landsat-lst-muenster-extra/muenster_urban_core.geojson`: Münster's built-up core derived
from the source author's land-use map (see that folder's README), stored in EPSG:4326.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import Polygon, box

from geovigie.cog import write_array_cog
from geovigie.diagnostics._heat_island import (
    HOT_SPOT_CLASSES,
    heat_island_layer,
    heat_proxy_layer,
    hot_spot_classes,
    hot_spot_legend,
    rural_reference,
)
from geovigie.errors import (
    DiagnosticsWarning,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
    InvalidZonesError,
)

DATA = Path(__file__).resolve().parents[2] / "data"
SUMMER = DATA / "landsat-lst-muenster" / "LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10.TIF"
SPRING = DATA / "landsat-lst-muenster" / "LC09_L2SP_197024_20250511_20250513_02_T1_ST_B10.TIF"
EXTRA = DATA / "landsat-lst-muenster-extra"
URBAN = EXTRA / "muenster_urban_core.geojson"
LAND_COVER = EXTRA / "classification_rf_derived.tif"
RURAL = [3, 4]  # forest, field/meadow (evidence in EXTRA/README.md)
GERS = DATA / "s2-l2a-theia-gers"
GERS_STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"


@pytest.fixture(scope="module")
def urban_utm() -> gpd.GeoDataFrame:
    return gpd.read_file(URBAN).to_crs("EPSG:32632")


def read_lst(path: Path) -> tuple[np.ma.MaskedArray, rasterio.Affine]:
    with rasterio.open(path) as src:
        return src.read(1, masked=True), src.transform


def ring_pixels(urban: gpd.GeoDataFrame, shape: tuple[int, int], transform: rasterio.Affine) -> np.ndarray:
    """Pixels whose centre lies 1000-5000 m from the urban zone, rasterised by hand."""
    zone = urban.geometry.union_all()
    ring = zone.buffer(5000).difference(zone.buffer(1000))
    return rasterio.features.rasterize([(ring, 1)], out_shape=shape, transform=transform, fill=0).astype(bool)


def rural_share_by_hand(shape: tuple[int, int], transform: rasterio.Affine) -> np.ndarray:
    """Exact share of each 30 m LST pixel covered by classes 3/4 of the 10 m map, on a common 5 m sub-grid."""
    with rasterio.open(LAND_COVER) as src:
        rural = np.isin(src.read(1), RURAL).repeat(2, axis=0).repeat(2, axis=1)  # 5 m cells
        col0 = round((transform.c - src.transform.c) / 5)  # LST grid origin on the 5 m sub-grid
        row0 = round((src.transform.f - transform.f) / 5)
    pad = max(0, -col0)
    rural = np.pad(rural, ((0, 6), (pad, 6)))
    rows, cols = shape
    cells = rural[row0 : row0 + rows * 6, col0 + pad : col0 + pad + cols * 6]
    return cells.reshape(rows, 6, cols, 6).mean(axis=(1, 3))


def test_reference_without_filter_is_the_ring_median(urban_utm: gpd.GeoDataFrame) -> None:
    lst, transform = read_lst(SUMMER)
    ring = ring_pixels(urban_utm, lst.shape, transform) & ~lst.mask
    ref = rural_reference(SUMMER, urban_utm)
    assert ref.n_pixels == ring.sum()
    assert ref.value_c == pytest.approx(float(np.median(lst.data[ring])), abs=1e-5)
    assert "no land-cover filter" in ref.method and "1000-5000 m" in ref.method and SUMMER.stem in ref.method
    assert ref.crs == "EPSG:32632" and ref.ring.area == pytest.approx(ring.sum() * 900, rel=0.05)


@pytest.mark.parametrize("scene", [SUMMER, SPRING])
def test_reference_with_land_cover_filter(urban_utm: gpd.GeoDataFrame, scene: Path) -> None:
    lst, transform = read_lst(scene)
    ring = ring_pixels(urban_utm, lst.shape, transform) & ~lst.mask
    pure = rural_share_by_hand(lst.shape, transform) == 1.0
    ref = rural_reference(scene, urban_utm, rural_mask=LAND_COVER, rural_classes=RURAL)
    assert ref.n_pixels == (ring & pure).sum()
    assert ref.value_c == pytest.approx(float(np.median(lst.data[ring & pure])), abs=1e-5)
    assert "classes [3, 4] of classification_rf_derived.tif" in ref.method
    # vegetated ground is cooler than the whole ring, which holds villages and roads
    assert ref.value_c < rural_reference(scene, urban_utm).value_c - 0.5


def test_land_cover_classes_behave_as_documented() -> None:
    """Physical check of the class names in EXTRA/README.md: built-up hottest, forest and water coolest."""
    lst, transform = read_lst(SUMMER)
    medians = {}
    with rasterio.open(LAND_COVER) as src:
        classes = src.read(1)
        for value in (1, 2, 3, 4):
            share = np.zeros(lst.shape, "float32")
            reproject((classes == value).astype("float32"), share, src_transform=src.transform, src_crs=src.crs,
                      dst_transform=transform, dst_crs=src.crs, resampling=Resampling.average)
            medians[value] = float(np.ma.median(lst[share > 0.99]))
    # built-up (1) hottest, field/meadow (4) next, forest (3) and water (2) coolest, as in the author's boxplots
    assert medians[1] > medians[4] + 3 and medians[4] > medians[3] + 2 and medians[4] > medians[2] + 2


def test_zones_in_another_crs_are_reprojected(urban_utm: gpd.GeoDataFrame) -> None:
    urban_4326 = gpd.read_file(URBAN)
    assert urban_4326.crs.to_epsg() == 4326
    a = rural_reference(SPRING, urban_4326, rural_mask=LAND_COVER, rural_classes=RURAL)
    b = rural_reference(SPRING, urban_utm, rural_mask=LAND_COVER, rural_classes=RURAL)
    assert (a.n_pixels, a.value_c) == (b.n_pixels, b.value_c)
    assert a.ring.bounds[0] > 390_000 and a.urban.equals_exact(b.urban, tolerance=0.01)
    with pytest.raises(InvalidZonesError, match="does not overlap"):  # a bare geometry is taken in the raster CRS
        rural_reference(SPRING, urban_4326.geometry.iloc[0])


def test_intensity_is_lst_minus_reference(urban_utm: gpd.GeoDataFrame, tmp_path: Path) -> None:
    ref = rural_reference(SUMMER, urban_utm, rural_mask=LAND_COVER, rural_classes=RURAL)
    summary = heat_island_layer(SUMMER, ref, tmp_path / "intensity.tif")
    lst, transform = read_lst(SUMMER)
    with rasterio.open(summary.path) as src:
        out = src.read(1, masked=True)
        assert src.nodata == -9999 and src.dtypes[0] == "float32" and src.tags()["UNIT"] == "celsius"
        assert src.tags()["METHOD"] == summary.method and ref.method in summary.method
    assert cog_validate(str(summary.path))[0]
    assert np.array_equal(out.mask, lst.mask)
    assert np.allclose(out.compressed(), lst.compressed() - ref.value_c, atol=1e-4)
    inside = rasterio.features.geometry_mask(urban_utm.geometry, lst.shape, transform, invert=True) & ~lst.mask
    urban = lst.data[inside] - ref.value_c
    assert summary.urban_pixels == urban.size and summary.urban_area_ha == pytest.approx(urban.size * 0.09)
    assert summary.mean_intensity_c == pytest.approx(float(urban.mean()), abs=1e-4)
    assert summary.p90_intensity_c == pytest.approx(float(np.percentile(urban, 90)), abs=1e-4)
    by_hand = [(urban < 2).sum(), ((urban >= 2) & (urban < 4)).sum(), ((urban >= 4) & (urban < 6)).sum(),
               (urban >= 6).sum()]
    assert list(summary.class_pixels) == by_hand and sum(summary.class_shares) == pytest.approx(1.0)
    assert summary.table()["area_ha"].sum() == pytest.approx(summary.urban_area_ha)
    # an August afternoon: the city core is clearly warmer than the vegetated ring around it
    assert summary.mean_intensity_c > 2 and float(np.median(urban)) > 0


def test_hot_spot_classes_follow_thresholds(urban_utm: gpd.GeoDataFrame, tmp_path: Path) -> None:
    ref = rural_reference(SPRING, urban_utm)
    intensity = heat_island_layer(SPRING, ref, tmp_path / "intensity.tif").path
    with rasterio.open(intensity) as src:
        values = src.read(1, masked=True)
    for thresholds in [(2.0, 4.0, 6.0), (-1.0, 3.0)]:
        path = hot_spot_classes(intensity, tmp_path / f"hot_{len(thresholds)}.tif", thresholds)
        expected = sum((values.data >= t).astype("uint8") for t in thresholds)
        with rasterio.open(path) as src:
            classes = src.read(1)
            legend = hot_spot_legend(thresholds)
            assert src.nodata == 255 and json.loads(src.tags()["GEOVIGIE_CLASSES"]) == [
                {"value": c.value, "name": c.name, "color": c.color} for c in legend]
            assert all(src.colormap(1)[c.value] == c.rgba for c in legend)
        assert np.array_equal(classes[~values.mask], expected[~values.mask])
        assert (classes[values.mask] == 255).all() and values.mask.any()
    assert [c.name for c in HOT_SPOT_CLASSES] == ["below +2 °C", "+2 to +4 °C", "+4 to +6 °C", "+6 °C and above"]


def test_empty_ring_is_an_error(tmp_path: Path) -> None:
    area = gpd.read_file(EXTRA / "project_area.shp")  # the whole scene: its ring lies entirely off the raster
    with pytest.raises(InvalidZonesError, match="no valid pixel in the 1000-5000 m ring"):
        rural_reference(SUMMER, area)
    small = gpd.GeoDataFrame(geometry=[box(405_000, 5_755_000, 406_000, 5_756_000)], crs="EPSG:32632")
    with pytest.raises(InvalidZonesError, match=r"land-cover classes \[9\]"):
        rural_reference(SUMMER, small, rural_mask=LAND_COVER, rural_classes=[9])


def test_bad_inputs_are_refused(urban_utm: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="inner < outer"):
        rural_reference(SUMMER, urban_utm, ring_inner_m=5000, ring_outer_m=1000)
    with pytest.raises(InvalidInputError, match="go together"):
        rural_reference(SUMMER, urban_utm, rural_mask=LAND_COVER)
    with pytest.raises(InputNotFoundError, match="missing.tif"):
        rural_reference(tmp_path / "missing.tif", urban_utm)
    with pytest.raises(InvalidZonesError, match="no CRS"):
        rural_reference(SUMMER, gpd.GeoDataFrame(geometry=list(urban_utm.geometry)))
    lst, transform = read_lst(SUMMER)  # the same scene as raw ST_B10 numbers
    raw = ((lst.filled(0) + 273.15 - 149.0) / 0.00341802).astype("uint16")[None]
    write_array_cog(tmp_path / "raw.tif", raw, profile={"driver": "GTiff", "crs": "EPSG:32632",
                                                        "transform": transform, "nodata": 0})
    with pytest.raises(InvalidRasterError, match="raw ST_B10"):
        rural_reference(tmp_path / "raw.tif", urban_utm)
    ref = rural_reference(SUMMER, urban_utm)
    with pytest.raises(InvalidInputError, match="increase"):
        heat_island_layer(SUMMER, ref, tmp_path / "x.tif", hot_spot_thresholds_c=(4, 2))
    with pytest.raises(InvalidZonesError, match="no valid pixel in the urban zone"):
        heat_island_layer(SUMMER, replace(ref, urban=box(0, 0, 10, 10)), tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()


def test_doubtful_inputs_warn(urban_utm: gpd.GeoDataFrame, tmp_path: Path) -> None:
    corner = gpd.GeoDataFrame(geometry=[box(396_800, 5_762_300, 397_800, 5_763_300)], crs="EPSG:32632")
    with pytest.warns(DiagnosticsWarning, match="only .* of the rural ring lies on valid pixels"):
        rural_reference(SUMMER, corner)
    bowtie = Polygon([(405_000, 5_755_000), (406_000, 5_756_000), (406_000, 5_755_000), (405_000, 5_756_000)])
    with pytest.warns(DiagnosticsWarning, match="repaired"):
        assert rural_reference(SUMMER, bowtie).n_pixels > 0
    ref = rural_reference(SUMMER, urban_utm)
    with pytest.warns(DiagnosticsWarning, match="rural reference of another raster"):
        heat_island_layer(SPRING, ref, tmp_path / "mixed.tif")


def gers_ndvi(tmp_path: Path) -> tuple[Path, np.ma.MaskedArray]:
    """NDVI of the shipped Gers scene: reflectance = DN / 10000, cloud (CLM) and edge (EDG) pixels masked."""
    with rasterio.open(GERS / f"{GERS_STEM}_FRE_B4.tif") as src:
        red, profile = src.read(1) / 10000, src.profile
    with rasterio.open(GERS / f"{GERS_STEM}_FRE_B8.tif") as src:
        nir = src.read(1) / 10000
    masked = (red <= 0) | (nir <= 0)
    for mask in ("CLM", "EDG"):
        with rasterio.open(GERS / "MASKS" / f"{GERS_STEM}_{mask}_R1.tif") as src:
            masked |= src.read(1) != 0
    ndvi = np.ma.masked_array((nir - red) / np.where(masked, 1, nir + red), mask=masked).astype("float32")
    path = write_array_cog(tmp_path / "ndvi.tif", ndvi.filled(-9999)[None],
                           profile={"driver": "GTiff", "crs": profile["crs"], "transform": profile["transform"],
                                    "nodata": -9999.0})
    return path, ndvi


def test_heat_proxy_on_real_ndvi(tmp_path: Path) -> None:
    ndvi_path, ndvi = gers_ndvi(tmp_path)
    assert 0 < ndvi.mask.mean() < 0.5  # the scene's cumulus and shadow are masked, most pixels are clear
    summary = heat_proxy_layer(ndvi_path, None, tmp_path / "proxy.tif")
    with rasterio.open(summary.path) as src:
        proxy = src.read(1, masked=True)
        tags, description = src.tags(), src.descriptions[0]
    assert "proxy" in description and "°C" not in description and tags["GEOVIGIE_PROXY"] == "true"
    assert tags["UNIT"] == "unitless" and "PROXY" in summary.method and "not a temperature" in summary.method
    assert np.array_equal(proxy.mask, ndvi.mask)
    expected = 1 - np.clip(ndvi.compressed(), 0, 1)
    assert np.allclose(proxy.compressed(), expected, atol=1e-6)
    assert summary.valid_pixels == expected.size and summary.mean == pytest.approx(float(expected.mean()), abs=1e-5)
    assert summary.p90 == pytest.approx(float(np.percentile(expected, 90)), abs=0.01)
    with pytest.raises(InvalidRasterError, match="proxy"):  # °C thresholds never apply to a proxy
        hot_spot_classes(summary.path, tmp_path / "hot.tif")
    assert not (tmp_path / "hot.tif").exists()


def test_heat_proxy_with_impervious_fraction_on_another_grid(tmp_path: Path) -> None:
    ndvi_path, ndvi = gers_ndvi(tmp_path)
    with rasterio.open(ndvi_path) as src:
        crs, transform = src.crs, src.transform
    fraction = np.full((400, 400), 0.25, "float32")  # 20 m cells, each covering 2 x 2 NDVI pixels
    fraction[100:180, 150:260] = 1.0  # a hand-made sealed block
    coarse = transform * rasterio.Affine.scale(2)
    write_array_cog(tmp_path / "imp.tif", fraction[None], profile={"driver": "GTiff", "crs": crs,
                                                                   "transform": coarse, "nodata": -1.0})
    summary = heat_proxy_layer(ndvi_path, tmp_path / "imp.tif", tmp_path / "proxy.tif", impervious_weight=0.6)
    with rasterio.open(summary.path) as src:
        proxy = src.read(1, masked=True)
    fine = fraction.repeat(2, axis=0).repeat(2, axis=1)
    expected = 0.6 * fine + 0.4 * (1 - np.clip(ndvi.data, 0, 1))
    assert np.allclose(proxy.compressed(), expected[~ndvi.mask], atol=1e-5)
    assert "0.6 × impervious fraction" in summary.method
    write_array_cog(tmp_path / "percent.tif", (fraction * 100)[None],
                    profile={"driver": "GTiff", "crs": crs, "transform": coarse, "nodata": -1.0})
    with pytest.raises(InvalidRasterError, match="percent"):
        heat_proxy_layer(ndvi_path, tmp_path / "percent.tif", tmp_path / "bad.tif")
    assert not (tmp_path / "bad.tif").exists()
