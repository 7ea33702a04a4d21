"""Write the map page's offline hillshade: the shipped IGN LiDAR HD DSM (data/lidarhd-montpellier-ign) shaded,
reprojected to web mercator, as a PNG with its corners (service/static/basemap/). Run once; the output is shipped.

    .venv/bin/python tools/make_hillshade.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.merge import merge
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "lidarhd-montpellier-ign" / "DSM"
TARGET = REPO / "service" / "static" / "basemap"
AZIMUTH, ALTITUDE = 315.0, 45.0


def hillshade(dsm: np.ndarray, resolution: float) -> np.ndarray:
    """Shade 0..1 (Horn-like gradient, sun from the north-west at 45°); NaN where the DSM has no value."""
    dy, dx = np.gradient(dsm, resolution)
    slope = np.arctan(np.hypot(dx, dy))
    aspect = np.arctan2(-dx, dy)
    azimuth, altitude = np.radians(360.0 - AZIMUTH + 90.0), np.radians(ALTITUDE)
    shade = np.sin(altitude) * np.cos(slope) + np.cos(altitude) * np.sin(slope) * np.cos(azimuth - aspect)
    return np.clip(shade, 0.0, 1.0)


def main() -> None:
    sources = [rasterio.open(path) for path in sorted(SOURCE.glob("*.tif"))]
    mosaic, transform = merge(sources, nodata=-9999.0)
    crs = sources[0].crs
    dsm = np.where(mosaic[0] == -9999.0, np.nan, mosaic[0]).astype("float32")
    shade = hillshade(dsm, transform.a).astype("float32")
    height, width = dsm.shape
    left, top = transform.c, transform.f
    bounds = (left, top + transform.e * height, left + transform.a * width, top)
    dst_transform, dst_w, dst_h = calculate_default_transform(crs, "EPSG:3857", width, height, *bounds)
    out = np.full((dst_h, dst_w), np.nan, dtype="float32")
    reproject(shade, out, src_transform=transform, src_crs=crs, dst_transform=dst_transform, dst_crs="EPSG:3857",
              resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan)
    grey = np.nan_to_num(out * 255.0, nan=0).astype("uint8")
    alpha = np.where(np.isnan(out), 0, 255).astype("uint8")
    Image.fromarray(np.dstack([grey, grey, grey, alpha]), "RGBA").save(TARGET / "hillshade-montpellier.png",
                                                                        optimize=True)
    w, s, e, n = transform_bounds("EPSG:3857", "EPSG:4326", dst_transform.c, dst_transform.f + dst_transform.e * dst_h,
                                  dst_transform.c + dst_transform.a * dst_w, dst_transform.f)
    meta = {"id": "hillshade-montpellier", "title": "Relief ombré LiDAR HD (Montpellier)",
            "url": "/static/basemap/hillshade-montpellier.png",
            "coordinates": [[w, n], [e, n], [e, s], [w, s]],
            "attribution": "Relief : IGN LiDAR HD (Licence Ouverte / Etalab 2.0)"}
    (TARGET / "basemap.json").write_text(json.dumps({"images": [meta]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
