"""Cloud Optimized GeoTIFF writing shared by inference, diagnostics and publishing.

Blocks are written one window at a time into a tiled scratch GeoTIFF (uncompressed by default), whose overviews
GDAL then builds in place; GDAL's COG driver copies both into the COG, compressing each block once, on every core,
behind an atomic rename. Memory stays bounded by the block size, never by the raster size; the scratch needs
bands × pixels × bytes per value of disk (one third more with its overviews) beside the target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from geovigie.atomic import atomic_path

Colormap = dict[int, tuple[int, int, int, int]]
BLOCK = 256
"""Internal tile size of the COGs and of their scratch files."""


def overview_factors(width: int, height: int, block: int = BLOCK) -> list[int]:
    """Decimation factors 2, 4, … until the smaller side fits in one block (as rio-cogeo counts them)."""
    factors: list[int] = []
    factor = 1
    while min(width // factor, height // factor) > block:
        factor *= 2
        factors.append(factor)
    return factors


def _to_cog(scratch: Path, cog: Path, resampling: str, level: int | None = None) -> None:
    """Build `scratch`'s overviews in place (each level from the previous one, as rio-cogeo did: same pixels), then
    let GDAL's COG driver write them and the full resolution, deflate-compressed on every core."""
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_OVR_BLOCKSIZE=BLOCK):
        with rasterio.open(scratch, "r+") as dst:
            factors = overview_factors(dst.width, dst.height)
            if factors:
                dst.build_overviews(factors, Resampling[resampling])
                dst.update_tags(OVERVIEW_RESAMPLING=resampling.upper())
        options = {"LEVEL": level} if level is not None else {}
        rasterio.shutil.copy(scratch, cog, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=BLOCK, NUM_THREADS="ALL_CPUS",
                             OVERVIEWS="FORCE_USE_EXISTING" if factors else "NONE", **options)


@contextlib.contextmanager
def cog_writer(
    target: str | Path,
    *,
    profile: dict[str, Any],
    band_descriptions: Sequence[str] | None = None,
    colormap: Colormap | None = None,
    overview_resampling: str = "nearest",
    tags: dict[str, str] | None = None,
    scratch_compress: str | None = None,
    level: int | None = None,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Open a scratch GeoTIFF for window writes; on success publish it as a COG at `target`.

    Args:
        target: final COG path; written atomically.
        profile: rasterio profile (driver, dtype, count, width, height, crs, transform, nodata).
        band_descriptions: one description per band (class or variable names).
        colormap: embedded palette for single-band uint8 class maps.
        overview_resampling: "nearest" for classes, "average" for continuous values.
        tags: dataset-level metadata tags.
        scratch_compress: compression of the scratch file (e.g. "zstd" where disk is short); None, the default,
            writes it uncompressed: each block is then compressed once, into the COG (2-3 times faster).
        level: deflate level of the COG (1 fastest, 9 smallest); None: GDAL's default (6).

    Yields:
        The open scratch dataset; write windows with `dst.write(array, window=...)`.
    """
    target = Path(target)
    scratch_profile = dict(profile)
    scratch_profile.update(driver="GTiff", tiled=True, blockxsize=BLOCK, blockysize=BLOCK, BIGTIFF="IF_SAFER")
    for option in ("compress", "predictor", "zlevel", "zstd_level"):
        scratch_profile.pop(option, None)
    if scratch_compress:
        scratch_profile["compress"] = scratch_compress
    if scratch_profile["width"] < BLOCK or scratch_profile["height"] < BLOCK:
        scratch_profile.update(tiled=False)
        scratch_profile.pop("blockxsize")
        scratch_profile.pop("blockysize")
    with atomic_path(target, suffix=".scratch.tif") as scratch:
        with rasterio.open(scratch, "w", **scratch_profile) as dst:
            if band_descriptions:
                for index, name in enumerate(band_descriptions, start=1):
                    dst.set_band_description(index, name)
            if colormap:
                dst.write_colormap(1, colormap)
                dst.colorinterp = [ColorInterp.palette]
            if tags:
                dst.update_tags(**tags)
            yield dst
        # the COG is made from the scratch file, then replaces it before the final rename
        with atomic_path(scratch) as cog:
            _to_cog(scratch, cog, overview_resampling, level)


def iter_windows(width: int, height: int, block: int = 1024) -> Iterator[Window]:
    """Row-major windows of at most `block`² pixels covering a raster."""
    for row in range(0, height, block):
        for col in range(0, width, block):
            yield Window(col, row, min(block, width - col), min(block, height - row))


def write_array_cog(target: str | Path, array: np.ndarray, **kwargs: Any) -> Path:
    """Write a small in-memory array (bands, rows, cols) as a COG. For tests and small layers."""
    profile = dict(kwargs.pop("profile"))
    profile.update(count=array.shape[0], height=array.shape[1], width=array.shape[2], dtype=str(array.dtype))
    with cog_writer(target, profile=profile, **kwargs) as dst:
        dst.write(array)
    return Path(target)
