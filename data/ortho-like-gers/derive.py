"""Derive the orthophoto-like stand-ins of this folder from the shipped Theia Sentinel-2 scene.

Run from the repository root: `.venv/bin/python data/ortho-like-gers/derive.py`. Deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject

HERE = Path(__file__).resolve().parent
SCENE = HERE.parent / "s2-l2a-theia-gers" / "SENTINEL2B_20181023-105107-455_L2A_T30TYP_D_V1-9_FRE_{}.tif"
LEFT, TOP, SIZE, RES = 463000.0, 6294000.0, 300, 10.0
"""A 3 × 3 km window on the Lambert-93 kilometre grid, inside the scene, at the scene's 10 m."""
PRODUCTS = {"rvb.tif": (("B4", 0.25), ("B3", 0.25), ("B2", 0.25)),
            "irc.tif": (("B8", 0.5), ("B4", 0.25), ("B3", 0.25))}
"""Bands in IGN order (RVB: red, green, blue; IRC: near infrared, red, green) and the reflectance shown as 255."""


def band(name: str, white: float) -> np.ndarray:
    out = np.zeros((SIZE, SIZE), dtype="float32")
    with rasterio.open(str(SCENE).format(name)) as src:
        reproject(rasterio.band(src, 1), out, dst_transform=from_origin(LEFT, TOP, RES, RES), dst_crs="EPSG:2154",
                  resampling=Resampling.nearest)
    return np.clip(np.rint(out * 1e-4 / white * 255.0), 0, 255).astype("uint8")


def main() -> None:
    for name, bands in PRODUCTS.items():
        profile = {"driver": "GTiff", "dtype": "uint8", "count": 3, "width": SIZE, "height": SIZE, "crs": "EPSG:2154",
                   "transform": from_origin(LEFT, TOP, RES, RES), "compress": "deflate", "tiled": True,
                   "blockxsize": 256, "blockysize": 256, "photometric": "RGB" if name == "rvb.tif" else "MINISBLACK"}
        with rasterio.open(HERE / name, "w", **profile) as dst:
            for index, (source, white) in enumerate(bands, start=1):
                dst.write(band(source, white), index)
                dst.set_band_description(index, source)


if __name__ == "__main__":
    main()
