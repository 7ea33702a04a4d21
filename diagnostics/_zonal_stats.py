"""Zones (communes, IRIS, QPV, a user's own polygons) and per-zone figures of a layer, with exactextract.

exactextract weights every pixel by the share of it the zone covers, so small zones and zone edges are counted
exactly. Zones are reprojected to the layer's CRS; areas are computed in that (projected) CRS.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from shapely.geometry import box
from shapely.validation import make_valid

from geovigie.errors import DiagnosticsWarning, InputNotFoundError, InvalidRasterError, InvalidZonesError

ID_FIELDS = ("zone_id", "INSEE_COM", "insee_com", "code", "CODE_IRIS", "code_iris", "CODE_QP", "code_qp", "id", "ID")
NAME_FIELDS = ("zone_name", "NOM_COM", "nom_com", "nom", "NOM_IRIS", "nom_iris", "NOM_QP", "nom_qp", "name", "NOM")


def _pick(columns: Sequence[str], given: str | None, candidates: Sequence[str], what: str, path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise InvalidZonesError(f"{path}: no {what} field {given!r} (fields: {', '.join(columns)})")
        return given
    return next((c for c in candidates if c in columns), None)


def read_zones(path: str | Path, *, id_field: str | None = None, name_field: str | None = None,
               codes: Sequence[str] | None = None, departement: str | None = None) -> gpd.GeoDataFrame:
    """Read a polygon layer as zones: columns `zone_id`, `zone_name`, `geometry`, in the file's CRS.

    The id and name fields are detected (INSEE_COM/NOM_COM, code/nom, CODE_IRIS/NOM_IRIS, CODE_QP/NOM_QP, id/name)
    unless given; `departement` ("32", "2A") or `codes` select zones by INSEE code. Invalid geometries are repaired
    (one warning lists them).

    Raises:
        InputNotFoundError: no such file.
        InvalidZonesError: unreadable, no id field, missing or duplicate ids, no polygon, empty selection.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"zones file not found: {path}")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as err:  # pyogrio raises its own DataSourceError family
        raise InvalidZonesError(f"{path}: not a readable vector file ({err})") from err
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    columns = [c for c in frame.columns if c != "geometry"]
    ident = _pick(columns, id_field, ID_FIELDS, "id", path)
    if ident is None:
        raise InvalidZonesError(f"{path}: no zone id field found among {', '.join(columns)}; pass id_field")
    name = _pick(columns, name_field, NAME_FIELDS, "name", path) or ident
    ids = frame[ident]
    missing = [int(i) for i in np.flatnonzero(ids.isna() | (ids.astype(str).str.strip() == ""))]
    if missing:
        raise InvalidZonesError(f"{path}: zones without an id ({ident}) at rows {missing[:20]}")
    zones = gpd.GeoDataFrame({"zone_id": ids.astype(str), "zone_name": frame[name].astype(str)},
                             geometry=frame.geometry, crs=frame.crs)
    duplicated = sorted(set(zones.loc[zones["zone_id"].duplicated(), "zone_id"]))
    if duplicated:
        raise InvalidZonesError(f"{path}: duplicate zone ids {duplicated[:20]}")
    if departement is not None:
        zones = zones[zones["zone_id"].str.startswith(str(departement))]
    if codes is not None:
        zones = zones[zones["zone_id"].isin([str(c) for c in codes])]
    if zones.empty:
        raise InvalidZonesError(f"{path}: no zone matches departement={departement} codes={codes}")
    polygonal = zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    invalid = ~zones.geometry.is_valid
    if invalid.any():
        warnings.warn(f"{path}: repaired invalid geometries of zones {list(zones.loc[invalid, 'zone_id'])[:20]}",
                      DiagnosticsWarning, stacklevel=2)
        zones.loc[invalid, "geometry"] = zones.loc[invalid, "geometry"].apply(
            lambda g: make_valid(g).buffer(0))
        polygonal = zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.all():
        raise InvalidZonesError(f"{path}: zones {list(zones.loc[~polygonal, 'zone_id'])[:20]} are not polygons")
    return zones.reset_index(drop=True)


def _open_layer(raster: str | Path) -> tuple[str, float, object, tuple[float, float, float, float]]:
    path = Path(raster)
    if not path.is_file():
        raise InputNotFoundError(f"layer not found: {path}")
    with rasterio.open(path) as src:
        if src.crs is None or not src.crs.is_projected:
            raise InvalidRasterError(f"{path}: per-zone areas need a projected CRS (got {src.crs}); reproject it")
        return str(path), abs(src.res[0] * src.res[1]), src.crs, tuple(src.bounds)


