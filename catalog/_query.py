"""A normalised search query, shared by every item source."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pystac

from geovigie.catalog._datetime import Interval, overlaps, to_interval
from geovigie.types import BBox, DatetimeLike

__all__ = ["SearchQuery", "item_interval", "overlaps"]


@dataclass(frozen=True)
class SearchQuery:
    """A normalised search: collections, bbox (EPSG:4326), datetime interval and page sizes."""

    collections: tuple[str, ...] | None = None
    bbox: BBox | None = None
    datetime: DatetimeLike = None
    max_items: int | None = 100
    limit: int = 100
    interval: Interval = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval", to_interval(self.datetime))


def item_interval(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    """An item's [start, end]: its datetime twice, or its start/end datetimes."""
    if item.datetime is not None:
        return item.datetime, item.datetime
    props: Any = item.common_metadata
    return props.start_datetime, props.end_datetime
