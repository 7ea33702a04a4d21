"""Regular square zones (an INSPIRE-style grid) where no administrative zones exist at the right scale."""

from __future__ import annotations

import math

import geopandas as gpd
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from geovigie.errors import InvalidInputError


def grid_zones(
    area: BaseGeometry, crs: str | int, *, cell_m: float = 1000.0, min_share: float = 0.5
) -> gpd.GeoDataFrame:
    """Square cells of `cell_m` metres over `area` (in a projected `crs`), clipped to it.

    A cell is kept when at least `min_share` of it lies inside the area; its id is `E{x_km}N{y_km}` from its
    lower-left corner.

    Raises:
        InvalidInputError: a geographic CRS, a non-positive cell size, or no cell kept.
    """
    frame_crs = gpd.GeoSeries([], crs=crs).crs
    if frame_crs is None or not frame_crs.is_projected:
        raise InvalidInputError(f"grid zones need a projected CRS in metres, got {crs}")
    if cell_m <= 0:
        raise InvalidInputError(f"cell size must be positive, got {cell_m}")
    west, south, east, north = area.bounds
    x0, y0 = math.floor(west / cell_m) * cell_m, math.floor(south / cell_m) * cell_m
    rows = []
    y = y0
    while y < north:
        x = x0
        while x < east:
            cell = box(x, y, x + cell_m, y + cell_m)
            inside = cell.intersection(area)
            if inside.area >= min_share * cell.area:
                name = f"E{x / 1000:g}N{y / 1000:g}"
                rows.append({"zone_id": name, "zone_name": f"cell {name}", "geometry": inside})
            x += cell_m
        y += cell_m
    if not rows:
        raise InvalidInputError(f"no {cell_m:g} m cell lies at least {min_share:.0%} inside the area")
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=frame_crs)
