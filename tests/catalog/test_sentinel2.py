"""Sentinel-2 L2A from both processors: Theia on the shipped Gers scene, Sen2Cor on the fixture built from it."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.windows import Window

from geovigie.catalog.imagery import median_composite, require_clear, s2_composite
from geovigie.catalog.sensors import (
    MaskOptions,
    band_asset,
    clear_from_scl,
    clear_from_theia,
    load_s2,
    processor,
    reflectance_scaling,
)
from geovigie.catalog.stac import CatalogClient
from geovigie.errors import BandMismatchError, EmptyInputError
from tests.conftest import DATA, GERS_DIR

FIXTURE = DATA / "sen2cor-fixture-gers"
STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"
ROW, COL, SIZE = 240, 120, 200  # the fixture's window in the shipped Theia grid (its README)


@pytest.fixture(scope="module")
def theia(catalog_dir: Path) -> pystac.Item:
    return CatalogClient.open(catalog_dir).search(collections=["s2-l2a-theia-gers"]).item_list()[0]


@pytest.fixture
def sen2cor() -> pystac.Item:
    return pystac.Item.from_file(str(FIXTURE / "item.json"))


def _read(path: Path, window: Window | None = None) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, window=window)


def _geobox(path: Path, window: Window | None = None) -> GeoBox:
    with rasterio.open(path) as src:
        transform = src.window_transform(window) if window is not None else src.transform
        shape = (int(window.height), int(window.width)) if window is not None else src.shape
        return GeoBox(shape, transform, src.crs.to_wkt())


FIXTURE_WINDOW = Window(COL, ROW, SIZE, SIZE)
THEIA_RED = GERS_DIR / f"{STEM}_FRE_B4.tif"
CLM = GERS_DIR / "MASKS" / f"{STEM}_CLM_R1.tif"


def test_processors_and_scaling(theia: pystac.Item, sen2cor: pystac.Item) -> None:
    assert processor(theia) == "theia" and processor(sen2cor) == "sen2cor"
    assert reflectance_scaling(theia, "B04") == (1e-4, 0.0)  # MAJA never offsets, even after 2022
    assert reflectance_scaling(sen2cor, "B04") == pytest.approx((1e-4, -0.1))  # baseline 05.10


@pytest.mark.parametrize(("change", "offset"), [
    ({"s2:processing_baseline": "02.09"}, 0.0),
    ({"s2:processing_baseline": "04.00"}, -0.1),
    ({"s2:processing_baseline": None, "datetime": "2022-01-24T10:00:00Z"}, 0.0),
    ({"s2:processing_baseline": None, "datetime": "2022-01-25T10:00:00Z"}, -0.1),
    ({"earthsearch:boa_offset_applied": True}, 0.0),
])
def test_offset_rules(sen2cor: pystac.Item, change: dict, offset: float) -> None:
    payload = sen2cor.to_dict()
    for key, value in change.items():
        if value is None:
            payload["properties"].pop(key, None)
        else:
            payload["properties"][key] = value
    item = pystac.Item.from_dict(payload)
    assert reflectance_scaling(item, "B04") == pytest.approx((1e-4, offset))


def test_declared_raster_offset_wins(sen2cor: pystac.Item) -> None:
    item = sen2cor.clone()
    item.properties["s2:processing_baseline"] = "02.09"  # would mean no offset: the declared one is used
    item.assets["B04"].extra_fields["raster:bands"] = [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]
    assert reflectance_scaling(item, "B04") == pytest.approx((1e-4, -0.1))


def test_band_selection_by_common_name_whatever_the_naming(theia: pystac.Item, sen2cor: pystac.Item) -> None:
    assert [band_asset(theia, b) for b in ("red", "nir", "nir08", "swir16", "B4", "b8a")] == \
        ["B04", "B08", "B8A", "B11", "B04", "B8A"]
    assert band_asset(sen2cor, "nir") == "B08" and band_asset(sen2cor, "scl") == "SCL"
    earth_search = sen2cor.clone()  # Earth Search keys assets by common name
    earth_search.assets = {{"B04": "red", "B08": "nir", "SCL": "scl"}.get(k, k): a for k, a in sen2cor.assets.items()}
    assert band_asset(earth_search, "B04") == "red" and band_asset(earth_search, "nir") == "nir"
    assert processor(earth_search) == "sen2cor"
    by_eo = sen2cor.clone()  # only eo:bands tells which asset is which
    by_eo.assets = {f"asset{i}": a for i, a in enumerate(sen2cor.assets.values())}
    assert by_eo.assets[band_asset(by_eo, "red")].href.endswith("_B04_10m.tif")
    with pytest.raises(BandMismatchError, match="no band 'rededge1' \\(common name of B05\\); assets: B02"):
        band_asset(sen2cor, "rededge1")
    no_mask = sen2cor.clone()
    del no_mask.assets["SCL"]
    with pytest.raises(BandMismatchError, match="no SCL \\(Sen2Cor\\) nor CLM"):
        processor(no_mask)


def test_scl_classes_masked() -> None:
    scl = np.arange(12, dtype=np.float32)
    assert np.flatnonzero(~clear_from_scl(scl)).tolist() == [0, 1, 3, 8, 9, 10, 11]
    assert np.flatnonzero(~clear_from_scl(scl, MaskOptions(shadow=False, snow=False))).tolist() == [0, 1, 8, 9, 10]
    assert not clear_from_scl(np.array([np.nan]))[0]


def test_theia_bits_masked() -> None:
    clm = np.array([0, 1, 2, 8, 11, 16, 32, 64, 128], dtype=np.float32)
    assert clear_from_theia(clm).tolist() == [True] + [False] * 8
    no_cirrus = clear_from_theia(clm, options=MaskOptions(cirrus=False))
    assert no_cirrus.tolist() == [True, False, False, False, False, True, False, False, False]
    only_clouds = clear_from_theia(clm, options=MaskOptions(shadow=False, cirrus=False))
    assert only_clouds.tolist() == [True, True, False, False, False, True, True, True, False]
    edg = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert not clear_from_theia(np.zeros(9), edg=edg)[-1]
    mg2 = np.full(9, 4)  # MG2 bit 2: snow
    assert not clear_from_theia(np.zeros(9), mg2=mg2).any()
    assert clear_from_theia(np.zeros(9), mg2=mg2, options=MaskOptions(snow=False)).all()


def test_theia_reflectance_and_masks_on_the_gers_scene(theia: pystac.Item) -> None:
    data = load_s2([theia], ["red", "nir"], geobox=_geobox(THEIA_RED)).isel(time=0).compute()
    fre, clm = _read(THEIA_RED), _read(CLM)
    red = data["red"].values
    assert red.dtype == np.float32
    assert np.array_equal(np.isnan(red), clm != 0)  # exactly the cumulus and its shadow
    assert int((clm != 0).sum()) == 6688
    np.testing.assert_allclose(red[clm == 0], fre[clm == 0] / 10000, rtol=1e-6)
    assert np.array_equal(data["clear"].values, clm == 0)


def test_sen2cor_fixture_offset_removed_and_scl_masked(theia: pystac.Item, sen2cor: pystac.Item) -> None:
    grid = _geobox(FIXTURE / "T30TYP_20181023T105107_B04_10m.tif")
    s2c = load_s2([sen2cor], ["red", "nir"], geobox=grid).isel(time=0).compute()
    ref = load_s2([theia], ["red", "nir"], geobox=grid).isel(time=0).compute()
    clm = _read(CLM, FIXTURE_WINDOW)
    cloudy_blocks = (clm.reshape(100, 2, 100, 2) != 0).any(axis=(1, 3)).repeat(2, 0).repeat(2, 1)
    assert np.array_equal(~s2c["clear"].values, cloudy_blocks)  # SCL at 20 m, nearest onto 10 m
    assert cloudy_blocks.sum() > (clm != 0).sum() > 1000
    both = s2c["clear"].values & ref["clear"].values
    for band in ("red", "nir"):
        np.testing.assert_allclose(s2c[band].values[both], ref[band].values[both], atol=1e-6)
    raw = _read(FIXTURE / "T30TYP_20181023T105107_B04_10m.tif").astype(float) / 10000
    assert np.nanmean(raw[both]) - np.nanmean(ref["red"].values[both]) == pytest.approx(0.1, abs=1e-6)


def test_without_the_offset_rule_reflectance_is_shifted(theia: pystac.Item, sen2cor: pystac.Item) -> None:
    legacy = pystac.Item.from_dict(copy.deepcopy(sen2cor.to_dict()))
    legacy.properties["s2:processing_baseline"] = "02.09"  # wrongly declared: DNs read as if never offset
    for key in ("B04", "SCL"):
        legacy.assets[key].href = str(FIXTURE / Path(legacy.assets[key].href).name)
    grid = _geobox(FIXTURE / "T30TYP_20181023T105107_B04_10m.tif")
    wrong = load_s2([legacy], ["red"], geobox=grid)["red"].isel(time=0).values
    right = load_s2([sen2cor], ["red"], geobox=grid)["red"].isel(time=0).values
    assert np.array_equal(np.isnan(wrong), np.isnan(right)) and not np.isnan(right).all()
    np.testing.assert_allclose((wrong - right)[~np.isnan(right)], 0.1, atol=1e-6)


def test_median_composite_of_both_processors_lazy(theia: pystac.Item, sen2cor: pystac.Item) -> None:
    composite = s2_composite([theia, sen2cor], ["red", "nir"], bbox=sen2cor.bbox, freq="1MS")
    assert composite["red"].chunks is not None  # lazy until computed
    assert composite["red"].odc.crs.epsg == 2154 and composite["red"].odc.geobox.resolution.x == 10
    done = require_clear(composite).isel(time=0)
    count = done["clear_count"].values
    assert set(np.unique(count)) == {0, 1, 2}
    red = done["red"].values
    assert np.isnan(red[count == 0]).all() and not np.isnan(red[count > 0]).any()
    assert 0.01 < float(np.nanmedian(red)) < 0.2  # October farmland red reflectance, offset removed


def test_all_masked_composite_is_a_clear_error(sen2cor: pystac.Item) -> None:
    clm = _read(CLM)
    rows, cols = np.nonzero(clm)
    window = Window(int(np.median(cols)) - 4, int(np.median(rows)) - 4, 8, 8)
    assert (clm[window.row_off:window.row_off + 8, window.col_off:window.col_off + 8] != 0).all()
    data = load_s2([sen2cor], ["red"], geobox=_geobox(CLM, window))
    with pytest.raises(EmptyInputError, match="every pixel of the composite is masked"):
        require_clear(median_composite(data))
