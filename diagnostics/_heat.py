"""Land surface temperature layers (°C) from Landsat Collection 2 Level-2 thermal products."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio

from geovigie.cog import cog_writer, iter_windows
from geovigie.errors import BandMismatchError, InvalidRasterError

LST_NODATA = -9999.0
ST_B10_SCALE, ST_B10_OFFSET = 0.00341802, 149.0  # Collection 2 L2: kelvin = DN * scale + offset


@dataclass(frozen=True)
class TemperatureSummary:
    """Statistics of a temperature layer, °C."""

    path: Path
    valid_pixels: int
    p02: float
    mean: float
    p98: float


def _to_celsius(block: np.ma.MaskedArray, unit: str | None, dtype: str) -> Any:
    if unit in ("celsius", "°C", "degC"):
        return block.astype("float32")
    if unit in ("kelvin", "K"):
        return block.astype("float32") - 273.15
    if dtype == "uint16":  # raw ST_B10 digital numbers
        return block.astype("float32") * ST_B10_SCALE + ST_B10_OFFSET - 273.15
    raise InvalidRasterError(
        f"temperature unit unknown ({unit!r}, {dtype}): set raster:bands unit to celsius or kelvin "
        "(--unit celsius|kelvin for a GeoTIFF)"
    )


def temperature_layer(item: pystac.Item, out_path: str | Path, *, asset: str = "lst") -> TemperatureSummary:
    """Write the item's surface temperature as a float32 °C COG in its own grid, window by window.

    Raises:
        BandMismatchError: the item has no `asset`.
        InvalidRasterError: the unit cannot be told.
    """
    if asset not in item.assets:
        raise BandMismatchError(f"item {item.id}: no {asset!r} asset (has {sorted(item.assets)})")
    bands = item.assets[asset].extra_fields.get("raster:bands") or [{}]
    unit = bands[0].get("unit")
    values: list[np.ndarray] = []
    count = 0
    with rasterio.open(item.assets[asset].get_absolute_href()) as src:
        if src.crs is None:
            raise InvalidRasterError(f"{src.name}: raster has no CRS")
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "float32",
                   "crs": src.crs, "transform": src.transform, "nodata": LST_NODATA}
        with cog_writer(out_path, profile=profile, band_descriptions=["lst_celsius"],
                        overview_resampling="average", tags={"GEOVIGIE_INPUTS": item.id, "UNIT": "celsius"}) as dst:
            for window in iter_windows(src.width, src.height):
                block = _to_celsius(src.read(1, window=window, masked=True), unit, src.dtypes[0])
                good = block.compressed()
                count += good.size
                # a systematic sample keeps the percentile computation bounded in memory
                values.append(good[:: max(1, good.size // 20000)])
                dst.write(block.filled(LST_NODATA)[None], window=window)
    sample = np.concatenate(values) if values else np.array([np.nan])
    return TemperatureSummary(Path(out_path), count, float(np.percentile(sample, 2)), float(sample.mean()),
                              float(np.percentile(sample, 98)))
