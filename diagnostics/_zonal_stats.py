"""Zones (communes, IRIS, QPV, a user's own polygons) and per-zone figures of a layer, with exactextract.

exactextract weights every pixel by the share of it the zone covers, so small zones and zone edges are counted
exactly; areas are then rounded to whole pixels. Every per-zone row says how much of the zone was observed
(`covered_fraction`) and its `status` ("covered", "partial", "not_covered"): figures are null unless "covered",
never 0 for "no data". Zones are reprojected to the layer's CRS; areas are computed in that (projected) CRS.
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

from geovigie.errors import (
    DiagnosticsWarning,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
    InvalidZonesError,
)

COVERED, PARTIAL, NOT_COVERED = "covered", "partial", "not_covered"
DEFAULT_MIN_COVERAGE = 0.5
"""Figures of a zone observed on less than half its area are null: a mean, median or share over the observed part
stands for the zone only when that part is the majority of it (0.5 is the smallest share for which the observed
pixels outnumber the unobserved ones); a cloudy summer scene commonly masks 20-40 % of a commune, so a higher bar
would void most vegetation figures. Totals (ZAN hectares) use `DEFAULT_MIN_COVERAGE_TOTALS`."""
DEFAULT_MIN_COVERAGE_TOTALS = 0.95
"""A total (hectares) over a zone observed on a share c misses whatever happens on the unobserved 1 − c: 0.95 keeps
that blind share of each zone at 5 % at most."""
ID_FIELDS = ("zone_id", "INSEE_COM", "insee_com", "code", "CODE_IRIS", "code_iris", "CODE_QP", "code_qp", "id", "ID")
NAME_FIELDS = ("zone_name", "NOM_COM", "nom_com", "nom", "NOM_IRIS", "nom_iris", "NOM_QP", "nom_qp", "name", "NOM")


def _pick(columns: Sequence[str], given: str | None, candidates: Sequence[str], what: str, path: Path) -> str | None:
    if given is not None:
        if given not in columns:
            raise InvalidZonesError(f"{path}: no {what} field {given!r} (fields: {', '.join(columns)})")
        return given
    return next((c for c in candidates if c in columns), None)


def vector_crs(frame: gpd.GeoDataFrame, path: Path, crs: str | None, option: str = "--zones-crs") -> object:
    """The CRS of a vector file read into `frame`: its own, or `crs` when it has none; never a guess.

    Raises:
        InvalidZonesError: no CRS in the file and none given (the message names `option`), an unknown `crs`, or a
            `crs` that contradicts the file's own.
    """
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    given = None
    if crs is not None:
        try:
            given = CRS.from_user_input(crs)
        except CRSError as err:
            raise InvalidZonesError(f"{option} {crs!r}: not a CRS (use e.g. EPSG:2154)") from err
    if frame.crs is None:
        if given is None:
            raise InvalidZonesError(f"{path}: the file has no CRS (a shapefile without its .prj?); give it with "
                                    f"{option} (EPSG:2154 for Lambert-93, EPSG:4326 for longitude/latitude)")
        return given
    if given is not None and CRS.from_user_input(frame.crs) != given:
        raise InvalidZonesError(f"{path}: the file says its CRS is {frame.crs.to_string()}, {option} says {crs}; "
                                f"drop {option} or fix the file")
    return frame.crs


def _read_frame(path: Path, what: str, crs: str | None, option: str) -> gpd.GeoDataFrame:
    """A vector file's features, with their CRS set (`vector_crs`).

    Raises:
        InputNotFoundError: no such file.
        InvalidZonesError: unreadable, no feature with a geometry, or no CRS.
    """
    if not path.is_file():
        raise InputNotFoundError(f"{what} file not found: {path}")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as err:  # pyogrio raises its own DataSourceError family
        raise InvalidZonesError(f"{path}: not a readable vector file for {what} ({err})") from err
    if not isinstance(frame, gpd.GeoDataFrame) or "geometry" not in frame or frame.empty:
        raise InvalidZonesError(f"{path}: no feature with a geometry for {what}")
    return frame.set_crs(vector_crs(frame, path, crs, option), allow_override=True)


def read_vector(path: str | Path, what: str = "zones", *, crs: str | None = None,
                option: str = "--zones-crs") -> gpd.GeoDataFrame:
    """Read any vector file (GeoJSON, GeoPackage, shapefile) with a known CRS: its own or `crs` (never a guess).

    Raises:
        InputNotFoundError: no such file.
        InvalidZonesError: unreadable, empty, without CRS (naming `option`), or only null / empty geometries.
    """
    path = Path(path)
    frame = _read_frame(path, what, crs, option)
    kept = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if kept.empty:
        raise InvalidZonesError(f"{path}: every geometry of {what} is null or empty")
    return kept


def read_zones(path: str | Path, *, id_field: str | None = None, name_field: str | None = None,
               codes: Sequence[str] | None = None, departement: str | None = None,
               crs: str | None = None) -> gpd.GeoDataFrame:
    """Read a polygon layer as zones: columns `zone_id`, `zone_name`, `geometry`, in the file's CRS.

    The id and name fields are detected (INSEE_COM/NOM_COM, code/nom, CODE_IRIS/NOM_IRIS, CODE_QP/NOM_QP, id/name)
    unless given; `departement` ("32", "2A") or `codes` select zones by INSEE code. A file without a CRS needs
    `crs` (the `--zones-crs` option): no CRS is guessed. Invalid geometries are repaired (one warning lists them).

    Raises:
        InputNotFoundError: no such file.
        InvalidZonesError: unreadable, no CRS, no id field, missing or duplicate ids, null or empty geometries,
            no polygon, empty selection.
    """
    path = Path(path)
    frame = _read_frame(path, "zones", crs, "--zones-crs")
    columns = [c for c in frame.columns if c != "geometry"]
    ident = _pick(columns, id_field, ID_FIELDS, "id", path)
    if ident is None:
        raise InvalidZonesError(f"{path}: no zone id field found among {', '.join(columns)}; pass id_field")
    name = _pick(columns, name_field, NAME_FIELDS, "name", path) or ident
    ids = frame[ident]
    missing = [int(i) for i in np.flatnonzero(ids.isna() | (ids.astype(str).str.strip() == ""))]
    if missing:
        raise InvalidZonesError(f"{path}: zones without an id ({ident}) at rows {_listed(missing, 20)}")
    zones = gpd.GeoDataFrame({"zone_id": ids.astype(str), "zone_name": frame[name].astype(str)},
                             geometry=frame.geometry, crs=frame.crs)
    duplicated = sorted(set(zones.loc[zones["zone_id"].duplicated(), "zone_id"]))
    if duplicated:
        raise InvalidZonesError(f"{path}: duplicate zone ids {_listed(duplicated, 20)}")
    if departement is not None:
        zones = zones[zones["zone_id"].str.startswith(str(departement))]
    if codes is not None:
        zones = zones[zones["zone_id"].isin([str(c) for c in codes])]
    if zones.empty:
        raise InvalidZonesError(f"{path}: no zone matches departement={departement} codes={codes}")
    blank = zones.geometry.isna() | zones.geometry.is_empty
    if blank.any():
        raise InvalidZonesError(f"{path}: zones {_listed(list(zones.loc[blank, 'zone_id']), 20)} have a "
                                "null or empty geometry")
    bounds = np.asarray(zones.geometry.bounds, dtype=float)
    if not np.isfinite(bounds).all():
        bad = _listed(list(zones.loc[~np.isfinite(bounds).all(axis=1), "zone_id"]), 20)
        raise InvalidZonesError(f"{path}: zones {bad} have non-finite coordinates")
    if zones.crs.is_geographic and (np.abs(bounds[:, [0, 2]]) > 180).any() | (np.abs(bounds[:, [1, 3]]) > 90).any():
        raise InvalidZonesError(f"{path}: coordinates out of longitude/latitude range for {zones.crs.to_string()} "
                                "(projected coordinates? give the CRS with --zones-crs)")
    polygonal = zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    invalid = ~zones.geometry.is_valid
    if invalid.any():
        warnings.warn(f"{path}: repaired invalid geometries of zones "
                      f"{_listed(list(zones.loc[invalid, 'zone_id']), 20)}",
                      DiagnosticsWarning, stacklevel=2)
        zones.loc[invalid, "geometry"] = zones.loc[invalid, "geometry"].apply(
            lambda g: make_valid(g).buffer(0))
        polygonal = zones.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.all():
        raise InvalidZonesError(f"{path}: zones {_listed(list(zones.loc[~polygonal, 'zone_id']), 20)} are "
                                "not polygons")
    return zones.reset_index(drop=True)


def _open_layer(raster: str | Path, band: int) -> tuple[str, float, object, tuple[float, float, float, float]]:
    path = Path(raster)
    if not path.is_file():
        raise InputNotFoundError(f"layer not found: {path}")
    with rasterio.open(path) as src:
        if src.crs is None or not src.crs.is_projected:
            raise InvalidRasterError(f"{path}: per-zone areas need a projected CRS (got {src.crs}); reproject it")
        if src.count != 1 or band != 1:
            raise InvalidRasterError(f"{path}: {src.count} band(s); per-zone figures read a single-band layer "
                                     f"(band {band} asked): extract the band first")
        return str(path), abs(src.res[0] * src.res[1]), src.crs, tuple(src.bounds)


def _check_min_coverage(min_coverage: float) -> float:
    if isinstance(min_coverage, bool) or not 0 <= float(min_coverage) <= 1:
        raise InvalidInputError(f"minimum coverage {min_coverage!r}: must be a share in [0, 1] (--min-coverage)")
    return float(min_coverage)


def _local(zones: gpd.GeoDataFrame, crs: object, bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Zones in the layer's CRS with their area and the share of it inside the layer's footprint."""
    if not isinstance(zones, gpd.GeoDataFrame) or zones.crs is None:
        raise InvalidZonesError("zones have no CRS: read them with read_zones (and --zones-crs for a file without one)")
    missing = [c for c in ("zone_id", "zone_name") if c not in zones.columns]
    if missing:
        raise InvalidZonesError(f"zones lack the columns {missing}: read them with read_zones")
    local = zones.to_crs(crs)
    finite = np.isfinite(np.asarray(local.geometry.bounds, dtype=float)).all(axis=1)
    if not finite.all():
        bad = _listed(list(local.loc[~finite, "zone_id"]), 20)
        raise InvalidZonesError(f"zones {bad}: coordinates cannot be projected to the layer's CRS {crs} "
                                "(wrong --zones-crs, or coordinates out of range)")
    local["zone_area_m2"] = local.geometry.area
    local["inside_fraction"] = local.geometry.intersection(box(*bounds)).area / local["zone_area_m2"]
    return local


