"""Lazy loading of STAC items into xarray/dask with odc-stac, on a chosen grid."""

from __future__ import annotations

from collections.abc import Sequence

import pystac
import xarray as xr


def load_items(
    items: Sequence[pystac.Item],
    bands: Sequence[str],
    *,
    crs: str | None = None,
    resolution: float | None = None,
    bbox: Sequence[float] | None = None,
    chunks: dict[str, int] | None = None,
    groupby: str | None = "solar_day",
    resampling: str | dict[str, str] = "nearest",
) -> xr.Dataset:
    """Load `bands` (asset keys) of `items` lazily: nothing is read until computed.

    Args:
        items: STAC items, e.g. from `CatalogClient.search(...).item_list()`.
        bands: asset keys to load, one data variable each.
        crs: output CRS (e.g. "EPSG:2154"); the items' own CRS when None.
        resolution: output pixel size in CRS units; the finest asset's when None.
        bbox: area to load, EPSG:4326 (west, south, east, north).
        chunks: dask chunk sizes, default 1024 × 1024.
        groupby: how to merge items into time slices.
        resampling: resampling method, or one per band.
    """
    import odc.stac

    return odc.stac.load(
        list(items),
        bands=list(bands),
        crs=crs,
        resolution=resolution,
        bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
        chunks=dict(chunks or {"x": 1024, "y": 1024}),
        groupby=groupby,
        resampling=resampling,
        fail_on_error=True,
    )
