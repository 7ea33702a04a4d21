"""Job requests shared by the jobs tests: the Slovenia sample area and the LiDAR HD dumps request."""

from __future__ import annotations

import rasterio
from rasterio.warp import transform_bounds

from geovigie.catalog.samples import SLOVENIA
from tests.conftest import DATA

WEST, SOUTH, EAST, NORTH = 14.55134, 45.865889, 14.564289, 45.875027
SLOVENIA_AREA = {"type": "Polygon", "coordinates": [[[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH],
                                                     [WEST, SOUTH]]]}
JOB = {"territory": SLOVENIA_AREA, "period": "2015-01-01/2018-12-31", "tasks": ["landcover"],
       "collection": SLOVENIA, "source": "samples"}


def lidar_bbox() -> str:
    """The shipped LiDAR HD tiles' extent in WGS84, as a job's `west,south,east,north` territory."""
    boxes = []
    for tile in sorted((DATA / "lidarhd-montpellier-ign" / "DSM").glob("*.tif")):
        with rasterio.open(tile) as src:
            boxes.append(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
    return ",".join(f"{v:.6f}" for v in (min(b[0] for b in boxes), min(b[1] for b in boxes),
                                          max(b[2] for b in boxes), max(b[3] for b in boxes)))


def dumps_job(**options: object) -> dict:
    """A dumps job over the shipped LiDAR HD tiles (height above ground as the stand-in layer)."""
    return {"territory": lidar_bbox(), "period": "2024-01-01/2024-05-01", "tasks": ["dumps"],
            "dumps": {"height_model": "lidarhd-montpellier-ign", "threshold": 0.2, "watch": "montpellier-job",
                      **options}}
