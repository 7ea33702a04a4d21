"""Dump sites (dépôts sauvages): vectorise a probability or class layer, measure, locate, export.

A site layer is a GeoDataFrame in EPSG:2154, one row per site, produced by `extract_sites` and enriched by
`site_volumes` (volume from a surface and a terrain model) and `sensitive_zones` (distance to Natura 2000,
ZNIEFF, water courses or a user's own layers). No sensitive-zone layer ships with geovigie: the user supplies
them. No labelled dump imagery exists offline either, so no dump detector is validated here: sites taken from a
layer that is not the output of a validated model are flagged `candidate` with a note, in every output.

The layer is read whole into memory (one byte per pixel plus the masks): fine for a commune at 0.2 m, not yet
for a whole département in one file.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import warnings
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.crs
import rasterio.features
import rasterio.fill
from pyproj import CRS
from rasterio.errors import RasterioIOError
from rasterio.windows import Window, from_bounds
from shapely.geometry import Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from geovigie.diagnostics._detector import DetectorLayer, detector_layer
from geovigie.diagnostics._export import write_csv, write_vector
from geovigie.errors import (
    DiagnosticsWarning,
    GridMismatchError,
    InputNotFoundError,
    InvalidInputError,
    InvalidRasterError,
    InvalidZonesError,
)
from geovigie.types import LAMBERT93, NODATA_CLASS, PROBA_SCALE

PROBABILITY_MAX = PROBA_SCALE  # probabilities are uint8 0-250 (value / 250), 255 = nodata
NODATA = NODATA_CLASS
CANDIDATE_NOTE = (
    "candidate: extracted from a layer that is not the output of a validated dump model; "
    "check on site before any action"
)
NO_SURFACE_NOTE = "no surface/terrain model given"
OUTSIDE_NOTE = "site outside the surface/terrain model"
NO_PIXEL_NOTE = "no surface-model pixel centre inside the site"
NODATA_NOTE = "nodata inside the site in the surface/terrain model"
DEFAULT_MIN_HEIGHT_M = 0.2
"""A pixel counts in a volume when it stands more than 0.2 m above the terrain: twice the ~0.1 m vertical error of
LiDAR HD, so bare-ground noise rarely crosses it, low enough to keep a thin spread of rubble."""
DEFAULT_NOISE_M = 0.1
"""Vertical error of the surface and terrain models (IGN LiDAR HD: about 0.1 m RMSE), for the volume uncertainty."""
MIN_VALID_SHARE = 0.5
"""Below half of a site measured, its volume is left null: filling would invent more than it measures."""
FILL_SEARCH_PX = 10
"""Nodata pixels are filled from valid pixels up to 10 pixels away (5 m on LiDAR HD 0.5 m grids)."""
VOLUME_COLUMNS = ["volume_m3", "volume_uncertainty_m3", "valid_fraction", "height_max_m", "height_mean_m"]
SITE_COLUMNS = [
    "detection_id", "pass_date", "candidate", "source_kind", "layer_kind", "source_layer", "note",
    "area_m2", "area_ha", "mean_confidence", "max_confidence",
    "centroid_lon", "centroid_lat", "centroid_x_l93", "centroid_y_l93", "commune_code", "commune_name",
    "volume_m3", "volume_uncertainty_m3", "valid_fraction", "height_max_m", "height_mean_m", "volume_note",
]
DETECTOR_COLUMNS = ["detector_class", "model_bundle", "model_version", "nodata_px"]
"""What `extract_sites` adds to `SITE_COLUMNS`: the class read, the bundle (name@version) and version that made the
layer (null for a stand-in), and the nodata pixels inside the site's outline (not counted in its area)."""
CENTROID_COLUMNS = ["centroid_lon", "centroid_lat", "centroid_x_l93", "centroid_y_l93"]
_LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def iso_pass_date(pass_date: date | datetime) -> str:
    """ISO 8601 text of a pass date: `YYYY-MM-DD` for a date, `YYYY-MM-DDTHH:MM:SSZ` (UTC) for a datetime.

    Naive datetimes are taken as UTC.
    """
    if isinstance(pass_date, datetime):
        moment = pass_date.replace(tzinfo=UTC) if pass_date.tzinfo is None else pass_date.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(pass_date, date):
        return pass_date.isoformat()
    raise InvalidInputError(f"pass_date {pass_date!r}: expected a date or datetime")


