"""One search interface over the project's own static catalogs and any remote STAC API."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pystac

from geovigie.catalog.stac._open import open_store
from geovigie.catalog.stac._query import SearchQuery, cql2_filter, cql2_select
from geovigie.catalog.stac._store import ItemSource
from geovigie.errors import EmptySearchError, InputNotFoundError, InvalidInputError, UnknownCollectionError
from geovigie.types import BBoxLike, DatetimeLike, normalize_bbox

RequestModifier = Callable[[Any], Any]


class ItemSearch:
    """A lazy search: nothing is read or requested until it is iterated."""

    def __init__(self, source: CatalogClient, query: SearchQuery) -> None:
        self._source = source
        self.query = query

    def items(self) -> Iterator[pystac.Item]:
        """Yield matching items, at most `max_items` of them (counted after the filter).

        A STAC API gets the CQL2 filter itself (`ApiItemSource`); any other source is searched for everything
        else and its items are checked here with the `cql2` library.
        """
        query, backend = self.query, self._source.backend
        if query.filter is None or getattr(backend, "applies_filter", False):
            yield from backend.search(query)
            return
        kept = cql2_select(backend.search(replace(query, max_items=None)), query.filter)
        yield from itertools.islice(kept, query.max_items)

    def item_list(self, *, require: bool = True) -> list[pystac.Item]:
        """All matching items; `EmptySearchError` when none matched and `require` is set."""
        found = list(self.items())
        if require and not found:
            q = self.query
            raise EmptySearchError(
                f"no item in {self._source.source} matches collections={list(q.collections or [])} "
                f"bbox={q.bbox} datetime={q.datetime}" + (f" filter={q.filter}" if q.filter else "")
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

    def __init__(self, backend: ItemSource) -> None:
        self.backend = backend
        self.source = backend.location

    @classmethod
    def open(
        cls, source: str | Path, *, modifier: RequestModifier | None = None, timeout: float | None = None
    ) -> CatalogClient:
        """Open `source` as `open_store` reads it: a STAC API URL, a PostgreSQL (pgstac) URL, or a static
        catalog.json (or its folder).

        Args:
            source: STAC API root URL, database URL, or path to a static catalog.
            modifier: called on each remote item/request, e.g. to sign Planetary Computer URLs.
            timeout: seconds for remote requests; the settings' `http_timeout` when configured or when None.
        """
        return cls(open_store(str(source), modifier=modifier, timeout=timeout))

    def collection_ids(self) -> list[str]:
        """Ids of the collections this source holds."""
        return self.backend.collection_ids()

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
        filter: str | dict[str, Any] | None = None,  # noqa: A002 - the STAC API parameter's name
    ) -> ItemSearch:
        """Search items by collection, bbox (EPSG:4326), datetime (instant or interval) and a CQL2 filter
        (cql2-text or CQL2-JSON); `max_items` (None: every match) counts items that pass the filter.

        Raises:
            InvalidInputError: the filter is not valid CQL2.
            UnknownCollectionError: a collection the source does not hold.
        """
        if isinstance(collections, str):
            collections = [c for c in collections.split(",") if c]
        query = SearchQuery(
            collections=tuple(collections) if collections else None,
            bbox=normalize_bbox(bbox) if bbox is not None else None,
            datetime=datetime,
            max_items=max_items,
            limit=limit,
            filter=cql2_filter(filter) if filter is not None else None,
        )
        self._check_collections(query.collections)
        return ItemSearch(self, query)


def read_item(path: str | Path) -> pystac.Item:
    """Read one STAC item JSON file, with a clear error when it is missing or not an item."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"STAC item not found: {path}")
    try:
        item = pystac.Item.from_file(str(path))
    except Exception as err:  # pystac raises many types (KeyError, TypeError, STACTypeError...) for non-item JSON
        raise InvalidInputError(f"{path} is not a readable STAC item: {type(err).__name__}: {err}") from err
    for key, asset in item.assets.items():
        if not isinstance(asset.href, str) or not asset.href:
            raise InvalidInputError(f"{path}: asset {key!r} has no href")
    return item