def coverage_status(observed_pixels: np.ndarray | pd.Series, covered_fraction: np.ndarray | pd.Series,
                    min_coverage: float) -> np.ndarray:
    """`not_covered` (less than half a pixel observed), `partial` (observed share below `min_coverage`), `covered`."""
    observed = np.rint(np.asarray(observed_pixels, dtype=float)) >= 1
    enough = np.asarray(covered_fraction, dtype=float) >= min_coverage - 1e-12
    return np.where(~observed, NOT_COVERED, np.where(enough, COVERED, PARTIAL))


def _listed(ids: Sequence[object], shown: int = 10) -> str:
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f" … and {len(ids) - shown} more" if len(ids) > shown else "")


def coverage_summary(table: pd.DataFrame, min_coverage: float | None = None) -> str:
    """One line for people: how many zones are covered, partial (listed) and not covered (listed).

    `table` has one row or more per zone with `zone_id` and `status`.
    """
    per_zone = table.drop_duplicates("zone_id").set_index("zone_id")["status"]
    counts = per_zone.value_counts()
    share = f" (observed share below {min_coverage:.0%})" if min_coverage is not None else ""
    text = f"{len(per_zone)} zones: {int(counts.get(COVERED, 0))} covered"
    for status, words in ((PARTIAL, f"partial{share}"), (NOT_COVERED, "not covered")):
        ids = list(per_zone.index[per_zone == status])
        text += f"; {len(ids)} {words}" + (f": {_listed(ids)}" if ids else "")
    return text


