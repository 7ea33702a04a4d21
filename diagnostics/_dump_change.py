"""Dump candidates without labels: ground that rose between two height models of a place.

A dump is new material on the ground. Given a height model before and after (IGN LiDAR HD passes, photogrammetric
DSMs), candidates are connected areas whose height rose more than a threshold, outside buildings when a footprint
layer is given. Each gets its area, the volume added (the dump volume integrator of `_dumps`, on after − before)
and an uncertainty from the height noise measured on stable ground. Growing trees, new buildings and parked
lorries rise too: these are « candidats », never validated detections, in every output. The passes must be
co-registered: on the shipped Montpellier DSM, the same pass shifted 1 m east gives 16 false candidates (building
edges, tree crowns; 962 m², 3 212 m³), shifted 0.5 m none above 20 m².

The models are read block by block on their common grid (`_windowed`): memory stays flat whatever their size (a
département of LiDAR HD tiles mosaicked), with the result of the whole-array computation.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.windows import Window, from_bounds
from scipy import ndimage

from geovigie.diagnostics._dumps import (
    FILL_SEARCH_PX,
    SITE_COLUMNS,
    _detection_ids,
    _empty_sites,
    _is_metric,
    _join_communes,
    _prepare_zones,
    _sieve_size,
    add_centroids,
    iso_pass_date,
    volumes_on,
)
from geovigie.diagnostics._windowed import (
    DEFAULT_BLOCK_PX,
    Footprints,
    Outlines,
    PassPair,
    RoleCheck,
    Sieve,
    check_block,
    exact_median,
    grown,
    stage,
)
from geovigie.errors import DiagnosticsWarning, InvalidInputError, InvalidRasterError
from geovigie.progress import Progress
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
STABLE_MARGIN_PX = 2
"""Stable ground starts this many pixels (4-connected steps) away from a candidate: the halo of each block."""
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
    block_px: int = DEFAULT_BLOCK_PX,
    progress: Progress = False,
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

    The models are read in blocks of `block_px` × `block_px` pixels (memory flat whatever their size): a
    candidate crossing block edges is one candidate, and medians, sieve and volumes are those of the whole grid
    (see `_windowed`); `progress` draws a bar per pass over the blocks.

    Returns:
        A `HeightChange` whose `candidates` have the dump site columns (`height_*` columns hold the rise, every
        row `candidate` True with `CHANGE_NOTE`) plus `rise_threshold_m`, `vertical_offset_m` and `noise_m`.

    Raises:
        InputNotFoundError: a model does not exist.
        InvalidRasterError: unreadable, no CRS, several bands or a CRS not in metres.
        GridMismatchError: the models' CRS differ, or they do not overlap.
        InvalidInputError: an option out of range (`block_px` under the 2 px stable-ground margin), or a building
            layer without CRS or polygons.
    """
    _check(min_rise_m, min_area_m2)
    check_block(block_px, STABLE_MARGIN_PX, "the stable-ground margin")
    pass_iso = iso_pass_date(pass_date)
    zone_frame = _prepare_zones(zones) if zones is not None else None
    footprints = _footprint_layer(buildings)
    before, after = Path(before), Path(after)
    with PassPair(before, after, _single_bands(before, after)) as pair:
        grid = _HeightGrid(pair, Footprints(footprints, pair.transform, pair.crs), block_px, progress)
        offset, still_px = exact_median(grid.each("vertical offset", lambda w: grid.still(w, min_rise_m)))
        offset = offset if still_px >= MIN_STABLE_PX else 0.0
        sites = grid.candidates(offset, min_rise_m, min_area_m2)
        near = Footprints(sites.to_crs(pair.crs) if len(sites) else None, pair.transform, pair.crs)
        median, stable_px = exact_median(grid.each("stable ground", lambda w: grid.stable(w, offset, near)))
        if stable_px >= MIN_STABLE_PX:
            mad, _ = exact_median(grid.each("height noise",
                                            lambda w: np.abs(grid.stable(w, offset, near) - median)))
            noise = MAD_TO_STD * mad
        else:
            noise = FALLBACK_NOISE_M
            warnings.warn(f"{before} / {after}: only {stable_px} stable pixels; height noise not measured, "
                          f"{noise:.2f} m assumed (two LiDAR HD passes)", DiagnosticsWarning, stacklevel=2)
        if sites.empty:
            frame = _empty_sites(pass_iso)
        else:
            frame = describe_candidates(add_centroids(sites.reset_index(drop=True)), pass_iso, before, after)
            frame = grid.volumes(frame, offset, float(min_rise_m), noise)
            if zone_frame is not None:
                frame = _join_communes(frame, zone_frame)
        shape_ = (pair.height, pair.width)
        crs, resampled = pair.crs.to_string(), pair.resampled
    frame["rise_threshold_m"] = float(min_rise_m)
    frame["vertical_offset_m"] = offset
    frame["noise_m"] = noise
    frame = gpd.GeoDataFrame(frame[[*CHANGE_COLUMNS, "geometry"]], geometry="geometry", crs=LAMBERT93)
    frame.attrs["pass_date"] = pass_iso
    return HeightChange(frame, noise, offset, stable_px, crs, shape_, resampled)


