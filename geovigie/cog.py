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
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    units: Sequence[str] | None = None,
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
        tags: dataset-level metadata tags (never local paths: the COG is published).
        scales, offsets: one per band, physical value = stored value * scale + offset (GDAL band scale and
            offset, shown by `gdalinfo` and applied by `rasterio`'s and GDAL's unscaling readers).
        units: one unit per band (GDAL band unit type, e.g. "celsius"); by default the `UNIT` tag, when there is
            one (and not "unitless"), for every band.
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
            if scales:
                dst.scales = tuple(float(v) for v in scales)
            if offsets:
                dst.offsets = tuple(float(v) for v in offsets)
            unit = (tags or {}).get("UNIT")
            if units or (unit and unit != "unitless"):
                dst.units = tuple(units or [unit] * scratch_profile["count"])
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


def write_category_names(cog: str | Path, classes: Sequence[tuple[int, str, str]]) -> Path:
    """Write the class names of a single-band class COG where GDAL and QGIS read them: `<cog>.aux.xml`.

    GDAL's GeoTIFF format stores category names and raster attribute tables only in this PAM sidecar (GDAL writes
    them there itself), so the sidecar travels with the COG. `classes` holds (value, name, "#rrggbb") triples; the
    file gets both the category names (`gdalinfo` lists them) and a thematic attribute table (value, name, colour:
    QGIS's "paletted/unique values" renderer and its attribute table read it). Written atomically.
    """
    import xml.etree.ElementTree as ET

    cog = Path(cog)
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    names = {value: name for value, name, _ in classes}
    categories = ET.SubElement(band, "CategoryNames")
    for value in range(max(names, default=-1) + 1):
        ET.SubElement(categories, "Category").text = names.get(value, "")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    # GDAL field types: 0 integer, 2 string; usages: 5 MinMax (the value), 2 Name, 6-8 Red, Green, Blue
    fields = [("value", 0, 5), ("class", 2, 2), ("red", 0, 6), ("green", 0, 7), ("blue", 0, 8)]
    for index, (name, kind, usage) in enumerate(fields):
        defn = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(defn, "Name").text = name
        ET.SubElement(defn, "Type").text = str(kind)
        ET.SubElement(defn, "Usage").text = str(usage)
    for row_index, (value, name, color) in enumerate(sorted(classes)):
        row = ET.SubElement(table, "Row", index=str(row_index))
        rgb = color.lstrip("#")
        for field in (str(value), name, *(str(int(rgb[i:i + 2], 16)) for i in (0, 2, 4))):
            ET.SubElement(row, "F").text = field
    target = cog.with_name(f"{cog.name}.aux.xml")
    ET.indent(root)
    with atomic_path(target) as tmp:  # no XML declaration: GDAL's PAM reader ignores a file that starts with one
        Path(tmp).write_text(ET.tostring(root, encoding="unicode") + "\n", encoding="utf-8")
    return target
