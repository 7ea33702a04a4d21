"""NDVI from Sentinel-2 L2A items, clouds and shadows masked from the product's own mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.windows import Window

from geovigie.catalog.imagery import load_items
from geovigie.cog import cog_writer
from geovigie.errors import BandMismatchError, InvalidRasterError
from geovigie.types import LAMBERT93

NDVI_NODATA = -9999.0


@dataclass(frozen=True)
class NdviSummary:
    """What an NDVI layer holds."""

    path: Path
    pixels: int
    clear_pixels: int
    mean_ndvi: float
    crs: str
    resolution: float

    @property
    def masked_fraction(self) -> float:
        """Share of pixels masked (cloud, shadow, edge or no data)."""
        return 1 - self.clear_pixels / self.pixels if self.pixels else 0.0


def ndvi_layer(
    items: Sequence[pystac.Item],
    out_path: str | Path,
    *,
    crs: str = LAMBERT93,
    resolution: float = 10.0,
    red: str = "B04",
    nir: str = "B08",
    masks: Sequence[str] = ("CLM", "EDG"),
    chunk: int = 1024,
) -> NdviSummary:
    """Write the mean NDVI of the clear observations of `items` as a float32 COG on a `crs` grid.

    A pixel is clear in an item when every mask asset in `masks` is 0 (Theia CLM: cloud and
    shadow bits; EDG: outside the swath) and both reflectances are positive.

    Raises:
        BandMismatchError: an item lacks the red, NIR or a mask asset.
    """
    for item in items:
        missing = [k for k in (red, nir, *masks) if k not in item.assets]
        if missing:
            raise BandMismatchError(f"item {item.id}: assets {missing} missing for NDVI (has {sorted(item.assets)})")
    ds = load_items(items, [red, nir, *masks], crs=crs, resolution=resolution,
                    chunks={"x": chunk, "y": chunk}, groupby="solar_day")
    r = ds[red].astype("float32")
    n = ds[nir].astype("float32")
    clear = (r > 0) & (n > 0)
    for mask in masks:
        clear = clear & (ds[mask] == 0)
    ndvi = (n - r).where(clear) / (n + r).where(clear)  # NaN, not 0/0 warnings, where masked
    mean = ndvi.mean(dim="time", skipna=True).fillna(NDVI_NODATA).astype("float32")
    geobox = ds.odc.geobox
    height, width = mean.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
               "crs": str(geobox.crs), "transform": geobox.affine, "nodata": NDVI_NODATA}
    clear_pixels, ndvi_sum = 0, 0.0
    data = mean.data
    with cog_writer(out_path, profile=profile, band_descriptions=["ndvi"], overview_resampling="average",
                    tags={"GEOVIGIE_INPUTS": ",".join(i.id for i in items)}) as dst:
        row = 0
        for row_chunk in data.chunks[0]:
            col = 0
            for col_chunk in data.chunks[1]:
                block = np.asarray(data[row : row + row_chunk, col : col + col_chunk].compute())
                good = block != NDVI_NODATA
                clear_pixels += int(good.sum())
                ndvi_sum += float(block[good].sum())
                dst.write(block[None], window=Window(col, row, col_chunk, row_chunk))
                col += col_chunk
            row += row_chunk
    return NdviSummary(Path(out_path), width * height, clear_pixels,
                       ndvi_sum / clear_pixels if clear_pixels else float("nan"), str(geobox.crs), resolution)


def check_ndvi_layer(path: str | Path) -> None:
    """Refuse a layer that is not an NDVI: several bands, integer classes, a unit (°C), values outside [-1, 1].

    Raises:
        InvalidRasterError: what the layer is instead, naming it.
    """
    with rasterio.open(path) as src:
        unit = src.tags().get("UNIT") or (src.units[0] if src.units else None)
        if src.count != 1:
            raise InvalidRasterError(f"{path}: {src.count} bands; an NDVI layer has one")
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
            raise InvalidRasterError(f"{path}: {src.dtypes[0]} values (a class map?); vegetation needs an NDVI layer")
        if unit and unit.lower() not in ("", "unitless", "ndvi", "1"):
            raise InvalidRasterError(f"{path}: values in {unit}; vegetation needs an NDVI layer (-1 to 1)")
        factor = max(1, int(np.sqrt(src.width * src.height / 1_000_000)))
        sample = src.read(1, masked=True, out_shape=(max(1, src.height // factor), max(1, src.width // factor)))
    values = np.ma.masked_invalid(sample).compressed()
    if values.size and (values.min() < -1.0001 or values.max() > 1.0001):
        raise InvalidRasterError(f"{path}: values {float(values.min()):g} to {float(values.max()):g}; an NDVI lies "
                                 "in [-1, 1]")
