"""A small published class layer: two classes (water west, forest east), a nodata corner, in Lambert-93."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine

from geovigie.classes import ClassInfo
from geovigie.cog import write_array_cog
from geovigie.types import LAMBERT93

PROFILE = {"driver": "GTiff", "crs": LAMBERT93, "transform": Affine(10, 0, 470000, 0, -10, 6290000)}
CLASSES = [ClassInfo(value=0, name="water", color="#0000ff"), ClassInfo(value=1, name="forest", color="#00ff00")]


def class_cog(path: Path) -> Path:
    """A 300 × 300 class COG at `path`: class 0 west, class 1 east, 20 × 20 nodata (255) in the north-west corner."""
    data = np.zeros((1, 300, 300), np.uint8)
    data[:, :, 150:] = 1
    data[:, :20, :20] = 255
    return write_array_cog(path, data, profile={**PROFILE, "nodata": 255},
                           colormap={0: (0, 0, 255, 255), 1: (0, 255, 0, 255)})
