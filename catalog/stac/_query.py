"""A normalised search query shared by every item source, its CQL2 filter, and the one cloud rule."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pystac

from geovigie.catalog.stac._datetime import Interval, overlaps, to_interval
from geovigie.errors import InvalidInputError
from geovigie.types import BBox, DatetimeLike

__all__ = ["DEFAULT_MAX_CLOUD", "SearchQuery", "cloud_cover", "cloud_filter", "cloud_skip_reason", "cql2_filter",
           "cql2_matches", "cql2_select", "item_interval", "overlaps"]

DEFAULT_MAX_CLOUD = 20.0
"""Cloud cover (%) above which the demo and the batch skip an item unless told otherwise."""


@dataclass(frozen=True)
class SearchQuery:
    """A normalised search: collections, bbox (EPSG:4326), datetime interval, CQL2-JSON filter and page sizes.

    `max_items` caps what comes out *after* the filter; `limit` is the page size asked of an API.
    """

    collections: tuple[str, ...] | None = None
    bbox: BBox | None = None
    datetime: DatetimeLike = None
    max_items: int | None = 100
    limit: int = 100
    filter: dict[str, Any] | None = None
    interval: Interval = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval", to_interval(self.datetime))


def item_interval(item: pystac.Item) -> tuple[datetime | None, datetime | None]:
    """An item's [start, end]: its datetime twice, or its start/end datetimes."""
    if item.datetime is not None:
        return item.datetime, item.datetime
    props: Any = item.common_metadata
    return props.start_datetime, props.end_datetime


def cql2_filter(expression: str | dict[str, Any], what: str = "filter") -> dict[str, Any]:
    """A CQL2 expression (cql2-text, or CQL2-JSON as text or a dict) checked and turned into CQL2-JSON.

    Raises:
        InvalidInputError: it does not parse, or is not valid CQL2 (the `cql2` library's words).
    """
    import cql2

    try:
        expr = cql2.Expr(expression)
        expr.validate()
    except Exception as err:  # noqa: BLE001 - cql2 raises a bare Exception for text it cannot parse
        shown = expression if isinstance(expression, str) else json.dumps(expression)
        raise InvalidInputError(f"{what} {shown[:200]!r} is not valid CQL2: {' '.join(str(err).split())[:300]}") \
            from err
    return _instants(expr.to_json())


TIME_PROPERTIES = frozenset({"datetime", "start_datetime", "end_datetime", "created", "updated"})
"""Item properties that hold instants: a plain string compared with one is read as a TIMESTAMP, as pgstac does."""
_COMPARISONS = frozenset({"=", "<>", "<", "<=", ">", ">="})


def _instants(node: Any) -> Any:
    """`node` with the ISO strings compared to a time property (`TIME_PROPERTIES`) made TIMESTAMP literals, so that
    `datetime >= '2018-10-23T10:51:07Z'` compares instants here as a STAC API (pgstac) does, not text."""
    if isinstance(node, list):
        return [_instants(child) for child in node]
    if not isinstance(node, dict) or "op" not in node:
        return node
    args = [_instants(arg) for arg in node.get("args", [])]
    if node["op"] in _COMPARISONS and args and isinstance(args[0], dict) and args[0].get("property") in \
            TIME_PROPERTIES:
        args = [args[0], *(_as_timestamp(arg) for arg in args[1:])]
    return {**node, "args": args}


def _as_timestamp(value: Any) -> Any:
    if isinstance(value, str) and "T" in value:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return {"timestamp": value}
    return value


def cql2_matches(item: pystac.Item | dict[str, Any], expression: Any) -> bool:
    """Whether `item` satisfies a CQL2-JSON expression (or a parsed `cql2.Expr`), as a CQL2 server decides (the
    `cql2` library).

    Timestamps compare as instants, spatial operators test the item's geometry, and a comparison with a property
    the item lacks is unknown, hence not a match (`x <> 3` does not match an item without `x`).
    """
    import cql2

    expr = expression if isinstance(expression, cql2.Expr) else cql2.Expr(expression)
    payload = item if isinstance(item, dict) else item.to_dict(include_self_link=False, transform_hrefs=False)
    return expr.reduce(payload).to_json() is True


def cql2_select(items: Iterable[pystac.Item], expression: dict[str, Any]) -> Iterator[pystac.Item]:
    """The items that satisfy a CQL2-JSON expression (`cql2_matches`), parsed once."""
    import cql2

    expr = cql2.Expr(expression)
    return (item for item in items if cql2_matches(item, expr))


def cloud_cover(item: pystac.Item) -> float | None:
    """An item's cloud cover in %: its `eo:cloud_cover`, else 100 for a scene marked `geovigie:cloudy` (cloudy and
    no cloud mask ships for it), else None (unknown: its masks decide)."""
    value = item.properties.get("eo:cloud_cover")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 100.0 if item.properties.get("geovigie:cloudy") is True else None


def cloud_skip_reason(item: pystac.Item, max_cloud: float | None) -> str | None:
    """Why `item` is too cloudy to process under `max_cloud` % (None: keep it). The one rule of the demo, the
    batch and the imagery search: cloud cover (`cloud_cover`) above the limit; an unknown cover is kept."""
    cover = cloud_cover(item)
    if max_cloud is None or cover is None or cover <= max_cloud:
        return None
    if "eo:cloud_cover" not in item.properties:
        return f"cloudy (geovigie:cloudy) and no cloud mask ships for it (limit {max_cloud:g} %)"
    return f"cloud cover {cover:g} % above {max_cloud:g} %"


def cloud_filter(max_cloud: float) -> dict[str, Any]:
    """`cloud_skip_reason`'s limit as CQL2-JSON for a server: at most `max_cloud` %, or an unknown cover (an item
    marked `geovigie:cloudy` comes back and is dropped by the rule itself)."""
    cover = {"property": "eo:cloud_cover"}
    return {"op": "or", "args": [{"op": "<=", "args": [cover, max_cloud]}, {"op": "isNull", "args": [cover]}]}
