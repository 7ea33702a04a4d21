"""Atomic table and vector exports shared by every diagnostic (CSV, GeoJSON, GeoPackage)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geovigie.atomic import atomic_path
from geovigie.errors import InvalidInputError

VECTOR_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write `table` as UTF-8 CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8")
    return Path(path)


def write_vector(frame: pd.DataFrame, path: str | Path, *, layer: str | None = None) -> Path:
    """Write a GeoDataFrame as GeoJSON (EPSG:4326, as RFC 7946 asks) or GeoPackage (its own CRS), atomically.

    The driver follows the suffix: `.geojson`/`.json` or `.gpkg`.
    """
    import geopandas as gpd

    path = Path(path)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InvalidInputError(f"{path}: unsupported vector format; use .geojson or .gpkg")
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError("write_vector needs a GeoDataFrame")
    out = frame.to_crs("EPSG:4326") if driver == "GeoJSON" and frame.crs is not None else frame
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)  # GDAL refuses to overwrite the empty temp file
        out.to_file(tmp, driver=driver, layer=layer or path.stem, engine="pyogrio")
    return path
