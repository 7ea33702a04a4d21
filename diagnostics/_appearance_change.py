"""Dump candidates without labels: ground whose appearance turned bare and heterogeneous between two image passes.

A dump is new material on the ground: where vegetation or a smooth surface was, a pass later shows bright, mixed
rubble. Given two multi-band passes of a place (Sentinel-2, orthophoto RGB or RGB + NIR), candidates are connected
areas where (a) vegetation dropped (NDVI fell) or, with SWIR, the bare-soil index rose, or, without NIR, brightness
rose; and (b) the after pass is heterogeneous there (local coefficient of variation of brightness). The after pass
is first put into the before pass's radiometry, band by band, by a robust linear fit on the pixels that did not
change, so a haze or gain change alone finds nothing. Harvested fields, building sites and cloud edges change this
way too: these are « candidats », never validated detections, in every output.

The passes are read block by block on their common grid (`_windowed`): memory stays flat whatever their size (a
département of 0.2 m orthophoto dalles), with the result of the whole-array computation.
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
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from geovigie.bands import S2_BANDS, canonical_s2_name
from geovigie.diagnostics._dump_change import _footprint_layer, describe_candidates
from geovigie.diagnostics._dumps import (
    SITE_COLUMNS,
    _empty_sites,
    _is_metric,
    _join_communes,
    _prepare_zones,
    _sieve_size,
    add_centroids,
    iso_pass_date,
)
from geovigie.diagnostics._windowed import (
    DEFAULT_BLOCK_PX,
    Footprints,
    Outlines,
    PassPair,
    RoleCheck,
    Sieve,
    check_block,
    grown,
    stage,
)
from geovigie.errors import DiagnosticsWarning, InvalidInputError, InvalidRasterError
from geovigie.progress import Progress
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


def _pass_roles(before: Path, after: Path, need_nir: bool, names: Sequence[str] | None) -> RoleCheck:
    def check(first: rasterio.DatasetReader, second: rasterio.DatasetReader) -> tuple[dict[str, int], dict[str, int]]:
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
        order = {r: i for i, r in enumerate(ROLES)}
        return ({r: roles_first[r] for r in sorted(roles_first, key=order.__getitem__)},
                {r: roles_second[r] for r in sorted(roles_second, key=order.__getitem__)})
    return check


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


def _box_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the `window` square around each pixel, zero past the array: the same additions in the same order
    for a pixel wherever the block holding it starts (a block's result is the whole grid's, bit for bit)."""
    padded = np.pad(values, window // 2)
    rows = padded[:, :values.shape[1]].copy()
    for k in range(1, window):
        rows += padded[:, k:k + values.shape[1]]
    out = rows[:values.shape[0]].copy()
    for k in range(1, window):
        out += rows[k:k + values.shape[0]]
    return out


def _texture(brightness: np.ndarray, within: np.ndarray, window: int) -> np.ndarray:
    """Local coefficient of variation of brightness (std / mean) in a `window` square, over the `within` pixels
    only (the changed ones: the contrast between a new patch and the unchanged ground around it is not texture);
    NaN where fewer than 3 such pixels."""
    values = np.where(within, brightness, 0.0)
    count = _box_sum(within.astype(np.float64), window)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = _box_sum(values, window) / count
        square = _box_sum(values**2, window) / count
        enough = within & (count >= 3 - 1e-9)
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
    block_px: int = DEFAULT_BLOCK_PX,
    progress: Progress = False,
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

    The passes are read in blocks of `block_px` × `block_px` pixels plus the texture window's halo (memory flat
    whatever their size): the fit comes from a first pass (`FIT_SAMPLE_PX`), a candidate crossing block edges is
    one candidate, and the sieve is the whole grid's (see `_windowed`); `progress` draws a bar per pass.

    Raises:
        InputNotFoundError: a pass does not exist.
        InvalidRasterError: unreadable, no CRS, CRS not in metres, no green/red band, or no NIR band when
            `require_nir`.
        GridMismatchError: the passes' CRS differ or they do not overlap.
        InvalidInputError: an option out of range (`block_px` under the texture window's halo), too few valid
            pixels, an exclusion layer without CRS or polygons, `band_names` not one per band or holding an unknown
            name.
    """
    _check({"min_ndvi_drop": min_ndvi_drop, "min_bsi_rise": min_bsi_rise, "min_brightness_rise": min_brightness_rise,
            "min_texture": min_texture, "min_area_m2": min_area_m2}, window_px)
    check_block(block_px, window_px // 2, "the texture window")
    pass_iso = iso_pass_date(pass_date)
    zone_frame = _prepare_zones(zones) if zones is not None else None
    footprints = _footprint_layer(exclude, "exclusion footprints", "no polygon in the layer (give building or site "
                                                                   "outlines)")
    before, after = Path(before), Path(after)
    rules = _Rules(min_ndvi_drop, min_bsi_rise, min_brightness_rise, min_texture, window_px)
    with PassPair(before, after, _pass_roles(before, after, require_nir, band_names)) as pair:
        windows = pair.blocks(block_px)
        valid_px, gains, fit_r = _radiometry(pair, windows, progress)
        if valid_px < MIN_FIT_PX:
            raise InvalidInputError(f"{before} / {after}: only {valid_px} pixels valid in both passes "
                                    f"(at least {MIN_FIT_PX} needed to match their radiometry)")
        weakest = min(fit_r.values())
        if weakest < MIN_FIT_R:
            role = min(fit_r, key=fit_r.__getitem__)
            warnings.warn(f"{before} / {after}: band {role} correlates at r = {weakest:.2f} on unchanged ground; "
                          "the passes are hardly comparable (cloud, haze, season): expect false candidates",
                          DiagnosticsWarning, stacklevel=2)
        detect = _Detector(pair, gains, rules, Footprints(footprints, pair.transform, pair.crs))
        sieve = Sieve(pair.height, pair.width, _sieve_size(None, min_area_m2, pair.pixel_area))
        if sieve.active:
            with stage("dumps-appearance: changed ground", len(windows), progress) as advance:
                for window in windows:
                    sieve.add(window, detect(window)["found"])
                    advance(1)
            sieve.resolve()
        outlines = Outlines(pair.width, _MEANS)
        with stage("dumps-appearance: candidates", len(windows), progress) as advance:
            for window in windows:
                block = detect(window)
                outlines.add(window, sieve.apply(window, block["found"]) & block["keep"], block)
                advance(1)
        components = outlines.components(pair.transform)
        crs, shape_, resampled, roles = pair.crs, (pair.height, pair.width), pair.resampled, pair.roles
    sites = gpd.GeoDataFrame({c: [p.sums[c] / p.pixels for p in components] for c in _MEANS},
                             geometry=[p.geometry for p in components], crs=crs).to_crs(LAMBERT93)
    sites["area_m2"] = sites.geometry.area
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
    return AppearanceChange(frame, roles, gains, fit_r, crs.to_string(), shape_, resampled, weakest >= MIN_FIT_R)


_MEANS = ("ndvi_drop_mean", "bsi_rise_mean", "brightness_rise_mean", "texture_mean")
FIT_SAMPLE_PX = 1_000_000
"""The radiometric fit uses every valid pixel of a grid up to this size, else those of a regular lattice (every
k-th row and column, the same whatever the blocks) holding about this many. On real-based 2000² and 3000² pairs the
gains stay within 8e-4 of the fit on every pixel, with the same candidates (BENCHMARKS.md)."""


def _radiometry(pair: PassPair, windows: list[Window],
                progress: Progress) -> tuple[int, dict[str, tuple[float, float]], dict[str, float]]:
    """Valid pixels in both passes, and per band the robust fit (gain, offset) and its correlation (`_fit`), on
    the valid pixels of the sample lattice in raster order."""
    step = max(1, math.ceil(math.sqrt(pair.size / FIT_SAMPLE_PX)))
    index: list[np.ndarray] = []
    olds: dict[str, list[np.ndarray]] = {r: [] for r in pair.roles}
    news: dict[str, list[np.ndarray]] = {r: [] for r in pair.roles}
    valid_px = 0
    with stage("dumps-appearance: radiometry", len(windows), progress) as advance:
        for window in windows:
            old, new = pair.read(window)
            valid = np.logical_and.reduce([np.isfinite(a) for a in (*old.values(), *new.values())])
            valid_px += int(valid.sum())
            rows = np.arange(int(window.row_off), int(window.row_off + window.height))
            cols = np.arange(int(window.col_off), int(window.col_off + window.width))
            valid &= ((rows % step) == 0)[:, None] & ((cols % step) == 0)[None, :]
            index.append((rows[:, None] * pair.width + cols[None, :])[valid])
            for role in pair.roles:
                olds[role].append(old[role][valid])
                news[role].append(new[role][valid])
            advance(1)
    order = np.argsort(np.concatenate(index), kind="stable")
    gains, fit_r = {}, {}
    if valid_px >= MIN_FIT_PX:
        for role in pair.roles:
            gain, offset, r = _fit(np.concatenate(olds[role])[order], np.concatenate(news[role])[order])
            gains[role], fit_r[role] = (gain, offset), r
    return valid_px, gains, fit_r


@dataclass(frozen=True)
class _Rules:
    min_ndvi_drop: float
    min_bsi_rise: float
    min_brightness_rise: float
    min_texture: float
    window_px: int


class _Detector:
    """Changed, heterogeneous pixels of a block (read with the texture window's halo) and the values averaged per
    candidate."""

    def __init__(self, pair: PassPair, gains: dict[str, tuple[float, float]], rules: _Rules,
                 excluded: Footprints) -> None:
        self.pair, self.gains, self.rules, self.excluded = pair, gains, rules, excluded
        self.halo = rules.window_px // 2

    def __call__(self, window: Window) -> dict[str, np.ndarray]:
        rules, halo = self.rules, self.halo
        old, new = self.pair.read(grown(window, halo))
        valid = np.logical_and.reduce([np.isfinite(a) for a in (*old.values(), *new.values())])
        normal = {r: (new[r] - self.gains[r][1]) / self.gains[r][0] for r in new}
        first, second = _indices(old), _indices(normal)
        if "ndvi" in first:
            ndvi_drop = first["ndvi"] - second["ndvi"]
            changed = np.nan_to_num(ndvi_drop) > rules.min_ndvi_drop
        else:
            ndvi_drop = np.full(valid.shape, np.nan)
            changed = np.nan_to_num(_ratio(second["brightness"] - first["brightness"], first["brightness"])) \
                > rules.min_brightness_rise
        bsi_rise = second["bsi"] - first["bsi"] if "bsi" in first else np.full(valid.shape, np.nan)
        changed |= np.nan_to_num(bsi_rise) > rules.min_bsi_rise
        texture = _texture(second["brightness"], valid & changed, rules.window_px)
        core = (slice(halo, halo + int(window.height)), slice(halo, halo + int(window.width)))
        keep = valid[core] & ~self.excluded.mask(window)
        return {"found": keep & changed[core] & (np.nan_to_num(texture[core]) > rules.min_texture), "keep": keep,
                "ndvi_drop_mean": ndvi_drop[core], "bsi_rise_mean": bsi_rise[core],
                "brightness_rise_mean": (second["brightness"] - first["brightness"])[core],
                "texture_mean": texture[core]}


def _describe(sites: gpd.GeoDataFrame, pass_iso: str, before: Path, after: Path) -> gpd.GeoDataFrame:
    sites = describe_candidates(sites, pass_iso, before, after, layer_kind="appearance change", note=APPEARANCE_NOTE)
    for column in ("volume_m3", "volume_uncertainty_m3", "valid_fraction", "height_max_m", "height_mean_m"):
        sites[column] = np.nan
    sites["volume_note"] = "no height model: appearance change only"
    return sites
