"""The IGN LiDAR HD sample of Montpellier as dump-site stand-in layers (height above ground as a probability)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio.features
from affine import Affine
from rasterio.merge import merge

from geovigie.cog import write_array_cog
from geovigie.types import LAMBERT93
from tests.conftest import DATA

LIDAR = DATA / "lidarhd-montpellier-ign"


def lidar_mosaic(kind: str) -> tuple[np.ndarray, Affine]:
    """The 5 shipped tiles of one model merged on their common 0.5 m grid (nodata −9999)."""
    arrays, transform = merge(sorted((LIDAR / kind).glob("*.tif")))
    return arrays[0], transform


def write_lidar_layers(folder: Path) -> dict[str, Path]:
    """DSM and DTM mosaics and the stand-in probability layer (uint8 0–250, 255 nodata) as COGs in `folder`."""
    dsm, transform = lidar_mosaic("DSM")
    dtm, _ = lidar_mosaic("DTM")
    nodata = (dsm == -9999) | (dtm == -9999)
    probability = np.clip(np.rint((dsm - dtm) * 25), 0, 250).astype(np.uint8)  # 250 = 10 m above ground
    probability[nodata] = 255
    profile = {"driver": "GTiff", "crs": LAMBERT93, "transform": transform}
    paths = {"dsm": folder / "dsm.tif", "dtm": folder / "dtm.tif", "probability": folder / "height_probability.tif"}
    write_array_cog(paths["dsm"], dsm[None], profile={**profile, "nodata": -9999.0})
    write_array_cog(paths["dtm"], dtm[None], profile={**profile, "nodata": -9999.0})
    write_array_cog(paths["probability"], probability[None], profile={**profile, "nodata": 255})
    return paths


def pixels_of(geom: Any, shape: tuple[int, int], transform: Affine) -> np.ndarray:
    """The pixels whose centre lies in `geom`."""
    return rasterio.features.rasterize([(geom, 1)], out_shape=shape, transform=transform, fill=0,
                                       all_touched=False).astype(bool)
