"""Parsing of loose datetime filters ("2018", "2018-10/2018-11", "../2019-01-01")."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from geovigie.errors import InvalidInputError
from geovigie.types import DatetimeLike

Interval = tuple[datetime | None, datetime | None]


def _bound(text: str, end: bool) -> datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    parts = text.split("-")
    try:
        if len(parts) == 1 and len(text) == 4:
            year = int(text)
            return datetime(year, 12, 31, 23, 59, 59, 999999, UTC) if end else datetime(year, 1, 1, tzinfo=UTC)
        if len(parts) == 2:
            year, month = int(parts[0]), int(parts[1])
            if end:
                last = calendar.monthrange(year, month)[1]
                return datetime(year, month, last, 23, 59, 59, 999999, UTC)
            return datetime(year, month, 1, tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidInputError(
            f"cannot read datetime {text!r}: use ISO 8601 (2018-10-23 or 2018-10-23T10:51:07Z)"
        ) from err
    if len(text) == 10 and end:
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_interval(value: DatetimeLike) -> Interval:
    """Return a closed (start, end) interval in UTC; None stands for an open end."""
    if value is None:
        return None, None
    if isinstance(value, datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=UTC)
        return instant, instant
    if "/" in value:
        start, end = value.split("/", 1)
        return _bound(start, end=False), _bound(end, end=True)
    return _bound(value, end=False), _bound(value, end=True)


def overlaps(interval: Interval, start: datetime | None, end: datetime | None) -> bool:
    """Whether an item's [start, end] overlaps the filter interval."""
    lo, hi = interval
    if lo is not None and end is not None and end < lo:
        return False
    return not (hi is not None and start is not None and start > hi)
