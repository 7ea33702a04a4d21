"""Type aliases shared across subpackages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, TypeAlias

from geovigie.errors import InvalidInputError

BBox: TypeAlias = tuple[float, float, float, float]
"""(west, south, east, north) in EPSG:4326 degrees unless stated otherwise."""

BBoxLike: TypeAlias = BBox | Sequence[float] | str
"""A bbox as a tuple, a list or a comma-separated string."""

DatetimeLike: TypeAlias = datetime | str | None
"""A datetime, an ISO 8601 instant or an interval "start/end" (open ends as ".." )."""

DeviceName: TypeAlias = Literal["auto", "cpu", "cuda"]

LAMBERT93 = "EPSG:2154"
"""RGF93 / Lambert-93, France's national projection: the default output grid and the CRS of IGN data and sites."""

NODATA_CLASS = 255
"""Class maps are uint8 with 255 = nodata."""

NODATA_PROBA = 255
"""Probabilities are uint8 scaled 0-250 with 255 = nodata."""

PROBA_SCALE = 250
"""A probability p is stored as round(p * 250)."""


def normalize_bbox(bbox: BBoxLike) -> BBox:
    """Return a bbox as four floats, checking the order of its corners.

    Raises:
        InvalidInputError: when it does not have four numbers, west > east / south > north, or a corner
            lies outside [-180, 180] × [-90, 90].
    """
    try:
        values = [float(v) for v in bbox.split(",")] if isinstance(bbox, str) else [float(v) for v in bbox]
    except (TypeError, ValueError) as err:
        raise InvalidInputError(f"bbox must be four numbers west,south,east,north: {bbox!r}") from err
    if len(values) != 4:
        raise InvalidInputError(f"bbox needs 4 numbers (west,south,east,north), got {len(values)}: {bbox!r}")
    west, south, east, north = values
    if west > east or south > north:
        raise InvalidInputError(f"bbox corners out of order (west,south,east,north expected): {bbox!r}")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise InvalidInputError(f"bbox {bbox!r} is not in degrees (longitudes within ±180, latitudes within ±90)")
    return west, south, east, north
