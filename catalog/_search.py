"""One search interface over the project's own static catalogs and any remote STAC API."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box, shape

from geovigie.catalog._datetime import Interval, overlaps, to_interval
from geovigie.errors import EmptySearchError, InputNotFoundError, UnknownCollectionError
from geovigie.types import BBox, BBoxLike, DatetimeLike, normalize_bbox

RequestModifier = Callable[[Any], Any]


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


def _item_interval(item: pystac.Item) -> tuple[Any, Any]:
    if item.datetime is not None:
        return item.datetime, item.datetime
    props = item.common_metadata
    return props.start_datetime, props.end_datetime


class ItemSearch:
    """A lazy search: nothing is read or requested until it is iterated."""

    def __init__(self, source: CatalogClient, query: SearchQuery) -> None:
        self._source = source
        self.query = query

    def items(self) -> Iterator[pystac.Item]:
        """Yield matching items, at most `max_items`."""
        yield from self._source._iter_items(self.query)

    def item_list(self, *, require: bool = True) -> list[pystac.Item]:
        """All matching items; `EmptySearchError` when none matched and `require` is set."""
        found = list(self.items())
        if require and not found:
            q = self.query
            raise EmptySearchError(
                f"no item in {self._source.source} matches collections={list(q.collections or [])} "
                f"bbox={q.bbox} datetime={q.datetime}"
            )
        return found

    def __iter__(self) -> Iterator[pystac.Item]:
        return self.items()


class CatalogClient:
    """Search a local static STAC catalog (catalog.json) or a STAC API (pystac-client) alike.

    Examples:
        >>> client = CatalogClient.open("geovigie-data/catalog/catalog.json")  # doctest: +SKIP
        >>> items = client.search(collections=["s2-l2a-theia-gers"], bbox=[0, 43, 1, 44]).item_list()
    """

    def __init__(self, source: str, *, catalog: pystac.Catalog | None = None, api: Any = None) -> None:
        self.source = source
        self._catalog = catalog
        self._api = api

    @classmethod
    def open(
        cls, source: str | Path, *, modifier: RequestModifier | None = None, timeout: float | None = None
    ) -> CatalogClient:
        """Open `source`: an http(s) URL is a STAC API, anything else a local catalog.json (or its folder).

        Args:
            source: STAC API root URL, or path to a static catalog.
            modifier: called on each remote item/request, e.g. to sign Planetary Computer URLs.
            timeout: seconds for remote requests.
        """
        text = str(source)
        if text.startswith(("http://", "https://")):
            from pystac_client import Client

            return cls(text, api=Client.open(text, modifier=modifier, timeout=timeout))
        path = Path(text)
        if path.is_dir():
            path = path / "catalog.json"
        if not path.exists():
            raise InputNotFoundError(
                f"no STAC catalog at {path}: run `geovigie catalog build` or point to a catalog.json / STAC API URL"
            )
        return cls(str(path), catalog=pystac.Catalog.from_file(str(path)))

    def collection_ids(self) -> list[str]:
        """Ids of the collections this source holds."""
        if self._api is not None:
            return [c.id for c in self._api.get_collections()]
        assert self._catalog is not None
        return [c.id for c in self._catalog.get_all_collections()]

    def _check_collections(self, collections: Sequence[str] | None) -> None:
        if not collections:
            return
        known = set(self.collection_ids())
        unknown = [c for c in collections if c not in known]
        if unknown:
            raise UnknownCollectionError(
                f"unknown collection {', '.join(unknown)} in {self.source}; known: {', '.join(sorted(known))}"
            )

    def search(
        self,
        *,
        collections: Sequence[str] | str | None = None,
        bbox: BBoxLike | None = None,
        datetime: DatetimeLike = None,
        max_items: int | None = 100,
        limit: int = 100,
    ) -> ItemSearch:
        """Search items by collection, bbox (EPSG:4326) and datetime (instant or interval)."""
        if isinstance(collections, str):
            collections = [c for c in collections.split(",") if c]
        query = SearchQuery(
            collections=tuple(collections) if collections else None,
            bbox=normalize_bbox(bbox) if bbox is not None else None,
            datetime=datetime,
            max_items=max_items,
            limit=limit,
        )
        self._check_collections(query.collections)
        return ItemSearch(self, query)

    def _iter_items(self, query: SearchQuery) -> Iterator[pystac.Item]:
        if self._api is not None:
            search = self._api.search(
                collections=list(query.collections) if query.collections else None,
                bbox=query.bbox,
                datetime=query.datetime,
                max_items=query.max_items,
                limit=query.limit,
            )
            yield from search.items()
            return
        assert self._catalog is not None
        area = box(*query.bbox) if query.bbox else None
        count = 0
        for item in self._catalog.get_items(recursive=True):
            if query.max_items is not None and count >= query.max_items:
                return
            if query.collections and item.collection_id not in query.collections:
                continue
            if area is not None and item.geometry is not None and not shape(item.geometry).intersects(area):
                continue
            if not overlaps(query.interval, *_item_interval(item)):
                continue
            count += 1
            yield item


def read_item(path: str | Path) -> pystac.Item:
    """Read one STAC item JSON file, with a clear error when it is missing or not an item."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"STAC item not found: {path}")
    try:
        return pystac.Item.from_file(str(path))
    except Exception as err:  # pystac raises several types for non-item JSON
        raise InputNotFoundError(f"{path} is not a readable STAC item: {err}") from err
