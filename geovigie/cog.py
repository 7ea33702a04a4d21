"""Cloud Optimized GeoTIFF writing shared by inference, diagnostics and publishing.

Blocks are written one window at a time into a tiled scratch GeoTIFF, which rio-cogeo then
turns into a COG (overviews, internal tiling) behind an atomic rename: memory stays bounded by
the block size, never by the raster size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from geovigie.atomic import atomic_path

Colormap = dict[int, tuple[int, int, int, int]]


def _cog_translate(src: Path, dst: Path, resampling: str, colormap: Colormap | None) -> None:
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    profile = cog_profiles.get("deflate")
    profile.update(blockxsize=256, blockysize=256)
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_TIFF_INTERNAL_MASK=True):
        cog_translate(
            str(src),
            str(dst),
            profile,
            overview_resampling=resampling,  # type: ignore[arg-type]
            quiet=True,
            colormap=colormap,
            in_memory=False,
        )


@contextlib.contextmanager
def cog_writer(
    target: str | Path,
    *,
    profile: dict[str, Any],
    band_descriptions: Sequence[str] | None = None,
    colormap: Colormap | None = None,
    overview_resampling: str = "nearest",
    tags: dict[str, str] | None = None,
) -> Iterator[rasterio.io.DatasetWriter]:
    """Open a scratch GeoTIFF for window writes; on success publish it as a COG at `target`.

    Args:
        target: final COG path; written atomically.
        profile: rasterio profile (driver, dtype, count, width, height, crs, transform, nodata).
        band_descriptions: one description per band (class or variable names).
        colormap: embedded palette for single-band uint8 class maps.
        overview_resampling: "nearest" for classes, "average" for continuous values.
        tags: dataset-level metadata tags.

    Yields:
        The open scratch dataset; write windows with `dst.write(array, window=...)`.
    """
    target = Path(target)
    scratch_profile = dict(profile)
    scratch_profile.update(driver="GTiff", tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    if scratch_profile["width"] < 256 or scratch_profile["height"] < 256:
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
            _cog_translate(scratch, cog, overview_resampling, colormap)


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
