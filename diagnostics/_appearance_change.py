"""Dump candidates without labels: ground whose appearance turned bare and heterogeneous between two image passes.

A dump is new material on the ground: where vegetation or a smooth surface was, a pass later shows bright, mixed
rubble. Given two multi-band passes of a place (Sentinel-2, orthophoto RGB or RGB + NIR), candidates are connected
areas where (a) vegetation dropped (NDVI fell) or, with SWIR, the bare-soil index rose, or, without NIR, brightness
rose; and (b) the after pass is heterogeneous there (local coefficient of variation of brightness). The after pass
is first put into the before pass's radiometry, band by band, by a robust linear fit on the pixels that did not
change, so a haze or gain change alone finds nothing. Harvested fields, building sites and cloud edges change this
way too: these are « candidats », never validated detections, in every output.

Both passes are read whole into memory on their common grid (a commune at 0.2 m, not a département).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.windows import Window, from_bounds
from scipy import ndimage
from shapely.geometry import shape

from geovigie.bands import S2_BANDS, canonical_s2_name
from geovigie.diagnostics._dump_change import _building_mask, describe_candidates
from geovigie.diagnostics._dumps import (
    SITE_COLUMNS,
    _clean,
    _empty_sites,
    _is_metric,
    _join_communes,
    _open,
    _prepare_zones,
    _sieve_size,
    add_centroids,
    iso_pass_date,
)
from geovigie.errors import DiagnosticsWarning, GridMismatchError, InvalidInputError, InvalidRasterError
from geovigie.types import LAMBERT93

ROLES = ("blue", "green", "red", "nir", "swir16")
"""Bands used, by common name; green and red are required (an IRC orthophoto has no blue), the others used when
both passes have them."""
_ALIASES = {"b": "blue", "bleu": "blue", "g": "green", "vert": "green", "r": "red", "rouge": "red",
            "nir08": None, "pir": "nir", "infrared": "nir", "swir1": "swir16", "swir": "swir16"}
_COLOURS = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}
DEFAULT_MIN_NDVI_DROP = 0.2
"""NDVI must fall by more than 0.2: above the 99.9th percentile (0.15-0.16) of the drop between the two clear
Sentinel-2 passes of the shipped Slovenia patch (scenes 2 and 3, either way)."""
DEFAULT_MIN_BSI_RISE = 0.15
"""Bare-soil index ((SWIR + red) - (NIR + blue)) / (sum) must rise by more than 0.15 (with SWIR)."""
DEFAULT_MIN_BRIGHTNESS_RISE = 0.2
"""Without NIR: brightness (mean of the visible bands) must rise by more than 20 % of its before value. On the
Slovenia passes 2 -> 3 as red, green, blue only: no candidate over 400 m² (0.1: 2, 2 396 m²); the synthetic
40 × 40 m patch found within ±25 % 14/16 (its pixels darker than 1.2 × the forest are missed)."""
DEFAULT_MIN_TEXTURE = 0.1
"""Changed pixels heterogeneous when the after pass's brightness std / mean over the changed pixels of the window is
above 0.1. Measured on the Slovenia passes 3 -> 2 (2015-08-30 -> 09-09) with a synthetic 40 × 40 m bare patch,
reflectances × (1 + s N(0, 1)), 8 seeds × 2 places: found within ±25 % of its area 16/16 at s = 0.35, 12/16 at
s = 0.25 (threshold 0.15, pair 2 -> 3: 14/16 and 8/16); a uniform patch (s = 0) is never found; the clear pair
alone gives nothing at 0.08-0.15."""
DEFAULT_WINDOW_PX = 3
MIN_FIT_PX = 100
"""Fewer valid pixels than this and the passes cannot be put into one radiometry."""
MIN_FIT_R = 0.5
"""A band whose before/after correlation on unchanged pixels is below this: the passes are not comparable (cloud,
haze, another season): a warning, and the column `normalisation_r` carries the weakest band's figure."""
APPEARANCE_NOTE = ("candidat (candidate): the ground turned bare and heterogeneous between two image passes; not a "
                   "validated dump detection (harvests, building sites and clouds change too): check on site "
                   "before any action")
APPEARANCE_COLUMNS = [*SITE_COLUMNS, "ndvi_drop_mean", "bsi_rise_mean", "brightness_rise_mean", "texture_mean",
                      "normalisation_r"]


