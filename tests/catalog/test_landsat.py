"""Landsat C2 L2 scaling on known values, QA_PIXEL bits, and the loader on the shipped Münster scene re-encoded.

No QA_PIXEL or raw ST_B10 digital numbers ship (data/landsat-lst-muenster holds the author's °C conversion only),
so the loader test encodes the real °C values back into C2 L2 digital numbers and builds a QA_PIXEL from the
documented bit layout: fill where the scene has no data, "clear" elsewhere, and a block flagged cloud.
"""

from __future__ import annotations

import numpy as np
import pystac
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.warp import transform_bounds

from geovigie.catalog.sensors import QaOptions, landsat_asset, load_landsat, qa_clear, sr_to_reflectance, st_to_celsius
from geovigie.errors import BandMismatchError
from tests.conftest import DATA

SCENE = DATA / "landsat-lst-muenster" / "LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10.TIF"
CLEAR_LAND, CLEAR_WATER, HIGH_CLOUD, FILL = 21824, 21952, 22280, 1
"""QA_PIXEL values from the bit layout: 21824 = clear (bit 6) + low confidences (bits 8, 10, 12, 14);
21952 = that + water (bit 7); 22280 = cloud (bit 3) + high cloud confidence (bits 8-9) + low others; 1 = fill."""


def test_surface_temperature_scaling_known_values() -> None:
    # 44177 × 0.00341802 + 149.0 = 299.99786954 K (exact decimal arithmetic) = 26.84786954 °C
    np.testing.assert_allclose(st_to_celsius(np.array([44177, 0, 29871, 65535])),
                               [26.84786954, np.nan, -22.05032458, 99.84994070], atol=1e-8)


def test_reflectance_scaling_known_values() -> None:
    np.testing.assert_allclose(sr_to_reflectance(np.array([7273, 10000, 0, 43636])),
                               [7273 * 2.75e-5 - 0.2, 0.075, np.nan, 43636 * 2.75e-5 - 0.2])
    assert sr_to_reflectance(np.array([7273]))[0] == pytest.approx(0.0000075)


def test_qa_pixel_bits() -> None:
    qa = np.array([CLEAR_LAND, CLEAR_WATER, HIGH_CLOUD, FILL, 1 << 1, 1 << 2, 1 << 4, 1 << 5], dtype=np.uint16)
    assert qa_clear(qa).tolist() == [True, True, False, False, False, False, False, False]
    assert qa_clear(qa, QaOptions(cirrus=False, snow=False)).tolist() == \
        [True, True, False, False, False, True, False, True]
    assert not qa_clear(np.array([np.nan]))[0]


@pytest.fixture(scope="module")
def encoded_item(tmp_path_factory: pytest.TempPathFactory) -> tuple[pystac.Item, np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("landsat")
    with rasterio.open(SCENE) as src:
        celsius, profile = src.read(1), src.profile
        bounds = src.bounds
    nodata = celsius == -9999
    dn = np.where(nodata, 0, np.round((celsius + 273.15 - 149.0) / 0.00341802)).astype(np.uint16)
    qa = np.where(nodata, FILL, CLEAR_LAND).astype(np.uint16)
    qa[100:150, 200:260] = HIGH_CLOUD
    stem = SCENE.name.removesuffix("_ST_B10.TIF")
    for suffix, array in (("ST_B10", dn), ("QA_PIXEL", qa)):
        with rasterio.open(folder / f"{stem}_{suffix}.TIF", "w", **{**profile, "dtype": "uint16", "nodata": None}) as d:
            d.write(array, 1)
    west, south, east, north = transform_bounds(profile["crs"], "EPSG:4326", *bounds)
    footprint = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                     [west, south]]]}
    item = pystac.Item(stem, footprint, [west, south, east, north], datetime=None,
                       properties={"start_datetime": "2024-08-13T00:00:00Z", "end_datetime": "2024-08-13T23:59:59Z"})
    for suffix in ("ST_B10", "QA_PIXEL"):  # USGS file names as keys: found by name, like the STAC APIs' keys
        item.add_asset(suffix.lower() if suffix == "QA_PIXEL" else "lwir", pystac.Asset(
            str(folder / f"{stem}_{suffix}.TIF"), media_type=pystac.MediaType.GEOTIFF,
            extra_fields={"proj:code": "EPSG:32632", "proj:shape": list(celsius.shape),
                          "proj:transform": list(profile["transform"])[:6]}))
    return item, celsius, nodata


def test_loader_recovers_celsius_and_masks(encoded_item: tuple[pystac.Item, np.ndarray, np.ndarray]) -> None:
    item, celsius, nodata = encoded_item
    assert landsat_asset(item, "lwir11") == "lwir" and landsat_asset(item, "ST_B10") == "lwir"
    with rasterio.open(SCENE) as src:
        grid = GeoBox(src.shape, src.transform, src.crs.to_wkt())
    data = load_landsat([item], ["lwir11"], geobox=grid, groupby=None).isel(time=0).compute()
    lst = data["lwir11"].values
    masked = nodata.copy()
    masked[100:150, 200:260] = True
    assert np.array_equal(np.isnan(lst), masked)
    np.testing.assert_allclose(lst[~masked], celsius[~masked], atol=0.00341802 / 2 + 1e-4)
    assert 30 < float(np.nanmedian(lst)) < 45  # the author's summer scene (median about 38 °C)


def test_missing_band_is_named(encoded_item: tuple[pystac.Item, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(BandMismatchError, match="no band 'red' \\(SR_B4\\)"):
        landsat_asset(encoded_item[0], "red")