def check_site_options(threshold: float, class_value: int | None, min_area_m2: float,
                       sieve_px: int | None = None) -> None:
    """The options of `extract_sites` are in range, else InvalidInputError naming the option."""
    if class_value is None and not 0 < threshold <= 1:
        raise InvalidInputError(f"threshold {threshold}: must be in (0, 1] (probability = value / 250)")
    if class_value is not None and (isinstance(class_value, bool) or not isinstance(class_value, int)
                                    or not 0 <= class_value < NODATA):
        raise InvalidInputError(f"class_value {class_value!r}: must be an integer class in 0-254 (255 = nodata)")
    if not min_area_m2 >= 0:
        raise InvalidInputError(f"min_area_m2 {min_area_m2}: must be >= 0")
    if sieve_px is not None and (isinstance(sieve_px, bool) or not isinstance(sieve_px, int) or sieve_px < 0):
        raise InvalidInputError(f"sieve_px {sieve_px!r}: must be a non-negative integer or None")


def _open(path: Path) -> rasterio.DatasetReader:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such raster")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InvalidRasterError(f"{path}: not a readable raster ({exc})") from exc
    if src.crs is None:
        src.close()
        raise InvalidRasterError(f"{path}: raster has no CRS")
    return src


def _is_metric(crs: rasterio.crs.CRS) -> bool:
    parsed = CRS.from_user_input(crs)
    return bool(parsed.is_projected and parsed.axis_info and parsed.axis_info[0].unit_name in ("metre", "meter"))


def _pixel_area_m2(src: rasterio.DatasetReader) -> float:
    """Ground area of one pixel in m²: from the transform in a metric CRS, else from the footprint in EPSG:2154."""
    if _is_metric(src.crs):
        return abs(src.transform.a * src.transform.e - src.transform.b * src.transform.d)
    footprint = gpd.GeoSeries([box(*src.bounds)], crs=src.crs).to_crs(LAMBERT93)
    return float(footprint.area.iloc[0]) / (src.width * src.height)


def threshold_value(threshold: float) -> int:
    """The smallest stored value (0-250) whose probability reaches `threshold`: a pixel with p == threshold counts."""
    return math.ceil(threshold * PROBABILITY_MAX - 1e-9)