@dataclass(frozen=True)
class AppearanceChange:
    """The candidates and what was measured on the two passes' common grid."""

    candidates: gpd.GeoDataFrame
    bands: tuple[str, ...]
    """Common names of the bands used (green, red, and blue, nir, swir16 when both passes have them)."""
    gains: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per band, (gain, offset) with after ≈ gain × before + offset on unchanged pixels."""
    fit_r: dict[str, float] = field(default_factory=dict)
    """Per band, before/after correlation on the pixels the fit kept."""
    crs: str = ""
    shape: tuple[int, int] = (0, 0)
    resampled: str | None = None
    """Name of the pass resampled onto the other's grid, or None."""
    comparable: bool = True
    """False when a band's fit correlation is below MIN_FIT_R (cloud, haze, season): expect false candidates."""


def band_roles(src: rasterio.DatasetReader, path: Path, names: Sequence[str] | None = None) -> dict[str, int]:
    """1-based band index of each role a raster has, from `names` (one per band, given by the user), band
    descriptions (`B04`, `red`...) or colour interpretation (an RGB orthophoto)."""
    roles: dict[str, int] = {}
    if names is not None and len(names) != src.count:
        raise InvalidInputError(f"{path}: {src.count} band(s), but {len(names)} band names given "
                                f"({', '.join(names)})")
    for index, text in enumerate(names if names is not None else src.descriptions, start=1):
        if not text:
            continue
        name = canonical_s2_name(text.strip())
        role = S2_BANDS[name][0] if name in S2_BANDS else _ALIASES.get(text.strip().lower(), text.strip().lower())
        if names is not None and role not in ROLES and name not in S2_BANDS and role != "other":
            raise InvalidInputError(f"band name {text!r}: use blue, green, red, nir, swir16, a Sentinel-2 band "
                                    "(B04) or 'other'")
        if role in ROLES and role not in roles:
            roles[role] = index
    if not roles:
        for index, colour in enumerate(src.colorinterp, start=1):
            if colour in _COLOURS and _COLOURS[colour] not in roles:
                roles[_COLOURS[colour]] = index
    missing = [r for r in ("green", "red") if r not in roles]
    if missing:
        described = ", ".join(d or "?" for d in src.descriptions)
        raise InvalidRasterError(f"{path}: no {', '.join(missing)} band among its {src.count} band(s) ({described}); "
                                 "name bands by description (B02/B03/B04/B08/B11 or blue/green/red/nir/swir16), "
                                 "colour interpretation, or give band names (--bands)")
    return roles


_Bands = dict[str, np.ndarray]


