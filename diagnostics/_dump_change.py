"""Dump candidates without labels: ground that rose between two height models of a place.

A dump is new material on the ground. Given a height model before and after (IGN LiDAR HD passes, photogrammetric
DSMs), candidates are connected areas whose height rose more than a threshold, outside buildings when a footprint
layer is given. Each gets its area, the volume added (the dump volume integrator of `_dumps`, on after − before)
and an uncertainty from the height noise measured on stable ground. Growing trees, new buildings and parked
lorries rise too: these are « candidats », never validated detections, in every output. The passes must be
co-registered: on the shipped Montpellier DSM, the same pass shifted 1 m east gives 16 false candidates (building
edges, tree crowns; 962 m², 3 212 m³), shifted 0.5 m none above 20 m².

Both models are read whole into memory on their common grid (a commune at 0.5 m, not a département).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.windows import Window, from_bounds
from scipy import ndimage
from shapely.geometry import shape

from geovigie.diagnostics._dumps import (
    SITE_COLUMNS,
    _clean,
    _detection_ids,
    _empty_sites,
    _is_metric,
    _join_communes,
    _open,
    _prepare_zones,
    _sieve_size,
    add_centroids,
    iso_pass_date,
    volumes_on,
)
from geovigie.errors import DiagnosticsWarning, GridMismatchError, InvalidInputError, InvalidRasterError
from geovigie.types import LAMBERT93

DEFAULT_MIN_RISE_M = 0.5
"""A pixel is raised when it stands more than 0.5 m higher after than before: about 3.5 times the noise of the
difference of two LiDAR HD passes (√2 × 0.1 m), low enough for a tipped load of rubble or green waste."""
FALLBACK_NOISE_M = math.sqrt(2) * 0.1
"""Noise of a difference of two LiDAR HD models (0.1 m each, independent) when no stable ground measures it."""
MIN_STABLE_PX = 100
"""Fewer stable pixels than this and the noise is not measured (FALLBACK_NOISE_M, with a warning)."""
MAD_TO_STD = 1.4826
"""Median absolute deviation × 1.4826 = standard deviation of a normal law: a noise estimate trees cannot inflate."""
CHANGE_NOTE = ("candidat (candidate): the ground rose between two height models; not a validated dump detection "
               "(new buildings, growing trees and vehicles rise too): check on site before any action")
CHANGE_COLUMNS = [*SITE_COLUMNS, "rise_threshold_m", "vertical_offset_m", "noise_m"]


@dataclass(frozen=True)
class HeightChange:
    """The candidates and what was measured on the two models' common grid."""

    candidates: gpd.GeoDataFrame
    noise_m: float
    """Robust standard deviation of after − before on stable ground (outside candidates and buildings)."""
    vertical_offset_m: float
    """Median of after − before on ground that did not rise: subtracted from after before thresholding."""
    stable_px: int
    crs: str
    shape: tuple[int, int]
    resampled: str | None
    """Name of the model resampled onto the other's grid (the finer one, or after at equal pixel size), or None."""


def _read_on_common_grid(before: Path, after: Path) -> tuple[np.ndarray, np.ndarray, Affine, rasterio.crs.CRS,
                                                              str | None]:
    """Both models as float64 arrays (NaN = nodata) on the coarser model's grid cut to their overlap.

    Equal pixel sizes: the before model's grid. The other model is read directly when its pixels line up, else
    resampled onto that grid (average from a finer grid, bilinear otherwise). Also returns the resampled file's
    name, or None.
    """
    with _open(before) as first, _open(after) as second:
        for src, path in ((first, before), (second, after)):
            if src.count != 1:
                raise InvalidRasterError(f"{path}: {src.count} bands; give a single-band height model")
            if not _is_metric(src.crs):
                raise InvalidRasterError(f"{path}: CRS {src.crs.to_string()} is not projected in metres; "
                                         "volumes need metres")
        if first.crs != second.crs:
            raise GridMismatchError(f"{after}: CRS {second.crs.to_string()} differs from {before}'s "
                                    f"{first.crs.to_string()}; reproject one (gdalwarp -t_srs)")
        west, south = max(first.bounds.left, second.bounds.left), max(first.bounds.bottom, second.bounds.bottom)
        east, north = min(first.bounds.right, second.bounds.right), min(first.bounds.top, second.bounds.top)
        if west >= east or south >= north:
            raise GridMismatchError(f"{after} (bounds {tuple(round(b, 1) for b in second.bounds)}) does not overlap "
                                    f"{before} (bounds {tuple(round(b, 1) for b in first.bounds)})")
        swap = abs(second.transform.a * second.transform.e) > abs(first.transform.a * first.transform.e)
        ref, other = (second, first) if swap else (first, second)
        window = from_bounds(west, south, east, north, transform=ref.transform).round_offsets().round_lengths()
        if window.width < 1 or window.height < 1:
            raise GridMismatchError(f"{before} and {after}: they overlap by less than one pixel")
        transform = ref.window_transform(window)
        base = ref.read(1, window=window, masked=True).astype(np.float64).filled(np.nan)
        shift = ~other.transform * (transform.c, transform.f)
        aligned = (other.transform.a == transform.a and other.transform.e == transform.e
                   and other.transform.b == other.transform.d == 0
                   and all(abs(v - round(v)) < 1e-6 for v in shift))
        if aligned:
            moved = other.read(1, window=Window(round(shift[0]), round(shift[1]), base.shape[1], base.shape[0]),
                               masked=True, boundless=True).astype(np.float64).filled(np.nan)
        else:
            finer = abs(other.transform.a * other.transform.e) < abs(transform.a * transform.e)
            moved = np.full(base.shape, np.nan)
            rasterio.warp.reproject(rasterio.band(other, 1), moved, dst_transform=transform, dst_crs=ref.crs,
                                    dst_nodata=np.nan, resampling=rasterio.warp.Resampling.average if finer
                                    else rasterio.warp.Resampling.bilinear)
        crs = ref.crs
    old, new = (moved, base) if swap else (base, moved)
    old[~np.isfinite(old)] = np.nan
    new[~np.isfinite(new)] = np.nan
    return old, new, transform, crs, None if aligned else (before.name if swap else after.name)


