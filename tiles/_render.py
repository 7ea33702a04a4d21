"""XYZ tiles of layers with rio-tiler: class colours for class maps, rescale + colour ramp otherwise."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from rio_tiler.colormap import cmap
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from geovigie.errors import TileOutsideBoundsError
from geovigie.tiles._layers import Layer

TILE_SIZE = 256


def render_tile(layer: Layer, z: int, x: int, y: int, *, gdal_env: dict[str, Any] | None = None) -> bytes:
    """A 256 × 256 PNG of `layer` at web-mercator tile z/x/y, nodata transparent.

    Raises:
        TileOutsideBoundsError: the tile does not touch the layer.
    """
    import rasterio

    if not _touches(layer.bounds, z, x, y):
        raise TileOutsideBoundsError(f"tile {z}/{x}/{y} is outside layer {layer.id}")
    with rasterio.Env(**(gdal_env or {})), Reader(str(layer.path)) as src:
        if not src.tile_exists(x, y, z):
            # inside the advertised bounds but off the raster's own footprint: an empty tile, not an error
            return _empty_png()
        try:
            if layer.kind == "classes":
                image = src.tile(x, y, z, tilesize=TILE_SIZE, indexes=1, resampling_method="nearest",
                                 reproject_method="nearest")
                return image.render(img_format="PNG", colormap=src.colormap)
            image = src.tile(x, y, z, tilesize=TILE_SIZE, indexes=1, resampling_method="bilinear",
                             reproject_method="bilinear")
        except TileOutsideBounds as err:
            raise TileOutsideBoundsError(f"tile {z}/{x}/{y} is outside layer {layer.id}") from err
    low, high = layer.rescale or (float(np.nanmin(image.array)), float(np.nanmax(image.array)))
    image.rescale(in_range=((low, high),))
    return image.render(img_format="PNG", colormap=cmap.get(layer.colormap_name or "viridis"))


def _touches(bounds: tuple[float, float, float, float], z: int, x: int, y: int) -> bool:
    import morecantile

    tile = morecantile.tms.get("WebMercatorQuad").bounds(morecantile.Tile(x, y, z))
    west, south, east, north = bounds
    return tile.left < east and tile.right > west and tile.bottom < north and tile.top > south


@lru_cache(maxsize=1)
def _empty_png() -> bytes:
    from rio_tiler.utils import render

    return render(np.zeros((1, TILE_SIZE, TILE_SIZE), np.uint8), mask=np.zeros((TILE_SIZE, TILE_SIZE), np.uint8),
                  img_format="PNG")


def ramp_colors(colormap_name: str, stops: int = 8) -> list[str]:
    """Hex colours sampled along a rio-tiler colour map, for legends."""
    table = cmap.get(colormap_name)
    return [
        "#{:02x}{:02x}{:02x}".format(*table[int(round(i * 255 / (stops - 1)))][:3]) for i in range(stops)
    ]