def _coverage(zones: gpd.GeoDataFrame, crs: object, bounds: tuple[float, float, float, float],
              layer: str) -> gpd.GeoDataFrame:
    local = zones.to_crs(crs)
    footprint = box(*bounds)
    local["zone_area_m2"] = local.geometry.area
    local["covered_fraction"] = local.geometry.intersection(footprint).area / local["zone_area_m2"]
    outside = list(local.loc[local["covered_fraction"] <= 0, "zone_id"])
    if outside:
        warnings.warn(f"{layer}: zones {outside[:20]} lie outside the layer: no figure for them",
                      DiagnosticsWarning, stacklevel=3)
    return local


def zonal_continuous(zones: gpd.GeoDataFrame, raster: str | Path, *, band: int = 1,
                     variable: str = "value") -> pd.DataFrame:
    """One row per zone: coverage-weighted mean, median, p10, p90, min, max of a continuous layer (NDVI, °C).

    Also `valid_fraction` (valid pixel area / covered zone area), `covered_fraction` (share of the zone inside the
    layer) and `zone_area_m2`. A zone outside the layer keeps its row with NaN figures and a warning.
    """
    from exactextract import exact_extract

    layer, pixel_area, crs, bounds = _open_layer(raster)
    local = _coverage(zones, crs, bounds, layer)
    ops = ["count", "mean", "median", "quantile(q=0.1)", "quantile(q=0.9)", "min", "max"]
    with rasterio.open(layer) as src:
        stats = exact_extract(src, local[["zone_id", "geometry"]], ops, include_cols=["zone_id"], output="pandas")
    stats = stats.rename(columns={"quantile_10": "p10", "quantile_90": "p90"})
    out = local[["zone_id", "zone_name", "zone_area_m2", "covered_fraction"]].merge(stats, on="zone_id")
    covered = out["zone_area_m2"] * out["covered_fraction"]
    out["valid_fraction"] = np.where(covered > 0, out.pop("count") * pixel_area / covered.where(covered > 0), 0.0)
    out.insert(2, "variable", variable)
    return pd.DataFrame(out[["zone_id", "zone_name", "variable", "mean", "median", "p10", "p90", "min", "max",
                             "valid_fraction", "covered_fraction", "zone_area_m2"]])


def zonal_classes(zones: gpd.GeoDataFrame, raster: str | Path, classes: Mapping[int, str] | None = None,
                  *, band: int = 1) -> pd.DataFrame:
    """Long table, one row per (zone, class present): area in m² and ha and the share of the zone's valid area.

    Partial pixels are counted by their covered share. The layer's nodata (255 for class maps) is never a class.
    Per-zone columns `zone_area_m2`, `covered_fraction` and `valid_fraction` repeat on each row; a zone outside
    the layer keeps one row with no class and a warning.
    """
    from exactextract import exact_extract

    layer, pixel_area, crs, bounds = _open_layer(raster)
    local = _coverage(zones, crs, bounds, layer)
    with rasterio.open(layer) as src:
        stats = exact_extract(src, local[["zone_id", "geometry"]], ["count", "unique", "frac"],
                              include_cols=["zone_id"], output="pandas")
    rows = []
    for zone, stat in zip(local.itertuples(), stats.itertuples(), strict=True):
        covered = zone.zone_area_m2 * zone.covered_fraction
        valid_m2 = float(stat.count) * pixel_area
        common = {"zone_id": zone.zone_id, "zone_name": zone.zone_name, "zone_area_m2": zone.zone_area_m2,
                  "covered_fraction": zone.covered_fraction,
                  "valid_fraction": valid_m2 / covered if covered > 0 else 0.0}
        values = list(stat.unique) if stat.unique is not None else []
        if not values:
            rows.append({**common, "class_value": pd.NA, "class_name": None, "area_m2": 0.0, "area_ha": 0.0,
                         "fraction": 0.0})
        for value, frac in zip(values, list(stat.frac), strict=True):
            value = int(value)
            area = float(frac) * valid_m2
            rows.append({**common, "class_value": value, "class_name": (classes or {}).get(value, str(value)),
                         "area_m2": area, "area_ha": area / 1e4, "fraction": float(frac)})
    columns = ["zone_id", "zone_name", "class_value", "class_name", "area_m2", "area_ha", "fraction",
               "zone_area_m2", "covered_fraction", "valid_fraction"]
    return pd.DataFrame(rows, columns=columns)
