"""Rebuild the sample data shipped in `data/` from the original files (maintainers only).

Usage: python data/make_sample_data.py SOURCE_DIR
SOURCE_DIR holds the original folders named in data/README.md. Nothing in geovigie reads
SOURCE_DIR: the package and the tests only use the files this script writes.
Values are copied unchanged; only windows are cropped and files recompressed (deflate).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import rasterio
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
GERS_STEM = "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9"
# 8 x 8 km window of the 10 m grid holding the scene's only cloud and its shadow
GERS_WINDOW_10M = Window(col_off=200, row_off=150, width=800, height=800)
MUENSTER_SCENES = [
    "lst/summer/LC08_L2SP_196024_20240813_20240822_02_T1_ST_B10.TIF",
    "lst/spring/LC09_L2SP_197024_20250511_20250513_02_T1_ST_B10.TIF",
]


def crop(src_path: Path, dst_path: Path, window: Window | None = None) -> None:
    """Copy a raster window with its georeferencing, descriptions and colour map; deflate-compressed."""
    with rasterio.open(src_path) as src:
        window = window or Window(0, 0, src.width, src.height)
        profile = src.profile.copy()
        profile.update(
            width=int(window.width), height=int(window.height), transform=src.window_transform(window),
            compress="deflate", predictor=2 if src.dtypes[0] != "uint8" else 1, tiled=False,
        )
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.descriptions = src.descriptions
            dst.update_tags(**src.tags())


def scaled(window: Window, factor: int) -> Window:
    return Window(window.col_off // factor, window.row_off // factor, window.width // factor, window.height // factor)


def main(source: Path) -> None:
    gers = source / "s2-l2a-theia-gers-t30typ"
    out = HERE / "s2-l2a-theia-gers"
    for band in ["B2", "B3", "B4", "B8", "B5", "B6", "B7", "B8A", "B11", "B12"]:
        factor = 1 if band in {"B2", "B3", "B4", "B8"} else 2
        name = f"{GERS_STEM}_FRE_{band}.tif"
        crop(gers / name, out / name, scaled(GERS_WINDOW_10M, factor))
    for mask in ["CLM", "EDG", "SAT"]:
        name = f"{GERS_STEM}_{mask}_R1.tif"
        crop(gers / "MASKS" / name, out / "MASKS" / name, GERS_WINDOW_10M)
    shutil.copy(gers / "COMMUNE_32xxx.geojson", out / "COMMUNE_32xxx.geojson")

    slovenia = source / "s2-l1c-slovenia-eolearn"
    out = HERE / "s2-l1c-slovenia"
    for name in [f"reference_scene_{i}.tif" for i in range(4)] + ["lulc_mask.tif"]:
        crop(slovenia / name, out / name)

    muenster = source / "landsat-lst-muenster"
    out = HERE / "landsat-lst-muenster"
    for rel in MUENSTER_SCENES:
        crop(muenster / rel, out / Path(rel).name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