def _warn_coverage(table: pd.DataFrame, layer: str, min_coverage: float) -> None:
    per_zone = table.drop_duplicates("zone_id")
    if (per_zone["status"] != COVERED).any():
        warnings.warn(f"{layer}: no figure for some zones: {coverage_summary(per_zone, min_coverage)}",
                      DiagnosticsWarning, stacklevel=3)


def zonal_continuous(zones: gpd.GeoDataFrame, raster: str | Path, *, band: int = 1, variable: str = "value",
                     min_coverage: float = DEFAULT_MIN_COVERAGE) -> pd.DataFrame:
    """One row per zone: coverage-weighted mean, median, p10, p90, min, max of a continuous layer (NDVI, °C).

    Coverage columns: `covered_fraction` (observed share of the zone's area: valid pixels, partial pixels by the
    share of them inside the zone), `valid_fraction` (observed share of the part of the zone inside the layer's
    footprint: what clouds and nodata left), `observed_area_ha` (whole pixels: the coverage-weighted pixel count
    rounded to whole pixels × pixel area), `zone_area_m2` and `status` (`coverage_status`). The figures are NaN
    unless the status is `covered`; one DiagnosticsWarning counts and lists the other zones.

    Raises:
        InvalidRasterError: not a single-band layer in a projected CRS.
        InvalidZonesError: zones that cannot be projected to the layer's CRS.
        InvalidInputError: `min_coverage` outside [0, 1].
    """
    from exactextract import exact_extract

    min_coverage = _check_min_coverage(min_coverage)
    layer, pixel_area, crs, bounds = _open_layer(raster, band)
    local = _local(zones, crs, bounds)
    ops = ["count", "mean", "median", "quantile(q=0.1)", "quantile(q=0.9)", "min", "max"]
    with rasterio.open(layer) as src:
        stats = exact_extract(src, local[["zone_id", "geometry"]], ops, include_cols=["zone_id"], output="pandas")
    stats = stats.rename(columns={"quantile_10": "p10", "quantile_90": "p90"})
    out = local[["zone_id", "zone_name", "zone_area_m2", "inside_fraction"]].merge(stats, on="zone_id")
    count = out.pop("count").astype(float)
    observed_m2 = count * pixel_area
    out["covered_fraction"] = np.clip(observed_m2 / out["zone_area_m2"], 0.0, 1.0)
    inside = out.pop("inside_fraction") * out["zone_area_m2"]
    out["valid_fraction"] = np.where(inside > 0, np.clip(observed_m2 / inside.where(inside > 0), 0.0, 1.0), 0.0)
    out["observed_area_ha"] = np.rint(count) * pixel_area / 1e4
    out["status"] = coverage_status(count, out["covered_fraction"], min_coverage)
    figures = ["mean", "median", "p10", "p90", "min", "max"]
    out.loc[out["status"] != COVERED, figures] = np.nan
    out.insert(2, "variable", variable)
    _warn_coverage(out, layer, min_coverage)
    return pd.DataFrame(out[["zone_id", "zone_name", "variable", *figures, "status", "covered_fraction",
                             "valid_fraction", "observed_area_ha", "zone_area_m2"]])