def _read_layer(src: rasterio.DatasetReader, threshold: float,
                layer: DetectorLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Site mask, valid-pixel mask and band values of the layer's band (probability or class map)."""
    values = src.read(layer.band)
    valid = src.read_masks(layer.band) > 0
    if layer.kind == "probability":
        if values.dtype != np.uint8:
            raise InvalidRasterError(f"{src.name}: probability layer is {values.dtype}; expected uint8 0-250 "
                                     "(255 = nodata), or pass class_value for a class map")
        valid &= values <= PROBABILITY_MAX
        site = valid & (values >= threshold_value(threshold))
    else:
        if not np.issubdtype(values.dtype, np.integer):
            raise InvalidRasterError(f"{src.name}: class layer is {values.dtype}; expected an integer class map")
        site = valid & (values == layer.class_value)
    return site, valid, values


def _sieve_size(sieve_px: int | None, min_area_m2: float, pixel_area: float) -> int:
    if sieve_px is not None:
        return sieve_px
    return max(1, math.ceil(min_area_m2 / pixel_area - 1e-9))


def _clean(site: np.ndarray, size: int) -> np.ndarray:
    """Sieve: connected groups (4-connectivity) smaller than `size` pixels take their neighbours' value.

    Specks are removed and holes smaller than `size` filled.
    """
    size = min(size, site.size - 1)  # GDAL refuses a sieve as large as the image
    if size <= 1:
        return site
    return rasterio.features.sieve(site.astype(np.uint8), size=size, connectivity=4).astype(bool)


def _site_pixels(polygons: list[BaseGeometry], transform: rasterio.Affine, values: np.ndarray, valid: np.ndarray,
                 probability: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per polygon (pixel-aligned): mean and max probability (value / 250) of its valid pixels (NaN for a class
    map), its valid share, and the nodata pixels inside its outline (holes included)."""
    def labelled(geoms: list[BaseGeometry]) -> np.ndarray:
        return rasterio.features.rasterize(
            ((geom, index) for index, geom in enumerate(geoms, start=1)),
            out_shape=values.shape, transform=transform, fill=0, dtype="int32", all_touched=False)

    n = len(polygons) + 1
    labels = labelled(polygons)
    count_all = np.bincount(labels.ravel(), minlength=n)[1:]
    keep = (labels > 0) & valid
    ids = labels[keep]
    count = np.bincount(ids, minlength=n)[1:]
    outlines = labelled([Polygon(g.exterior) if isinstance(g, Polygon) else g for g in polygons])
    nodata_px = np.bincount(outlines[(outlines > 0) & ~valid], minlength=n)[1:]
    share = count / np.maximum(count_all, 1)
    if not probability:
        empty = np.full(len(polygons), np.nan)
        return empty, empty, share, nodata_px
    vals = values[keep].astype(np.float64) / PROBABILITY_MAX
    total = np.bincount(ids, weights=vals, minlength=n)[1:]
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, ids, vals)
    none = count == 0
    return np.where(none, np.nan, total / np.maximum(count, 1)), np.where(none, np.nan, peak[1:]), share, nodata_px


def _empty_sites(pass_iso: str) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({name: pd.Series(dtype="object") for name in SITE_COLUMNS},
                             geometry=gpd.GeoSeries([], crs=LAMBERT93), crs=LAMBERT93)
    for name in ("area_m2", "area_ha", "mean_confidence", "max_confidence", *CENTROID_COLUMNS, *VOLUME_COLUMNS):
        frame[name] = frame[name].astype("float64")
    frame["candidate"] = frame["candidate"].astype(bool)
    frame.attrs["pass_date"] = pass_iso
    return frame


def _detection_ids(pass_iso: str, x: np.ndarray, y: np.ndarray, area: np.ndarray) -> list[str]:
    """Ids from the pass date and the centroid rounded to 1 cm (area breaks the rare tie): same input, same ids."""
    stamp = pass_iso[:10].replace("-", "")
    ids: list[str] = []
    for cx, cy, a in zip(x, y, area, strict=True):
        digest = hashlib.sha1(f"{pass_iso}|{cx:.2f}|{cy:.2f}".encode()).hexdigest()[:10]
        ident = f"{stamp}-{digest}"
        if ident in ids:
            ident = f"{stamp}-{hashlib.sha1(f'{pass_iso}|{cx:.2f}|{cy:.2f}|{a:.2f}'.encode()).hexdigest()[:10]}"
        ids.append(ident)
    return ids


def add_centroids(sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Set `centroid_x_l93`/`centroid_y_l93` (EPSG:2154) and `centroid_lon`/`centroid_lat` (WGS84) of each site."""
    out = sites.copy()
    centroids = out.geometry.to_crs(LAMBERT93).centroid
    wgs84 = centroids.to_crs("EPSG:4326")
    out["centroid_x_l93"], out["centroid_y_l93"] = centroids.x.to_numpy(), centroids.y.to_numpy()
    out["centroid_lon"], out["centroid_lat"] = wgs84.x.to_numpy(), wgs84.y.to_numpy()
    return out


def _check_zones(zones: gpd.GeoDataFrame, columns: tuple[str, ...], what: str) -> gpd.GeoDataFrame:
    if not isinstance(zones, gpd.GeoDataFrame):
        raise InvalidZonesError(f"{what}: expected a GeoDataFrame, got {type(zones).__name__}")
    missing = [c for c in columns if c not in zones.columns]
    if missing:
        raise InvalidZonesError(f"{what}: columns {missing} missing (has {list(zones.columns)})")
    if zones.crs is None:
        raise InvalidZonesError(f"{what}: no CRS")
    kept = zones[zones.geometry.notna() & ~zones.geometry.is_empty]
    if kept.empty:
        raise InvalidZonesError(f"{what}: no geometry")
    return kept.to_crs(LAMBERT93)


def _prepare_zones(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    kept = _check_zones(zones, ("zone_id", "zone_name"), "zones")
    if kept["zone_id"].isna().any() or kept["zone_id"].duplicated().any():
        raise InvalidZonesError("zones: zone_id has missing or duplicate values")
    return kept


def _join_communes(sites: gpd.GeoDataFrame, zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Commune (zone) of each site: the zone with the largest overlap; null where none overlaps."""
    left = gpd.GeoDataFrame({"_row": np.arange(len(sites))}, geometry=sites.geometry.to_numpy(), crs=LAMBERT93)
    pairs = gpd.overlay(left, zones[["zone_id", "zone_name", "geometry"]], how="intersection", keep_geom_type=False)
    out = sites.copy()
    out["commune_code"], out["commune_name"] = None, None
    if pairs.empty:
        return out
    pairs["_overlap"] = pairs.geometry.area
    pairs = pairs[pairs["_overlap"] > 0].sort_values(["_row", "_overlap", "zone_id"], ascending=[True, False, True])
    best = pairs.drop_duplicates("_row")
    rows = best["_row"].to_numpy()
    out.iloc[rows, out.columns.get_loc("commune_code")] = best["zone_id"].astype(str).to_numpy()
    out.iloc[rows, out.columns.get_loc("commune_name")] = best["zone_name"].astype(str).to_numpy()
    return out


def extract_sites(
    layer: str | Path | DetectorLayer,
    *,
    threshold: float = 0.5,
    class_value: int | None = None,
    class_name: str | None = None,
    min_area_m2: float = 20.0,
    sieve_px: int | None = None,
    pass_date: date | datetime,
    candidate: bool,
    zones: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Vectorise the dump sites of one pass from a probability or class layer, as polygons in EPSG:2154.

    A probability layer (uint8, value / 250, 255 = nodata) gives sites where value >= `threshold` × 250 (a pixel
    exactly at the threshold counts); a class layer gives sites where value == the dump class's value. A
    multi-band probability layer (`geovigie predict`'s) is read on the band of the dump class (`detector_layer`).
    The mask is sieved (4-connectivity): groups of fewer than `sieve_px` pixels are removed and holes of fewer
    than `sieve_px` pixels filled (None: the pixel count of `min_area_m2`; 0 or 1: no sieve). Polygons
    (rasterio.features.shapes) are reprojected to EPSG:2154 when the layer is not, and those whose measured area
    is under `min_area_m2` dropped.

    Nodata pixels inside a site (a hole the sieve filled, or a gap in its outline) count neither in its
    probability nor in its area: `area_m2` is the polygon's area times its valid share, and `nodata_px` says how
    many nodata pixels lie inside the site's outline.

    Args:
        layer: a GeoTIFF/COG (a model bundle's probability or class output, or any single-band stand-in), or a
            `DetectorLayer` already resolved (then `class_value` and `class_name` are not used).
        threshold: probability threshold in (0, 1] (ignored for a class layer).
        class_value: class of the dump sites in a class layer; None for a probability layer.
        class_name: the dump class by name (a band of a probability layer, a class of a class layer).
        min_area_m2: smallest site kept, m² (measured in EPSG:2154).
        sieve_px: sieve size in pixels (see above).
        pass_date: date of the imagery pass (naive datetimes are UTC).
        candidate: True unless the layer is the output of a validated dump model; candidates carry a note (the
            layer's own when it names the detector).
        zones: communes (columns zone_id, zone_name, geometry); each site gets the one it overlaps most.

    Returns:
        One row per site (columns `SITE_COLUMNS` + `DETECTOR_COLUMNS` + geometry), largest first. `detection_id`
        is a hash of the pass date and the centroid rounded to 1 cm, so reruns give the same ids. Confidences
        (probability layers only, else null) are the mean and max value / 250 of the site's valid pixels: the
        detector's probability of the dump class. Volume columns are null with `volume_note` "no surface/terrain
        model given" until `site_volumes` fills them. `attrs` holds `valid_px` and `nodata_px` of the whole layer.

    Raises:
        InputNotFoundError: the layer does not exist.
        InvalidRasterError: no CRS, or not uint8 for a probability layer.
        InvalidInputError: an option out of range, a class name the layer does not have, unnamed bands.
        InvalidZonesError: `zones` lacks zone_id / zone_name, a CRS or geometries.
    """
    resolved = layer if isinstance(layer, DetectorLayer) else detector_layer(
        layer, class_name=class_name, class_value=class_value)
    check_site_options(threshold, resolved.class_value, min_area_m2, sieve_px)
    pass_iso = iso_pass_date(pass_date)
    zone_frame = _prepare_zones(zones) if zones is not None else None
    with _open(resolved.path) as src:
        site, valid, values = _read_layer(src, threshold, resolved)
        transform, crs, pixel_area = src.transform, src.crs, _pixel_area_m2(src)
    totals = {"valid_px": int(valid.sum()), "nodata_px": int(valid.size - valid.sum())}
    site = _clean(site, _sieve_size(sieve_px, min_area_m2, pixel_area))
    polygons = [shape(geom) for geom, _ in rasterio.features.shapes(
        site.astype(np.uint8), mask=site, connectivity=4, transform=transform)]
    mean_conf, max_conf, share, nodata_px = _site_pixels(polygons, transform, values, valid,
                                                         resolved.kind == "probability")
    sites = gpd.GeoDataFrame({"mean_confidence": mean_conf, "max_confidence": max_conf, "nodata_px": nodata_px},
                             geometry=polygons, crs=crs).to_crs(LAMBERT93)
    sites["area_m2"] = sites.geometry.area * share
    sites = sites[sites["area_m2"] >= min_area_m2].sort_values("area_m2", ascending=False, kind="stable")
    if sites.empty:
        empty = _empty_sites(pass_iso)
        for column in DETECTOR_COLUMNS:
            empty.insert(len(empty.columns) - 1, column, pd.Series(
                dtype="int64" if column == "nodata_px" else "object"))
        empty.attrs.update(totals)
        return empty
    sites = _describe(add_centroids(sites.reset_index(drop=True)), pass_iso, candidate, resolved)
    if zone_frame is not None:
        sites = _join_communes(sites, zone_frame)
    sites = gpd.GeoDataFrame(sites[[*SITE_COLUMNS, *DETECTOR_COLUMNS, "geometry"]], geometry="geometry",
                             crs=LAMBERT93)
    sites.attrs.update(pass_date=pass_iso, **totals)
    return sites


def observed_share(layer: str | Path | DetectorLayer, footprints: gpd.GeoSeries) -> np.ndarray:
    """Share (0-1) of each footprint's pixels that hold data in the layer: what a pass observed of a site.

    A pixel belongs to a footprint when its centre lies inside (every pixel it touches when no centre does);
    pixels outside the layer count as not observed, so a footprint off the layer's extent has share 0. Valid
    pixels are those `extract_sites` measures (not masked, and <= 250 in a probability layer).
    """
    resolved = layer if isinstance(layer, DetectorLayer) else detector_layer(layer)
    shares = np.zeros(len(footprints))
    if footprints.empty:
        return shares
    with _open(resolved.path) as src:
        valid = src.read_masks(resolved.band) > 0
        if resolved.kind == "probability":
            valid &= src.read(resolved.band) <= PROBABILITY_MAX
        geoms = footprints.to_crs(src.crs) if footprints.crs is not None else footprints
        for k, geom in enumerate(geoms):
            if geom is None or geom.is_empty:
                continue
            exact = from_bounds(*geom.bounds, transform=src.transform)
            col0, row0 = math.floor(exact.col_off) - 1, math.floor(exact.row_off) - 1
            col1 = math.ceil(exact.col_off + exact.width) + 1
            row1 = math.ceil(exact.row_off + exact.height) + 1
            window = Window(col0, row0, col1 - col0, row1 - row0)
            shape_ = (row1 - row0, col1 - col0)
            inside = rasterio.features.geometry_mask([geom], shape_, src.window_transform(window), invert=True)
            if not inside.any():
                inside = rasterio.features.geometry_mask([geom], shape_, src.window_transform(window), invert=True,
                                                         all_touched=True)
            seen = np.zeros(shape_, dtype=bool)
            r0, c0 = max(row0, 0), max(col0, 0)
            r1, c1 = min(row1, valid.shape[0]), min(col1, valid.shape[1])
            if r1 > r0 and c1 > c0:
                seen[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = valid[r0:r1, c0:c1]
            shares[k] = (inside & seen).sum() / inside.sum() if inside.any() else 0.0
    return shares


def _describe(sites: gpd.GeoDataFrame, pass_iso: str, candidate: bool, layer: DetectorLayer) -> gpd.GeoDataFrame:
    """Ids, provenance, detector, candidate note and empty commune / volume columns of freshly vectorised sites."""
    sites["detection_id"] = _detection_ids(pass_iso, sites["centroid_x_l93"].to_numpy(),
                                           sites["centroid_y_l93"].to_numpy(), sites["area_m2"].to_numpy())
    sites["area_ha"] = sites["area_m2"] / 10_000
    sites["pass_date"] = pass_iso
    sites["candidate"] = bool(candidate)
    sites["source_kind"] = "candidate" if candidate else "validated_model"
    sites["layer_kind"] = "probability" if layer.kind == "probability" else f"class {layer.class_value}"
    sites["source_layer"] = layer.path.name
    sites["note"] = (layer.note or CANDIDATE_NOTE) if candidate else (layer.note or None)
    sites["commune_code"], sites["commune_name"] = None, None
    for column in VOLUME_COLUMNS:
        sites[column] = np.nan
    sites["volume_note"] = NO_SURFACE_NOTE
    sites["detector_class"] = layer.class_name
    sites["model_bundle"] = layer.bundle_id
    sites["model_version"] = layer.bundle_version
    sites["nodata_px"] = sites["nodata_px"].astype("int64")
    return sites


def _site_labels(sites: gpd.GeoDataFrame) -> list[str]:
    for column in ("site_id", "detection_id"):
        if column in sites.columns:
            return [str(v) for v in sites[column]]
    return [str(v) for v in sites.index]


def _open_models(dsm: str | Path, dtm: str | Path,
                 stack: contextlib.ExitStack) -> tuple[rasterio.DatasetReader, rasterio.DatasetReader]:
    """Open the DSM and DTM (closed with `stack`), checking they share one metric grid."""
    surface = stack.enter_context(_open(Path(dsm)))
    terrain = stack.enter_context(_open(Path(dtm)))
    same = (surface.crs == terrain.crs and surface.transform.almost_equals(terrain.transform)
            and surface.shape == terrain.shape)
    if not same:
        raise GridMismatchError(f"{dsm} and {dtm}: DSM and DTM are not on the same grid (CRS, transform, shape)")
    if not _is_metric(surface.crs):
        raise InvalidRasterError(f"{dsm}: CRS {surface.crs} is not projected in metres; volumes need metres")
    return surface, terrain


def _site_volume(geom: BaseGeometry, surface: rasterio.DatasetReader, terrain: rasterio.DatasetReader,
                 min_height_m: float, noise_m: float) -> tuple[float, float, float, float, float, str | None]:
    """Volume, uncertainty, valid share, max and mean height of one site (geometry in the DSM's CRS), or NaNs and
    the reason."""
    nan = float("nan")
    left, bottom, right, top = surface.bounds
    if geom.intersection(box(left, bottom, right, top)).area == 0:  # touching the edge is still outside
        return nan, nan, 0.0, nan, nan, OUTSIDE_NOTE
    exact = from_bounds(*geom.bounds, transform=surface.transform)
    margin = FILL_SEARCH_PX
    col0, row0 = math.floor(exact.col_off) - margin, math.floor(exact.row_off) - margin
    col1 = math.ceil(exact.col_off + exact.width) + margin
    row1 = math.ceil(exact.row_off + exact.height) + margin
    window = Window(col0, row0, col1 - col0, row1 - row0)  # may reach past the models: outside reads as nodata
    inside = rasterio.features.rasterize([(geom, 1)], out_shape=(window.height, window.width),
                                         transform=surface.window_transform(window), fill=0, dtype="uint8",
                                         all_touched=False).astype(bool)
    if not inside.any():
        return nan, nan, 0.0, nan, nan, NO_PIXEL_NOTE
    dsm = surface.read(1, window=window, masked=True, boundless=True).astype(np.float64)
    dtm = terrain.read(1, window=window, masked=True, boundless=True).astype(np.float64)
    valid = ~(np.ma.getmaskarray(dsm) | np.ma.getmaskarray(dtm))
    valid &= np.isfinite(dsm.filled(0.0)) & np.isfinite(dtm.filled(0.0))  # NaN without a declared nodata
    height = np.where(valid, dsm.filled(0.0) - dtm.filled(0.0), 0.0)
    n_inside, n_valid = int(inside.sum()), int((valid & inside).sum())
    share = n_valid / n_inside
    if share < MIN_VALID_SHARE:
        note = f"{NODATA_NOTE} ({n_inside - n_valid} of {n_inside} px"
        return nan, nan, share, nan, nan, note + f", less than {MIN_VALID_SHARE:.0%} measured)"
    filled, reached = height, valid
    if not valid[inside].all():  # inverse-distance fill from the valid pixels around each gap, in or out of the site
        unfilled = np.float32(-1e30)
        filled = rasterio.fill.fillnodata(np.where(valid, height, unfilled).astype(np.float32),
                                          mask=valid.astype(np.uint8),
                                          max_search_distance=FILL_SEARCH_PX).astype(np.float64)
        reached = valid | (filled != unfilled)
    measured = height[inside & valid]
    counted = inside & reached & (filled > min_height_m)
    pixel_area = abs(surface.transform.a * surface.transform.e - surface.transform.b * surface.transform.d)
    n_reached = int((inside & reached).sum())
    scale = n_inside / n_reached  # gaps out of the fill's reach: the valid part scaled up to the site
    volume = float(filled[counted].sum()) * pixel_area * scale
    n_counted, n_gap = int(counted.sum()) * scale, n_inside - n_valid
    spread = float(measured.std()) if measured.size > 1 else 0.0
    uncertainty = math.hypot(noise_m * n_counted * pixel_area, spread * n_gap * pixel_area)
    return volume, uncertainty, share, float(measured.max()), float(measured.mean()), None


def _warn_null_volumes(labels: list[str], notes: list[str | None]) -> None:
    by_reason: dict[str, list[str]] = {}
    for label, note in zip(labels, notes, strict=True):
        if note is not None:
            by_reason.setdefault(note.split(" (")[0], []).append(label)
    if not by_reason:
        return
    parts = []
    for reason, ids in by_reason.items():
        shown = ", ".join(ids[:10]) + (f" … and {len(ids) - 10} more" if len(ids) > 10 else "")
        parts.append(f"{reason}: {shown}")
    count = sum(len(ids) for ids in by_reason.values())
    warnings.warn(f"volume left null for {count} site(s): " + "; ".join(parts), DiagnosticsWarning, stacklevel=3)


def site_volumes(sites: gpd.GeoDataFrame, dsm: str | Path | None, dtm: str | Path | None, *,
                 min_height_m: float = DEFAULT_MIN_HEIGHT_M, noise_m: float = DEFAULT_NOISE_M) -> gpd.GeoDataFrame:
    """Add `volume_m3`, `volume_uncertainty_m3`, `valid_fraction`, `height_max_m`, `height_mean_m` and
    `volume_note` from a surface (DSM) and terrain (DTM) model.

    volume_m3 = Σ (DSM − DTM) × pixel area over the DSM pixels whose centre lies in the site (rasterize,
    all_touched=False) and whose height exceeds `min_height_m` (strictly): the whole height of those pixels, the
    threshold is not subtracted. `valid_fraction` is the share of the site's pixels where both models have data.
    Nodata pixels inside the site (and the part of a site beyond the models' edge) are filled from the valid
    pixels around them (inverse-distance weighting, rasterio `fillnodata`, up to `FILL_SEARCH_PX` pixels away);
    any left out of reach are accounted for by scaling the volume by pixels in the site / pixels measured or filled.

    Uncertainty (one standard deviation): `noise_m` is the vertical error of the models (IGN LiDAR HD: about 0.1 m
    RMSE). Over a site of a few hundred m² that error is correlated (same flight strip, same ground
    interpolation), so it is not averaged down: it shifts every counted pixel together, giving noise_m × counted
    footprint. Each filled pixel may hold any height of the site: it adds the standard deviation of the measured
    heights × pixel area. The two are added in quadrature.
    A site gets a null volume and the reason in `volume_note` when no model is given, when it lies outside the
    models, when no pixel centre falls inside it, or when less than `MIN_VALID_SHARE` of it is measured; one
    DiagnosticsWarning lists such sites. Heights (max, mean) are those of the measured pixels.

    Args:
        sites: site polygons (any CRS; reprojected to the models' CRS for the computation).
        dsm: digital surface model; None with `dtm` None leaves volumes null ("no surface/terrain model given").
        dtm: digital terrain model on the same grid as `dsm`.
        min_height_m: height above terrain a pixel must exceed to count, metres (>= 0).
        noise_m: vertical error of the models for the uncertainty, metres (>= 0).

    Raises:
        InputNotFoundError: a model file does not exist.
        InvalidRasterError: a model has no CRS or a CRS not in metres.
        GridMismatchError: DSM and DTM are not on the same grid.
        InvalidInputError: only one of dsm/dtm given, a negative or NaN height or noise, or sites without CRS.
    """
    for name, value in (("min_height_m", min_height_m), ("noise_m", noise_m)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or math.isinf(value):
            raise InvalidInputError(f"{name} {value!r}: must be a finite number >= 0 (metres)")
    if (dsm is None) != (dtm is None):
        raise InvalidInputError(f"dsm={dsm}, dtm={dtm}: give both the surface and the terrain model, or neither")
    if sites.crs is None:
        raise InvalidInputError("sites: no CRS")
    out = sites.copy()
    if dsm is None or out.empty:
        for column in VOLUME_COLUMNS:
            out[column] = np.nan
        out["volume_note"] = NO_SURFACE_NOTE if dsm is None else None
        return out
    with contextlib.ExitStack() as stack:
        surface, terrain = _open_models(dsm, dtm, stack)  # type: ignore[arg-type]  # checked by _open_models
        return volumes_on(out, surface, terrain, min_height_m=float(min_height_m), noise_m=float(noise_m))


def volumes_on(sites: gpd.GeoDataFrame, surface: rasterio.DatasetReader, terrain: rasterio.DatasetReader, *,
               min_height_m: float, noise_m: float) -> gpd.GeoDataFrame:
    """`site_volumes` on two open rasters already checked to share one metric grid (the volume integrator).

    `surface` − `terrain` is the height integrated: DSM − DTM for a pile's volume, after − before for the volume
    added between two passes.
    """
    out = sites.copy()
    geoms = out.geometry.to_crs(surface.crs)
    results = [_site_volume(g, surface, terrain, min_height_m, noise_m) for g in geoms]
    for index, column in enumerate(VOLUME_COLUMNS):
        out[column] = [r[index] for r in results]
    out["volume_note"] = [r[5] for r in results]
    _warn_null_volumes(_site_labels(out), [r[5] for r in results])
    return out


def _zone_names(layer: gpd.GeoDataFrame, key: str) -> gpd.GeoDataFrame:
    column = "name" if "name" in layer.columns else "zone_name" if "zone_name" in layer.columns else None
    if column is None:
        raise InvalidZonesError(f"sensitive layer {key!r}: needs a 'name' or 'zone_name' column "
                                f"(has {list(layer.columns)})")
    kept = _check_zones(layer, (column,), f"sensitive layer {key!r}")
    return gpd.GeoDataFrame({"_name": kept[column].astype(str).to_numpy()}, geometry=kept.geometry.to_numpy(),
                            crs=LAMBERT93)


def sensitive_zones(sites: gpd.GeoDataFrame, layers: Mapping[str, gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Add, per sensitive layer, the distance to its nearest feature and that feature's name.

    For each `key` in `layers` (e.g. "natura2000", "znieff", "water"): `dist_<key>_m` (metres in EPSG:2154,
    polygon to feature; 0 when they touch or overlap), `nearest_<key>` (the feature's `name`, or `zone_name`) and
    `inside_<key>` (True when the site touches or overlaps a feature). No such layer ships with geovigie: pass
    the user's own (INPN Natura 2000 / ZNIEFF, BD TOPO water courses, ...).

    Raises:
        InvalidInputError: a key is not a lower-case identifier, or sites have no CRS.
        InvalidZonesError: a layer has no name column, no CRS or no geometry.
    """
    if sites.crs is None:
        raise InvalidInputError("sites: no CRS")
    out = sites.copy()
    footprints = gpd.GeoDataFrame({"_row": np.arange(len(out))},
                                  geometry=out.geometry.to_crs(LAMBERT93).to_numpy(), crs=LAMBERT93)
    for key, layer in layers.items():
        if not isinstance(key, str) or not _LAYER_NAME.match(key):
            raise InvalidInputError(f"sensitive layer name {key!r}: use a lower-case identifier like 'natura2000'")
        features = _zone_names(layer, key)
        dist = np.full(len(out), np.nan)
        name = np.full(len(out), None, dtype=object)
        if len(out):
            nearest = gpd.sjoin_nearest(footprints, features, how="left", distance_col="_dist")
            nearest = nearest.sort_values(["_row", "_dist", "_name"]).drop_duplicates("_row")
            dist[nearest["_row"].to_numpy()] = nearest["_dist"].to_numpy()
            name[nearest["_row"].to_numpy()] = nearest["_name"].to_numpy()
        out[f"dist_{key}_m"] = dist
        out[f"nearest_{key}"] = name
        out[f"inside_{key}"] = dist == 0
    return out


def write_sites(sites: gpd.GeoDataFrame, folder: str | Path, stem: str) -> dict[str, Path]:
    """Write sites as GeoJSON (WGS84), GeoPackage (EPSG:2154) and a geometry-free CSV with centroid columns.

    Returns:
        {"geojson": path, "gpkg": path, "csv": path}, each written atomically.

    Raises:
        InvalidInputError: `stem` is empty or holds a path separator, or sites have no CRS.
    """
    if not stem or "/" in stem or "\\" in stem:
        raise InvalidInputError(f"stem {stem!r}: give a plain file name without suffix")
    if sites.crs is None:
        raise InvalidInputError("sites: no CRS")
    folder = Path(folder)
    frame = sites.to_crs(LAMBERT93)
    if any(c not in frame.columns for c in CENTROID_COLUMNS):
        frame = add_centroids(frame)
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    return {
        "geojson": write_vector(frame, folder / f"{stem}.geojson"),
        "gpkg": write_vector(frame, folder / f"{stem}.gpkg"),
        "csv": write_csv(table, folder / f"{stem}.csv"),
    }
