"""Rebuild `data/landsat-lst-muenster-extra/` from the shared originals (maintainers only; never imported).

Usage: python data/landsat-lst-muenster-extra/make.py SOURCE_DIR [--check-png land-use_classification.png]
SOURCE_DIR is the folder `landsat-lst-muenster/` described in README.md (`sentinel2/`, `vectors/`).

1. `classification_rf_derived.tif`: the author's random-forest land-use map, values unchanged, recompressed.
2. `project_area.*`: the author's project-area shapefile, copied byte for byte.
3. `muenster_urban_core.geojson`: Münster's built-up core, derived from (1) as described in README.md.
With `--check-png`, the class values of (1) are cross-tabulated against the colours of the author's rendered map
(`data/plots/land-use_classification.png` of the source repository), the evidence for the class names.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
from affine import Affine
from pyproj import Transformer
from rasterio.warp import Resampling, reproject
from shapely.geometry import Point, Polygon, shape

HERE = Path(__file__).resolve().parent
CLASSIFICATION = "classification_rf_derived.tif"
INFRASTRUCTURE = 1
GRID_M = 300.0  # coarse grid on which the built-up share is measured
MIN_SHARE = 0.4  # a 300 m cell belongs to the core when infrastructure covers >= 40 % of it
CLOSE_M = 150.0  # closing (buffer out, then in) that smooths the cell staircase
SEED_LONLAT = (7.6285, 51.9620)  # Prinzipalmarkt / St. Lamberti, Münster: picks the connected core
PNG_COLOURS = {"Infrastructure": (128, 128, 128), "Water": (0, 23, 124), "Forest": (78, 155, 0),
               "Field/Meadow": (224, 214, 0)}


def copy_classification(source: Path) -> None:
    """Copy the class map with its grid, deflate-compressed; pixel values unchanged."""
    with rasterio.open(source / "sentinel2" / CLASSIFICATION) as src:
        profile = src.profile.copy()
        profile.update(compress="deflate", tiled=True, blockxsize=256, blockysize=256)
        with rasterio.open(HERE / CLASSIFICATION, "w", **profile) as dst:
            dst.write(src.read())


def urban_core(classes_path: Path) -> Polygon:
    """The connected area around the seed where infrastructure covers >= MIN_SHARE of each 300 m cell."""
    with rasterio.open(classes_path) as src:
        classes = src.read(1)
        grid = Affine(GRID_M, 0, src.bounds.left, 0, -GRID_M, src.bounds.top)
        height = int((src.bounds.top - src.bounds.bottom) // GRID_M)
        width = int((src.bounds.right - src.bounds.left) // GRID_M)
        share = np.zeros((height, width), "float32")
        reproject((classes == INFRASTRUCTURE).astype("float32"), share, src_transform=src.transform,
                  src_crs=src.crs, dst_transform=grid, dst_crs=src.crs, resampling=Resampling.average)
        seed = Point(*Transformer.from_crs("EPSG:4326", src.crs, always_xy=True).transform(*SEED_LONLAT))
    core = (share >= MIN_SHARE).astype("uint8")
    for geom, _ in rasterio.features.shapes(core, mask=core.astype(bool), transform=grid, connectivity=4):
        polygon = shape(geom)
        if polygon.contains(seed):
            filled = Polygon(polygon.exterior)  # holes (parks, the Aasee) belong to the city
            return filled.buffer(CLOSE_M, join_style="mitre").buffer(-CLOSE_M, join_style="mitre")
    raise SystemExit("no built-up cell contains the seed point")


def write_urban_core(crs: str) -> None:
    """Write the core as GeoJSON (EPSG:4326, RFC 7946) with its provenance in the attributes."""
    polygon = urban_core(HERE / CLASSIFICATION)
    frame = gpd.GeoDataFrame(
        {"zone_id": ["muenster-core"], "name": ["Münster built-up core"],
         "source": [f"{CLASSIFICATION}: class 1 share >= {MIN_SHARE} per {GRID_M:.0f} m cell, component around "
                    f"Prinzipalmarkt, holes filled, {CLOSE_M:.0f} m closing"]},
        geometry=[polygon], crs=crs,
    )
    target = HERE / "muenster_urban_core.geojson"
    target.unlink(missing_ok=True)
    frame.to_crs("EPSG:4326").to_file(target, driver="GeoJSON", engine="pyogrio", COORDINATE_PRECISION=7)
    print(f"urban core: {polygon.area / 1e6:.2f} km², bounds {[round(b) for b in polygon.bounds]} ({crs})")


def check_png(png: Path) -> pd.DataFrame:
    """Cross-tabulate raster class values against the legend colours of the author's rendered map.

    The map's red frame is the project area; PNG pixels are mapped linearly from the frame onto the polygon's
    bounds and compared with the class of the raster pixel under them (every 3rd PNG pixel, legend colours only).
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (image[..., 0] > 180) & (image[..., 1] < 60) & (image[..., 2] < 60)
    rows = np.where(red.sum(1) > image.shape[1] * 0.5)[0]
    cols = np.where(red.sum(0) > image.shape[0] * 0.5)[0]
    top, bottom = rows[rows < 100].mean(), rows[rows > image.shape[0] - 100].mean()
    left, right = cols[cols < 100].mean(), cols[cols > image.shape[1] - 100].mean()
    x0, y0, x1, y1 = gpd.read_file(HERE / "project_area.shp").total_bounds
    ys, xs = np.meshgrid(np.arange(int(top) + 15, int(bottom) - 15, 3), np.arange(int(left) + 15, int(right) - 15, 3),
                         indexing="ij")
    names = list(PNG_COLOURS)
    distance = np.abs(image[ys, xs][..., None, :] - np.array(list(PNG_COLOURS.values()))).sum(-1)
    colour, legend = distance.argmin(-1), distance.min(-1) < 10
    east = x0 + (xs - left) / (right - left) * (x1 - x0)
    north = y1 - (ys - top) / (bottom - top) * (y1 - y0)
    with rasterio.open(HERE / CLASSIFICATION) as src:
        classes = src.read(1)
        row, col = rasterio.transform.rowcol(src.transform, east.ravel(), north.ravel())
    row, col = np.asarray(row).reshape(east.shape), np.asarray(col).reshape(east.shape)
    keep = legend & (row >= 0) & (row < classes.shape[0]) & (col >= 0) & (col < classes.shape[1])
    table = pd.crosstab(pd.Series(classes[row[keep], col[keep]], name="raster class"),
                        pd.Series(np.array(names)[colour[keep]], name="map colour"))
    return (table.div(table.sum(axis=1), axis=0) * 100).round(1)


def main(argv: list[str]) -> None:
    source = Path(argv[0])
    copy_classification(source)
    for part in sorted((source / "vectors").glob("project_area.*")):
        shutil.copyfile(part, HERE / part.name)
    with rasterio.open(HERE / CLASSIFICATION) as src:
        write_urban_core(str(src.crs))
    if "--check-png" in argv:
        print(check_png(Path(argv[argv.index("--check-png") + 1])).to_string())


if __name__ == "__main__":
    main(sys.argv[1:])
