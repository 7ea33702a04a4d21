"""Sensor radiometry and masks: Sentinel-2 L2A (Sen2Cor SCL, Theia/MAJA CLM/EDG/SAT) and Landsat Collection 2
Level-2 (surface reflectance, surface temperature, QA_PIXEL), loaded lazily with odc-stac by common band name."""

from geovigie.catalog.sensors._landsat import (
    QaOptions,
    landsat_asset,
    load_landsat,
    qa_clear,
    sr_to_reflectance,
    st_to_celsius,
)
from geovigie.catalog.sensors._sentinel2 import (
    MaskOptions,
    band_asset,
    clear_from_scl,
    clear_from_theia,
    load_s2,
    processor,
    reflectance_scaling,
)

__all__ = [
    "MaskOptions",
    "QaOptions",
    "band_asset",
    "clear_from_scl",
    "clear_from_theia",
    "landsat_asset",
    "load_landsat",
    "load_s2",
    "processor",
    "qa_clear",
    "reflectance_scaling",
    "sr_to_reflectance",
    "st_to_celsius",
]
