"""Per-period median composites of masked imagery on a chosen grid (EPSG:2154 at 10 m by default), lazy (dask)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pystac
import xarray as xr

from geovigie.catalog.sensors import MaskOptions, load_s2
from geovigie.errors import EmptyInputError, InvalidInputError
from geovigie.types import LAMBERT93


def median_composite(data: xr.Dataset, freq: str | None = None) -> xr.Dataset:
    """Median of each variable over time, per period (`freq`, a pandas offset such as `1MS`, `QS`, `7D`) or over
    the whole series (None). NaN (masked) pixels are skipped. Adds `clear_count`: clear observations per pixel.

    Nothing is computed: the result is as lazy as `data`.

    Raises:
        InvalidInputError: `freq` is not a pandas offset alias.
    """
    values = [v for v in data.data_vars if v != "clear" and data[v].dtype.kind == "f"]
    if not values:
        raise InvalidInputError("nothing to composite: no floating-point band in the data")
    series = data[values].chunk({"time": -1})
    first = series[values[0]]
    if freq is None:
        out = series.median("time", skipna=True)
        out["clear_count"] = first.notnull().sum("time").astype("int16")
        return out.expand_dims(time=[first.time.values.min()])
    try:
        grouped = series.resample(time=freq)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(f"composite period {freq!r} is not a pandas offset alias (1MS, QS, 7D...)") from err
    out = grouped.median(skipna=True)
    out["clear_count"] = first.notnull().resample(time=freq).sum().astype("int16")
    return out


def s2_composite(items: Sequence[pystac.Item], bands: Sequence[str], *, freq: str | None = None,
                 crs: str = LAMBERT93, resolution: float = 10.0, bbox: Sequence[float] | None = None,
                 geopolygon: Any = None, geobox: Any = None, chunks: dict[str, int] | None = None,
                 mask: MaskOptions = MaskOptions(), patch_url: Callable[[str], str] | None = None) -> xr.Dataset:
    """Masked Sentinel-2 L2A reflectance (Sen2Cor or Theia, offsets removed) → median per period, lazily."""
    data = load_s2(items, bands, crs=crs, resolution=resolution, bbox=bbox, geopolygon=geopolygon, geobox=geobox,
                   chunks=chunks, mask=mask, patch_url=patch_url)
    return median_composite(data, freq)


def require_clear(composite: xr.Dataset) -> xr.Dataset:
    """Compute `composite` and check that some pixel is clear.

    Raises:
        EmptyInputError: every pixel of every period is masked (100 % cloud, or the area lies off the images).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)  # fully masked pixels: NaN, counted below
        computed = composite.compute()
    if int(computed["clear_count"].sum()) == 0:
        raise EmptyInputError("every pixel of the composite is masked (clouds, shadows, snow or outside the "
                              "images): widen the period or raise the cloud-cover limit")
    return computed