def _building_mask(buildings: gpd.GeoDataFrame | None, shape_: tuple[int, int], transform: Affine,
                   crs: rasterio.crs.CRS) -> np.ndarray:
    """Pixels touched by a building footprint (all_touched: a roof edge never leaks into a candidate)."""
    if buildings is None:
        return np.zeros(shape_, dtype=bool)
    if not isinstance(buildings, gpd.GeoDataFrame) or buildings.crs is None:
        raise InvalidInputError("buildings: expected a GeoDataFrame with a CRS")
    kept = buildings[buildings.geometry.notna() & ~buildings.geometry.is_empty]
    polygons = kept[kept.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise InvalidInputError("buildings: no polygon footprint in the layer")
    geoms = list(polygons.to_crs(crs).geometry)
    return rasterio.features.rasterize(((g, 1) for g in geoms), out_shape=shape_, transform=transform, fill=0,
                                       dtype="uint8", all_touched=True).astype(bool)


def _robust_noise(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation of a difference on stable ground."""
    median = float(np.median(values))
    return median, MAD_TO_STD * float(np.median(np.abs(values - median)))


@contextmanager
def _as_datasets(after: np.ndarray, before: np.ndarray, transform: Affine,
                 crs: rasterio.crs.CRS) -> Iterator[tuple[rasterio.DatasetReader, rasterio.DatasetReader]]:
    """The two aligned models as in-memory GeoTIFFs (NaN = nodata), as the volume integrator reads them."""
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "height": after.shape[0], "width": after.shape[1],
               "crs": crs, "transform": transform, "nodata": np.nan}
    with MemoryFile() as mem_after, MemoryFile() as mem_before:
        for mem, array in ((mem_after, after), (mem_before, before)):
            with mem.open(**profile) as dst:
                dst.write(array.astype(np.float32), 1)
        with mem_after.open() as surface, mem_before.open() as terrain:
            yield surface, terrain


def _check(min_rise_m: float, min_area_m2: float) -> None:
    for name, value, low in (("min_rise_m", min_rise_m, 0.0), ("min_area_m2", min_area_m2, 0.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value < math.inf:
            raise InvalidInputError(f"{name} {value!r}: must be a finite number >= {low:g}")
    if min_rise_m == 0:
        raise InvalidInputError("min_rise_m 0: the rise threshold must be above 0 m (noise alone would cross it)")


def height_change_candidates(
    before: str | Path,
    after: str | Path,
    *,
    pass_date: date | datetime,
    min_rise_m: float = DEFAULT_MIN_RISE_M,
    min_area_m2: float = 20.0,
    buildings: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
) -> HeightChange:
    """Candidate dumps: connected areas that rose more than `min_rise_m` between two height models.

    1. Both models go on the coarser model's grid (before's at equal pixel size) cut to their overlap, the other
       resampled (average from a finer grid, else bilinear) when its pixels do not line up; pixels where either
       has no data are left out of detection.
    2. Vertical alignment: the median of after − before over pixels that did not move more than `min_rise_m`
       (outside buildings) is a systematic shift between the passes; it is subtracted from after.
    3. Raised pixels (rise > `min_rise_m`, outside building footprints) are sieved like dump layers
       (4-connectivity; groups and holes under `min_area_m2` removed / filled, so a nodata hole inside a pile does
       not split it), vectorised, and those under `min_area_m2` dropped.
    4. Noise: robust standard deviation (1.4826 × MAD) of the aligned difference on stable ground, i.e. valid
       pixels outside buildings and outside the candidates grown by 2 pixels.
    5. Per candidate, the volume integrator of `site_volumes` on after − before: Σ rise × pixel area over the
       pixels rising more than `min_rise_m`, nodata gaps filled from their neighbours, with the uncertainty of
       the measured noise taken as correlated over the footprint (noise × counted area, plus the gaps' spread).

    Returns:
        A `HeightChange` whose `candidates` have the dump site columns (`height_*` columns hold the rise, every
        row `candidate` True with `CHANGE_NOTE`) plus `rise_threshold_m`, `vertical_offset_m` and `noise_m`.

    Raises:
        InputNotFoundError: a model does not exist.
        InvalidRasterError: unreadable, no CRS, several bands or a CRS not in metres.
        GridMismatchError: the models' CRS differ, or they do not overlap.
        InvalidInputError: an option out of range, or a building layer without CRS or polygons.
    """
    _check(min_rise_m, min_area_m2)
    pass_iso = iso_pass_date(pass_date)
    zone_frame = _prepare_zones(zones) if zones is not None else None
    before, after = Path(before), Path(after)
    old, new, transform, crs, resampled = _read_on_common_grid(before, after)
    valid = np.isfinite(old) & np.isfinite(new)
    built = _building_mask(buildings, old.shape, transform, crs)
    rise = np.where(valid, new - old, np.nan)
    still = valid & ~built & (np.abs(np.nan_to_num(rise)) <= min_rise_m)
    offset = float(np.median(rise[still])) if still.sum() >= MIN_STABLE_PX else 0.0
    rise -= offset
    raised = valid & ~built & (np.nan_to_num(rise) > min_rise_m)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    raised = _clean(raised, _sieve_size(None, min_area_m2, pixel_area)) & ~built
    polygons = [shape(g) for g, _ in rasterio.features.shapes(raised.astype(np.uint8), mask=raised, connectivity=4,
                                                              transform=transform)]
    sites = gpd.GeoDataFrame(geometry=polygons, crs=crs).to_crs(LAMBERT93)
    sites["area_m2"] = sites.geometry.area
    sites = sites[sites["area_m2"] >= min_area_m2].sort_values("area_m2", ascending=False, kind="stable")
    footprint = rasterio.features.rasterize(((g, 1) for g in sites.to_crs(crs).geometry), out_shape=old.shape,
                                            transform=transform, fill=0, dtype="uint8",
                                            all_touched=True).astype(bool) if len(sites) else np.zeros_like(valid)
    stable = valid & ~built & ~_grow(footprint, 2)
    if stable.sum() >= MIN_STABLE_PX:
        _, noise = _robust_noise(rise[stable])
    else:
        noise = FALLBACK_NOISE_M
        warnings.warn(f"{before} / {after}: only {int(stable.sum())} stable pixels; height noise not measured, "
                      f"{noise:.2f} m assumed (two LiDAR HD passes)", DiagnosticsWarning, stacklevel=2)
    if sites.empty:
        frame = _empty_sites(pass_iso)
    else:
        frame = describe_candidates(add_centroids(sites.reset_index(drop=True)), pass_iso, before, after)
        with _as_datasets(old + rise, old, transform, crs) as (surface, terrain):
            frame = volumes_on(frame, surface, terrain, min_height_m=float(min_rise_m), noise_m=noise)
        if zone_frame is not None:
            frame = _join_communes(frame, zone_frame)
    frame["rise_threshold_m"] = float(min_rise_m)
    frame["vertical_offset_m"] = offset
    frame["noise_m"] = noise
    frame = gpd.GeoDataFrame(frame[[*CHANGE_COLUMNS, "geometry"]], geometry="geometry", crs=LAMBERT93)
    frame.attrs["pass_date"] = pass_iso
    return HeightChange(frame, noise, offset, int(stable.sum()), crs.to_string(), old.shape, resampled)


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` dilated by `pixels` steps of 4-connected neighbours."""
    return ndimage.binary_dilation(mask, iterations=pixels) if pixels > 0 else mask.copy()


def describe_candidates(sites: gpd.GeoDataFrame, pass_iso: str, before: Path, after: Path, *,
                        layer_kind: str = "height change", note: str = CHANGE_NOTE) -> gpd.GeoDataFrame:
    """The dump-site columns of change candidates between two passes (ids, area, pass, « candidat » labels)."""
    sites["detection_id"] = _detection_ids(pass_iso, sites["centroid_x_l93"].to_numpy(),
                                           sites["centroid_y_l93"].to_numpy(), sites["area_m2"].to_numpy())
    sites["area_ha"] = sites["area_m2"] / 10_000
    sites["pass_date"] = pass_iso
    sites["candidate"] = True
    sites["source_kind"] = "candidate"
    sites["layer_kind"] = layer_kind
    sites["source_layer"] = f"{before.name} -> {after.name}"
    sites["note"] = note
    sites["mean_confidence"] = sites["max_confidence"] = np.nan
    sites["commune_code"], sites["commune_name"] = None, None
    return sites