class _HeightGrid:
    """The two models' rise, block by block, and what each pass of `height_change_candidates` takes from it."""

    def __init__(self, pair: PassPair, built: Footprints, block_px: int, progress: Progress) -> None:
        self.pair, self.built, self.progress = pair, built, progress
        self.windows = pair.blocks(block_px)

    def each(self, what: str, values: Callable[[Window], np.ndarray]) -> Callable[[], Iterator[np.ndarray]]:
        """A pass over the blocks yielding `values` of each, with a progress bar."""
        def run() -> Iterator[np.ndarray]:
            with stage(f"dumps-change: {what}", len(self.windows), self.progress) as advance:
                for window in self.windows:
                    yield values(window)
                    advance(1)
        return run

    def rise(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Before heights, valid pixels, building pixels and after − before (NaN where not valid) of a block."""
        old, new = self.pair.read(window)
        valid = np.isfinite(old["z"]) & np.isfinite(new["z"])
        return old["z"], valid, self.built.mask(window), np.where(valid, new["z"] - old["z"], np.nan)

    def still(self, window: Window, min_rise_m: float) -> np.ndarray:
        _, valid, built, rise = self.rise(window)
        return rise[valid & ~built & (np.abs(np.nan_to_num(rise)) <= min_rise_m)]

    def raised(self, window: Window, offset: float, min_rise_m: float) -> tuple[np.ndarray, np.ndarray]:
        _, valid, built, rise = self.rise(window)
        return valid & ~built & (np.nan_to_num(rise - offset) > min_rise_m), built

    def candidates(self, offset: float, min_rise_m: float, min_area_m2: float) -> gpd.GeoDataFrame:
        """Raised areas sieved, stitched across blocks, vectorised; those of `min_area_m2` at least, largest first."""
        pair = self.pair
        sieve = Sieve(pair.height, pair.width, _sieve_size(None, min_area_m2, pair.pixel_area))
        if sieve.active:
            with stage("dumps-change: raised ground", len(self.windows), self.progress) as advance:
                for window in self.windows:
                    sieve.add(window, self.raised(window, offset, min_rise_m)[0])
                    advance(1)
            sieve.resolve()
        outlines = Outlines(pair.width)
        with stage("dumps-change: candidates", len(self.windows), self.progress) as advance:
            for window in self.windows:
                raised, built = self.raised(window, offset, min_rise_m)
                outlines.add(window, sieve.apply(window, raised) & ~built)
                advance(1)
        sites = gpd.GeoDataFrame(geometry=[c.geometry for c in outlines.components(pair.transform)],
                                 crs=pair.crs).to_crs(LAMBERT93)
        sites["area_m2"] = sites.geometry.area
        return sites[sites["area_m2"] >= min_area_m2].sort_values("area_m2", ascending=False, kind="stable")

    def stable(self, window: Window, offset: float, near: Footprints) -> np.ndarray:
        """Aligned rise on stable ground: valid, outside buildings and STABLE_MARGIN_PX away from candidates."""
        _, valid, built, rise = self.rise(window)
        margin = STABLE_MARGIN_PX
        grown_near = _grow(near.mask(grown(window, margin), self.pair.height, self.pair.width), margin)
        return (rise - offset)[valid & ~built & ~grown_near[margin:-margin, margin:-margin]]

    def volumes(self, frame: gpd.GeoDataFrame, offset: float, min_rise_m: float, noise: float) -> gpd.GeoDataFrame:
        """`volumes_on` over the candidates, reading after' = before + aligned rise and before from sparse
        scratch GeoTIFFs holding only the 256-pixel tiles around the candidates (what the integrator reads)."""
        pair, tile = self.pair, 256
        margin = FILL_SEARCH_PX + 1
        tiles: set[tuple[int, int]] = set()
        for geom in frame.geometry.to_crs(pair.crs):
            box_ = from_bounds(*geom.bounds, transform=pair.transform)
            col0, row0 = max(0, math.floor(box_.col_off) - margin), max(0, math.floor(box_.row_off) - margin)
            col1 = min(pair.width, math.ceil(box_.col_off + box_.width) + margin)
            row1 = min(pair.height, math.ceil(box_.row_off + box_.height) + margin)
            tiles.update((r, c) for r in range(row0 // tile, (row1 - 1) // tile + 1)
                         for c in range(col0 // tile, (col1 - 1) // tile + 1))
        profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "height": pair.height, "width": pair.width,
                   "crs": pair.crs, "transform": pair.transform, "nodata": np.nan, "tiled": True,
                   "blockxsize": tile, "blockysize": tile, "sparse_ok": True}
        with tempfile.TemporaryDirectory(prefix="geovigie-change-") as scratch:
            paths = Path(scratch) / "after.tif", Path(scratch) / "before.tif"
            with rasterio.open(paths[0], "w", **profile) as surface, rasterio.open(paths[1], "w", **profile) as terrain:
                for r, c in sorted(tiles):
                    window = Window(c * tile, r * tile, min(tile, pair.width - c * tile),
                                    min(tile, pair.height - r * tile))
                    old, _, _, rise = self.rise(window)
                    surface.write((old + (rise - offset)).astype(np.float32), 1, window=window)
                    terrain.write(old.astype(np.float32), 1, window=window)
            with rasterio.open(paths[0]) as surface, rasterio.open(paths[1]) as terrain:
                return volumes_on(frame, surface, terrain, min_height_m=min_rise_m, noise_m=noise)


def _single_bands(before: Path, after: Path) -> RoleCheck:
    def check(first: rasterio.DatasetReader, second: rasterio.DatasetReader) -> tuple[dict[str, int], dict[str, int]]:
        for src, path in ((first, before), (second, after)):
            if src.count != 1:
                raise InvalidRasterError(f"{path}: {src.count} bands; give a single-band height model")
            if not _is_metric(src.crs):
                raise InvalidRasterError(f"{path}: CRS {src.crs.to_string()} is not projected in metres; "
                                         "volumes need metres")
        return {"z": 1}, {"z": 1}
    return check


def _footprint_layer(buildings: gpd.GeoDataFrame | None, what: str = "buildings",
                     empty: str = "no polygon footprint in the layer") -> gpd.GeoDataFrame | None:
    """The polygons of a footprint layer, or a clear error naming it."""
    if buildings is None:
        return None
    if not isinstance(buildings, gpd.GeoDataFrame) or buildings.crs is None:
        raise InvalidInputError(f"{what}: expected a GeoDataFrame with a CRS")
    kept = buildings[buildings.geometry.notna() & ~buildings.geometry.is_empty]
    polygons = kept[kept.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise InvalidInputError(f"{what}: {empty}")
    return polygons


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