def _read_passes(before: Path, after: Path, need_nir: bool,
                 names: Sequence[str] | None) -> tuple[_Bands, _Bands, Affine, rasterio.crs.CRS, str | None]:
    """Both passes' role bands as float64 (NaN = nodata) on the coarser pass's grid cut to their overlap."""
    with _open(before) as first, _open(after) as second:
        roles_first, roles_second = band_roles(first, before, names), band_roles(second, after, names)
        for src, path in ((first, before), (second, after)):
            if not _is_metric(src.crs):
                raise InvalidRasterError(f"{path}: CRS {src.crs.to_string()} is not projected in metres; "
                                         "areas need metres")
        if need_nir:
            for roles, path, src in ((roles_first, before, first), (roles_second, after, second)):
                if "nir" not in roles:
                    raise InvalidRasterError(f"{path}: no NIR band (B08 or nir) for NDVI among "
                                             f"{', '.join(d or '?' for d in src.descriptions)}")
        if first.crs != second.crs:
            raise GridMismatchError(f"{after}: CRS {second.crs.to_string()} differs from {before}'s "
                                    f"{first.crs.to_string()}; reproject one (gdalwarp -t_srs)")
        west, south = max(first.bounds.left, second.bounds.left), max(first.bounds.bottom, second.bounds.bottom)
        east, north = min(first.bounds.right, second.bounds.right), min(first.bounds.top, second.bounds.top)
        if west >= east or south >= north:
            raise GridMismatchError(f"{after} does not overlap {before}")
        names = [r for r in ROLES if r in roles_first and r in roles_second]
        swap = abs(second.transform.a * second.transform.e) > abs(first.transform.a * first.transform.e)
        ref, other = (second, first) if swap else (first, second)
        ref_roles, other_roles = (roles_second, roles_first) if swap else (roles_first, roles_second)
        window = from_bounds(west, south, east, north, transform=ref.transform).round_offsets().round_lengths()
        if window.width < 1 or window.height < 1:
            raise GridMismatchError(f"{before} and {after}: they overlap by less than one pixel")
        transform = ref.window_transform(window)
        base = {r: ref.read(ref_roles[r], window=window, masked=True).astype(np.float64).filled(np.nan) for r in names}
        height, width = next(iter(base.values())).shape
        shift = ~other.transform * (transform.c, transform.f)
        aligned = (other.transform.a == transform.a and other.transform.e == transform.e
                   and other.transform.b == other.transform.d == 0
                   and all(abs(v - round(v)) < 1e-6 for v in shift))
        moved = {}
        for r in names:
            if aligned:
                moved[r] = other.read(other_roles[r], window=Window(round(shift[0]), round(shift[1]), width, height),
                                      masked=True, boundless=True).astype(np.float64).filled(np.nan)
            else:
                finer = abs(other.transform.a * other.transform.e) < abs(transform.a * transform.e)
                moved[r] = np.full((height, width), np.nan)
                rasterio.warp.reproject(rasterio.band(other, other_roles[r]), moved[r], dst_transform=transform,
                                        dst_crs=ref.crs, dst_nodata=np.nan,
                                        resampling=rasterio.warp.Resampling.average if finer
                                        else rasterio.warp.Resampling.bilinear)
        crs = ref.crs
    old, new = (moved, base) if swap else (base, moved)
    return old, new, transform, crs, None if aligned else (before.name if swap else after.name)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Robust reduced-major-axis fit y ≈ gain × x + offset: refitted 5 times on pixels within 3 robust standard
    deviations of the line (changed pixels drop out). Returns gain, offset and the correlation on kept pixels."""
    keep = np.ones(x.shape, dtype=bool)
    gain, offset, r = 1.0, 0.0, 0.0
    for _ in range(5):
        xs, ys = x[keep], y[keep]
        sx, sy = float(xs.std()), float(ys.std())
        r = float(np.corrcoef(xs, ys)[0, 1]) if sx > 0 and sy > 0 else 0.0
        gain = sy / sx if sx > 0 and sy > 0 else 1.0
        offset = float(ys.mean()) - gain * float(xs.mean())
        residual = y - (gain * x + offset)
        spread = 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep]))))
        if spread == 0:
            break
        kept = np.abs(residual - np.median(residual[keep])) <= 3 * spread
        if kept.sum() < MIN_FIT_PX or np.array_equal(kept, keep):
            break
        keep = kept
    return gain, offset, r


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, np.nan)


def _indices(bands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    visible = [bands[r] for r in ("blue", "green", "red") if r in bands]
    out = {"brightness": np.mean(np.stack(visible), axis=0)}
    if "nir" in bands:
        out["ndvi"] = _ratio(bands["nir"] - bands["red"], bands["nir"] + bands["red"])
    if "nir" in bands and "swir16" in bands and "blue" in bands:
        out["bsi"] = _ratio(bands["swir16"] + bands["red"] - bands["nir"] - bands["blue"],
                            bands["swir16"] + bands["red"] + bands["nir"] + bands["blue"])
    return out


def _texture(brightness: np.ndarray, within: np.ndarray, window: int) -> np.ndarray:
    """Local coefficient of variation of brightness (std / mean) in a `window` square, over the `within` pixels
    only (the changed ones: the contrast between a new patch and the unchanged ground around it is not texture);
    NaN where fewer than 3 such pixels."""
    values = np.where(within, brightness, 0.0)
    count = ndimage.uniform_filter(within.astype(np.float64), window, mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = ndimage.uniform_filter(values, window, mode="constant") / count
        square = ndimage.uniform_filter(values**2, window, mode="constant") / count
        enough = within & (count * window**2 >= 3 - 1e-9)
        return np.where(enough, np.sqrt(np.maximum(square - mean**2, 0.0)) / np.abs(mean), np.nan)


def _check(options: dict[str, float], window_px: int) -> None:
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise InvalidInputError(f"{name} {value!r}: must be a finite number >= 0")
    if isinstance(window_px, bool) or not isinstance(window_px, int) or window_px < 3 or window_px % 2 == 0:
        raise InvalidInputError(f"window_px {window_px!r}: must be an odd whole number of pixels >= 3")


def appearance_change_candidates(
    before: str | Path,
    after: str | Path,
    *,
    pass_date: date | datetime,
    min_ndvi_drop: float = DEFAULT_MIN_NDVI_DROP,
    min_bsi_rise: float = DEFAULT_MIN_BSI_RISE,
    min_brightness_rise: float = DEFAULT_MIN_BRIGHTNESS_RISE,
    min_texture: float = DEFAULT_MIN_TEXTURE,
    window_px: int = DEFAULT_WINDOW_PX,
    min_area_m2: float = 400.0,
    require_nir: bool = False,
    band_names: Sequence[str] | None = None,
    exclude: gpd.GeoDataFrame | None = None,
    zones: gpd.GeoDataFrame | None = None,
) -> AppearanceChange:
    """Candidate dumps: connected areas whose appearance turned bare and heterogeneous between two passes.

    1. Bands by role (green, red; blue, nir and swir16 when both passes have them) from `band_names` (one per
       band, for files whose bands are not described), band descriptions (S2 names or common names) or RGB
       colour interpretation; both passes go on the coarser grid cut to their overlap, the other resampled
       when its pixels do not line up (as `height_change_candidates`).
    2. Radiometry: per band, a robust reduced-major-axis fit after ≈ gain × before + offset on pixels valid in
       both (changed pixels trimmed as outliers); after is mapped back, (after - offset) / gain.
    3. A pixel changed when NDVI dropped more than `min_ndvi_drop` or (with SWIR) the bare-soil index rose more
       than `min_bsi_rise`; without NIR, when brightness rose more than `min_brightness_rise` × its before value.
       Brightness is the mean of the visible bands. A changed pixel is heterogeneous when the after pass's
       brightness std / mean over the changed pixels of its `window_px` square (3 at least) is above
       `min_texture`: a uniform bare field is not, and the edge of a patch against unchanged ground is not
       counted as texture. Pixels both changed and
       heterogeneous, outside `exclude` footprints, are sieved (groups and holes under `min_area_m2`),
       vectorised, and those under `min_area_m2` dropped.

    Raises:
        InputNotFoundError: a pass does not exist.
        InvalidRasterError: unreadable, no CRS, CRS not in metres, no green/red band, or no NIR band when
            `require_nir`.
        GridMismatchError: the passes' CRS differ or they do not overlap.
        InvalidInputError: an option out of range, too few valid pixels, an exclusion layer without CRS or
            polygons, `band_names` not one per band or holding an unknown name.
    """
    _check({"min_ndvi_drop": min_ndvi_drop, "min_bsi_rise": min_bsi_rise, "min_brightness_rise": min_brightness_rise,
            "min_texture": min_texture, "min_area_m2": min_area_m2}, window_px)
    pass_iso = iso_pass_date(pass_date)
    zone_frame = _prepare_zones(zones) if zones is not None else None
    before, after = Path(before), Path(after)
    old, new, transform, crs, resampled = _read_passes(before, after, require_nir, band_names)
    valid = np.logical_and.reduce([np.isfinite(a) for a in (*old.values(), *new.values())])
    if valid.sum() < MIN_FIT_PX:
        raise InvalidInputError(f"{before} / {after}: only {int(valid.sum())} pixels valid in both passes "
                                f"(at least {MIN_FIT_PX} needed to match their radiometry)")
    gains, fit_r, normal = {}, {}, {}
    for role in old:
        gain, offset, r = _fit(old[role][valid], new[role][valid])
        gains[role], fit_r[role] = (gain, offset), r
        normal[role] = (new[role] - offset) / gain
    weakest = min(fit_r.values())
    if weakest < MIN_FIT_R:
        role = min(fit_r, key=fit_r.__getitem__)
        warnings.warn(f"{before} / {after}: band {role} correlates at r = {weakest:.2f} on unchanged ground; the "
                      "passes are hardly comparable (cloud, haze, season): expect false candidates",
                      DiagnosticsWarning, stacklevel=2)
    first, second = _indices(old), _indices(normal)
    if "ndvi" in first:
        ndvi_drop = first["ndvi"] - second["ndvi"]
        changed = np.nan_to_num(ndvi_drop) > min_ndvi_drop
    else:
        ndvi_drop = np.full(valid.shape, np.nan)
        changed = np.nan_to_num(_ratio(second["brightness"] - first["brightness"], first["brightness"])) \
            > min_brightness_rise
    bsi_rise = second["bsi"] - first["bsi"] if "bsi" in first else np.full(valid.shape, np.nan)
    changed |= np.nan_to_num(bsi_rise) > min_bsi_rise
    texture = _texture(second["brightness"], valid & changed, window_px)
    excluded = _building_mask(_footprints(exclude), valid.shape, transform, crs)
    found = valid & ~excluded & changed & (np.nan_to_num(texture) > min_texture)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    found = _clean(found, _sieve_size(None, min_area_m2, pixel_area)) & valid & ~excluded
    labels, count = ndimage.label(found, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    sites = _polygons(labels, transform, crs)
    if count:
        ids = sites["_label"].to_numpy()
        rise = second["brightness"] - first["brightness"]
        for column, values in (("ndvi_drop_mean", ndvi_drop), ("bsi_rise_mean", bsi_rise),
                               ("brightness_rise_mean", rise), ("texture_mean", texture)):
            sites[column] = np.asarray(ndimage.mean(np.nan_to_num(values, nan=np.nan), labels, ids), dtype=float)
    sites = sites[sites["area_m2"] >= min_area_m2].sort_values("area_m2", ascending=False, kind="stable")
    if sites.empty:
        frame = _empty_sites(pass_iso)
        for column in APPEARANCE_COLUMNS[len(SITE_COLUMNS):]:
            frame[column] = frame["area_m2"].copy()
    else:
        frame = _describe(add_centroids(sites.reset_index(drop=True)), pass_iso, before, after)
        if zone_frame is not None:
            frame = _join_communes(frame, zone_frame)
    frame["normalisation_r"] = weakest
    frame = gpd.GeoDataFrame(frame[[*APPEARANCE_COLUMNS, "geometry"]], geometry="geometry", crs=LAMBERT93)
    frame.attrs["pass_date"] = pass_iso
    return AppearanceChange(frame, tuple(old), gains, fit_r, crs.to_string(), valid.shape, resampled,
                            weakest >= MIN_FIT_R)


def _footprints(exclude: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """The exclusion layer's polygons, or a clear error naming it."""
    if exclude is None:
        return None
    if not isinstance(exclude, gpd.GeoDataFrame) or exclude.crs is None:
        raise InvalidInputError("exclusion footprints: expected a GeoDataFrame with a CRS")
    kept = exclude[exclude.geometry.notna() & ~exclude.geometry.is_empty]
    if not kept.geom_type.isin(["Polygon", "MultiPolygon"]).any():
        raise InvalidInputError("exclusion footprints: no polygon in the layer (give building or site outlines)")
    return kept


def _polygons(labels: np.ndarray, transform: Affine, crs: rasterio.crs.CRS) -> gpd.GeoDataFrame:
    """One (multi)polygon per label, in EPSG:2154, with its area."""
    pieces = [(shape(g), int(v)) for g, v in rasterio.features.shapes(labels.astype(np.int32), mask=labels > 0,
                                                                      connectivity=4, transform=transform)]
    frame = gpd.GeoDataFrame({"_label": [v for _, v in pieces]}, geometry=[g for g, _ in pieces], crs=crs)
    frame = frame.dissolve("_label", as_index=False) if len(frame) else frame
    frame = frame.to_crs(LAMBERT93)
    frame["area_m2"] = frame.geometry.area
    return frame


def _describe(sites: gpd.GeoDataFrame, pass_iso: str, before: Path, after: Path) -> gpd.GeoDataFrame:
    sites = describe_candidates(sites, pass_iso, before, after, layer_kind="appearance change", note=APPEARANCE_NOTE)
    for column in ("volume_m3", "volume_uncertainty_m3", "valid_fraction", "height_max_m", "height_mean_m"):
        sites[column] = np.nan
    sites["volume_note"] = "no height model: appearance change only"
    return sites