def zonal_classes(zones: gpd.GeoDataFrame, raster: str | Path, classes: Mapping[int, str] | None = None,
                  *, band: int = 1, min_coverage: float = DEFAULT_MIN_COVERAGE) -> pd.DataFrame:
    """Long table, one row per (zone, class present): area in m² and ha and the share of the zone's observed area.

    Areas are whole pixels: exactextract weights partial pixels at the zone's edge by the share of them inside
    the zone, and each class's weighted pixel count is rounded to whole pixels before × pixel area (so a zone
    that only touches the layer gets 0 px, not 1e-13 ha; each (zone, class) area is within half a pixel of the
    exact weighted figure). The layer's nodata (255 for class maps) is never a class. Per-zone columns `status`,
    `covered_fraction`, `valid_fraction` and `zone_area_m2` repeat on each row (see `zonal_continuous`). A zone
    whose status is not `covered` keeps one row with no class and null area and share; one DiagnosticsWarning
    counts and lists such zones.
    """
    from exactextract import exact_extract

    min_coverage = _check_min_coverage(min_coverage)
    layer, pixel_area, crs, bounds = _open_layer(raster, band)
    local = _local(zones, crs, bounds)
    with rasterio.open(layer) as src:
        stats = exact_extract(src, local[["zone_id", "geometry"]], ["count", "unique", "frac"],
                              include_cols=["zone_id"], output="pandas")
    rows = []
    for zone, stat in zip(local.itertuples(), stats.itertuples(), strict=True):
        count = float(stat.count)
        covered = min(1.0, count * pixel_area / zone.zone_area_m2) if zone.zone_area_m2 > 0 else 0.0
        inside = zone.zone_area_m2 * zone.inside_fraction
        status = str(coverage_status(np.array([count]), np.array([covered]), min_coverage)[0])
        common = {"zone_id": zone.zone_id, "zone_name": zone.zone_name, "status": status,
                  "covered_fraction": covered, "zone_area_m2": zone.zone_area_m2,
                  "valid_fraction": min(1.0, count * pixel_area / inside) if inside > 0 else 0.0}
        values = list(stat.unique) if stat.unique is not None and status == COVERED else []
        if not values:
            rows.append({**common, "class_value": pd.NA, "class_name": None, "pixels": np.nan, "area_m2": np.nan,
                         "area_ha": np.nan, "fraction": np.nan})
        for value, frac in zip(values, list(stat.frac) if values else [], strict=True):
            value = int(value)
            pixels = float(np.rint(float(frac) * count))
            rows.append({**common, "class_value": value, "class_name": (classes or {}).get(value, str(value)),
                         "pixels": pixels, "area_m2": pixels * pixel_area, "area_ha": pixels * pixel_area / 1e4,
                         "fraction": float(frac)})
    columns = ["zone_id", "zone_name", "class_value", "class_name", "pixels", "area_m2", "area_ha", "fraction",
               "status", "covered_fraction", "valid_fraction", "zone_area_m2"]
    table = pd.DataFrame(rows, columns=columns)
    _warn_coverage(table, layer, min_coverage)
    return table
