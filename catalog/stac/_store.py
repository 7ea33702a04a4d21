"""Item stores: where STAC items live. One interface (`search`, `get`, `upsert`, `delete`), two kinds of source.

`StaticItemStore` keeps a self-contained static STAC catalog on disk (catalog.json → collection.json → items),
the layout pystac writes and STAC Browser reads. Each upsert writes one item file and updates its collection
under a file lock, so publishing the n-th item costs what the first did and concurrent publishers (threads or
processes) never lose each other's items. `ApiItemSource` reads a STAC API through pystac-client (read only).
A pgstac-backed store is another implementation of `ItemStore`; nothing that uses one needs to change.
`open_store` decides which one a location names.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pystac
from shapely.geometry import box, shape

from geovigie.atomic import folder_lock, write_json_atomic
from geovigie.catalog.stac._query import SearchQuery, cloud_filter, cql2_select, item_interval, overlaps
from geovigie.errors import (
    GeovigieError,
    InputNotFoundError,
    InvalidInputError,
    RemoteSourceError,
    UnknownCollectionError,
)
from geovigie.http import (
    MAX_REDIRECTS,
    RetryPolicy,
    describe_failure,
    describe_status,
    http_client,
    resolve_timeout,
    send,
)
from geovigie.paths import check_name, is_safe_name, safe_join

ITEM_ID_MAX = 128


@runtime_checkable
class ItemSource(Protocol):
    """Anything items can be searched in."""

    location: str

    def collection_ids(self) -> list[str]:
        """Ids of the collections held."""

    def search(self, query: SearchQuery) -> Iterator[pystac.Item]:
        """Items matching `query`, lazily, at most `query.max_items`."""


@runtime_checkable
class ItemStore(ItemSource, Protocol):
    """A source items can also be written to."""

    def get(self, collection: str, item_id: str) -> pystac.Item:
        """One item; `InputNotFoundError` when absent."""

    def upsert(self, item: pystac.Item, collection: pystac.Collection | None = None) -> pystac.Item:
        """Insert or replace `item` in its collection (created from `collection` or defaults when new)."""

    def delete(self, collection: str, item_id: str) -> None:
        """Remove an item (and its folder of files, for stores that keep files)."""

    def files_dir(self, collection: str, item_id: str) -> Path:
        """The folder where an item's asset files are kept."""


def check_id(value: str, what: str = "item id") -> str:
    """Ids become folder and file names: refuse anything but a plain bounded name (`geovigie.paths.check_name`)."""
    return check_name(value, what, ITEM_ID_MAX)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class StaticItemStore:
    """A static STAC catalog folder used as a store.

    Examples:
        >>> store = StaticItemStore("geovigie-data/results")  # doctest: +SKIP
        >>> store.upsert(item)  # doctest: +SKIP
        >>> [i.id for i in store.search(SearchQuery(collections=("geovigie-results",)))]  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, *, catalog_id: str = "geovigie", description: str = "geovigie items") -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root / "catalog.json")
        self.catalog_id, self.description = catalog_id, description

    # paths: the only place that knows the layout
    def collection_path(self, collection: str) -> Path:
        """Where a collection's JSON lives."""
        return safe_join(self.root, check_id(collection, "collection id"), "collection.json")

    def item_path(self, collection: str, item_id: str) -> Path:
        """Where an item's JSON lives."""
        return safe_join(self.root, check_id(collection, "collection id"), check_id(item_id), f"{item_id}.json")

    def files_dir(self, collection: str, item_id: str) -> Path:
        """An item's folder: its JSON and its asset files."""
        return self.item_path(collection, item_id).parent

    def relative_href(self, collection: str, item_id: str) -> str:
        """The item's path relative to the catalog root (for links and static file serving)."""
        return self.item_path(collection, item_id).relative_to(self.root).as_posix()

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return folder_lock(self.root)

    # reading
    def collection_ids(self) -> list[str]:
        """Collections linked from catalog.json (or present on disk when there is no root yet)."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/collection.json"))

    def _read(self, path: Path) -> pystac.Item:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            item = pystac.Item.from_dict(payload, href=str(path), migrate=False, preserve_dict=False)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise InvalidInputError(f"{path}: not a readable STAC item ({err})") from err
        return item

    def get(self, collection: str, item_id: str) -> pystac.Item:
        """One item.

        Raises:
            InputNotFoundError: no such item.
            InvalidInputError: the id is not a plain name, or the file is not a STAC item.
        """
        path = self.item_path(collection, item_id)
        if not path.is_file():
            raise InputNotFoundError(f"no item {item_id!r} in collection {collection!r} of {self.location}")
        return self._read(path)

    def item_paths(self, collections: tuple[str, ...] | None = None) -> Iterator[Path]:
        """Item JSON files, collection by collection, in id order (no file is parsed)."""
        for collection in collections or tuple(self.collection_ids()):
            folder = safe_join(self.root, collection) if is_safe_name(collection, ITEM_ID_MAX) else None
            if folder is None or not (folder / "collection.json").is_file():
                raise UnknownCollectionError(
                    f"unknown collection {collection} in {self.location}; known: {', '.join(self.collection_ids())}"
                )
            for child in sorted(folder.iterdir()):
                path = child / f"{child.name}.json"
                if child.is_dir() and path.is_file():
                    yield path

    def search(self, query: SearchQuery) -> Iterator[pystac.Item]:
        """Items matching `query`, read one file at a time."""
        area = box(*query.bbox) if query.bbox else None
        count = 0
        for path in self.item_paths(query.collections):
            if query.max_items is not None and count >= query.max_items:
                return
            item = self._read(path)
            if area is not None and item.geometry is not None and not shape(item.geometry).intersects(area):
                continue
            if not overlaps(query.interval, *item_interval(item)):
                continue
            count += 1
            yield item

    # writing
    def _ensure_catalog(self) -> None:
        root = self.root / "catalog.json"
        if not root.exists():
            catalog = {"type": "Catalog", "stac_version": pystac.get_stac_version(), "id": self.catalog_id,
                       "description": self.description, "links": [
                           {"rel": "root", "href": "./catalog.json", "type": "application/json"}]}
            write_json_atomic(root, catalog)

    def _ensure_collection(self, collection_id: str, template: pystac.Collection | None) -> dict[str, Any]:
        path = self.collection_path(collection_id)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        if template is None:
            template = pystac.Collection(
                id=collection_id, description=f"Items of {collection_id}", license="other",
                extent=pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                                     pystac.TemporalExtent([[datetime.now(UTC), None]])))
        payload = template.to_dict(include_self_link=False, transform_hrefs=False)
        payload["links"] = [link for link in payload.get("links", []) if link.get("rel") not in
                            ("root", "parent", "child", "item", "self")]
        payload["links"] += [{"rel": "root", "href": "../catalog.json", "type": "application/json"},
                             {"rel": "parent", "href": "../catalog.json", "type": "application/json"}]
        payload["extent"]["spatial"]["bbox"] = [[]]  # filled by the first item
        self._link_child(collection_id, payload.get("title"))
        return payload

    def _link_child(self, collection_id: str, title: str | None) -> None:
        root = self.root / "catalog.json"
        catalog = json.loads(root.read_text(encoding="utf-8"))
        href = f"./{collection_id}/collection.json"
        if not any(link.get("href") == href for link in catalog["links"]):
            link = {"rel": "child", "href": href, "type": "application/json"}
            if title:
                link["title"] = title
            catalog["links"].append(link)
            write_json_atomic(root, catalog)

    def upsert(self, item: pystac.Item, collection: pystac.Collection | None = None) -> pystac.Item:
        """Write `item` (its collection id decides where) and update the collection's links and extent.

        Only the item's file and its collection's file are written, under a lock shared by every process.
        """
        collection_id = item.collection_id or (collection.id if collection else None)
        if not collection_id:
            raise InvalidInputError(f"item {item.id!r} names no collection")
        path = self.item_path(collection_id, item.id)
        payload = item.to_dict(include_self_link=False, transform_hrefs=False)
        payload["collection"] = collection_id
        payload["links"] = [link for link in payload.get("links", []) if link.get("rel") not in
                            ("root", "parent", "collection", "self")]
        payload["links"] += [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        ]
        with self._locked():
            self._ensure_catalog()
            record = self._ensure_collection(collection_id, collection)
            write_json_atomic(path, payload)
            href = f"./{item.id}/{item.id}.json"
            if not any(link.get("href") == href for link in record["links"]):
                record["links"].append({"rel": "item", "href": href, "type": "application/geo+json"})
            _extend(record, item)
            write_json_atomic(self.collection_path(collection_id), record)
        return self._read(path)

    def delete(self, collection: str, item_id: str) -> None:
        """Remove an item's folder and its link; unknown items are ignored."""
        with self._locked():
            folder = self.files_dir(collection, item_id)
            shutil.rmtree(folder, ignore_errors=True)
            path = self.collection_path(collection)
            if path.exists():
                record = json.loads(path.read_text(encoding="utf-8"))
                href = f"./{item_id}/{item_id}.json"
                record["links"] = [link for link in record["links"] if link.get("href") != href]
                write_json_atomic(path, record)


def _extend(record: dict[str, Any], item: pystac.Item) -> None:
    """Grow a collection's extent to cover `item` (an extent never shrinks on upsert)."""
    spatial = record["extent"]["spatial"]["bbox"]
    if item.bbox:
        west, south, east, north = item.bbox[:4] if len(item.bbox) == 4 else (*item.bbox[:2], *item.bbox[3:5])
        if not spatial or not spatial[0]:
            spatial[:] = [[west, south, east, north]]
        else:
            current = spatial[0]
            spatial[0] = [min(current[0], west), min(current[1], south), max(current[2], east), max(current[3], north)]
    start, end = item_interval(item)
    interval = record["extent"]["temporal"]["interval"]
    lo, hi = interval[0] if interval and interval[0] else (None, None)

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    if start is not None and (lo is None or iso(start) < lo):
        lo = iso(start)
    if end is not None and (hi is None or iso(end) > hi):
        hi = iso(end)
    record["extent"]["temporal"]["interval"] = [[lo, hi]]
    record.setdefault("updated", _now())
    record["updated"] = _now()


class ApiItemSource:
    """A STAC API searched with pystac-client (read only), over geovigie's one HTTP policy (`geovigie.http`).

    Every failure of the remote side (nothing listening, no answer within the timeout, an HTTP error, a redirect
    loop, an answer that is not STAC JSON) raises one `RemoteSourceError` naming the URL and the problem, mapped in
    `_remote` only. Connection errors, timeouts and 429/502/503/504 answers are retried `retries` times with
    exponential backoff (`backoff` seconds first, a `Retry-After` wins). The timeout is the settings'
    `http_timeout` (`GEOVIGIE_HTTP_TIMEOUT`) when configured, else `timeout`.
    """

    MAX_REDIRECTS = MAX_REDIRECTS

    def __init__(
        self,
        url: str,
        *,
        modifier: Callable[[Any], Any] | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        transport: Any = None,
    ) -> None:
        from pystac_client import Client

        self.location = url
        self.timeout = resolve_timeout(timeout)
        stac_io = _httpx_stac_io()(http_client(self.timeout, transport=transport), RetryPolicy(retries, backoff))
        with self._remote("reading the landing page"):
            self._client = Client.open(url, modifier=modifier, stac_io=stac_io)

    def collection_ids(self) -> list[str]:
        """Collections the API advertises."""
        with self._remote("listing collections"):
            return [c.id for c in self._client.get_collections()]

    applies_filter = True
    """`search` applies `SearchQuery.filter` itself: sent to the server, or checked here when it has no filter."""

    def search(self, query: SearchQuery) -> Iterator[pystac.Item]:
        """Items from the API's item search, page by page, every match unless `max_items` caps them.

        The CQL2 filter goes to the server (CQL2-JSON, POST) when it conforms to the Filter extension; otherwise
        the server's pages are checked here with the `cql2` library, and `max_items` counts what passes.
        """
        from pystac_client import ConformanceClasses

        kwargs: dict[str, Any] = {"collections": list(query.collections) if query.collections else None,
                                  "bbox": query.bbox, "datetime": query.datetime, "max_items": query.max_items,
                                  "limit": query.limit}
        local = None
        if query.filter is not None:
            with self._remote("reading the conformance classes"):
                remote = self._client.conforms_to(ConformanceClasses.FILTER)
            if remote:
                kwargs.update(filter=query.filter, filter_lang="cql2-json")
            else:
                local, kwargs["max_items"] = query.filter, None
        with self._remote("searching items"):
            items = self._client.search(**kwargs).items()
        found = self._guarded(items)
        if local is None:
            yield from found
            return
        kept = cql2_select(found, local)
        yield from itertools.islice(kept, query.max_items)

    def search_area(self, collections: Sequence[str], *, intersects: dict[str, Any] | None = None,
                    datetime: str | None = None, max_cloud: float | None = None,
                    max_items: int | None = 100) -> Iterator[pystac.Item]:
        """Items of `collections` over a GeoJSON geometry (`intersects`) in `datetime`, lazily, page by page.

        The cloud-cover limit (`max_cloud` %) goes to the server as the cloud rule's CQL2 `filter` (`cloud_filter`:
        unknown covers kept) when the API conforms to the Filter extension, else as the `query` extension's
        `eo:cloud_cover` (which drops unknown covers: `query` has no OR), else not at all: callers check what comes
        back with `cloud_skip_reason`.
        """
        from pystac_client import ConformanceClasses

        kwargs: dict[str, Any] = {"collections": list(collections) or None, "datetime": datetime,
                                  "max_items": max_items, "limit": min(max_items or 100, 100)}
        if intersects is not None:
            kwargs["intersects"] = intersects
        if max_cloud is not None:
            with self._remote("reading the conformance classes"):
                if self._client.conforms_to(ConformanceClasses.FILTER):
                    kwargs["filter"], kwargs["filter_lang"] = cloud_filter(max_cloud), "cql2-json"
                elif self._client.conforms_to(ConformanceClasses.QUERY):
                    kwargs["query"] = {"eo:cloud_cover": {"lte": max_cloud}}
        with self._remote("searching items"):
            items = self._client.search(**kwargs).items()
        yield from self._guarded(items)

    def _guarded(self, items: Iterator[pystac.Item]) -> Iterator[pystac.Item]:
        """`items` of a remote search, each page fetch's failures turned into `RemoteSourceError`."""
        while True:
            with self._remote("searching items"):
                item = next(items, None)
            if item is None:
                return
            yield item

    @contextlib.contextmanager
    def _remote(self, doing: str) -> Iterator[None]:
        """Turn what pystac-client, httpx and pystac raise about the remote side into `RemoteSourceError`."""
        import httpx
        from pystac_client.errors import ClientTypeError
        from pystac_client.exceptions import APIError
        from pystac_client.warnings import DoesNotConformTo, PystacClientWarning

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PystacClientWarning)  # what they announce fails clearly below
                yield
        except GeovigieError:
            raise
        except (APIError, ClientTypeError, DoesNotConformTo, httpx.HTTPError, httpx.InvalidURL, pystac.STACError,
                pystac.STACTypeError, pystac.errors.RequiredPropertyMissing, ValueError, KeyError, TypeError) as err:
            raise RemoteSourceError(f"STAC API {self.location}: {self._reason(err)} ({doing})") from err

    def _reason(self, error: BaseException) -> str:
        """What went wrong, in words: the HTTP policy's classifier, then what only a STAC API can get wrong."""
        from pystac_client.errors import ClientTypeError
        from pystac_client.exceptions import APIError
        from pystac_client.warnings import DoesNotConformTo

        if (reason := describe_failure(error, self.timeout)) is not None:
            if reason.startswith("answered an HTML page"):
                return "answered an HTML page, not STAC JSON (is this the root URL of a STAC API?)"
            return reason
        if isinstance(error, APIError) and getattr(error, "status_code", None):
            return describe_status(int(error.status_code or 0), str(error))
        if isinstance(error, DoesNotConformTo):
            return f"not a STAC API: it does not conform to {', '.join(map(str, error.args))}"
        if isinstance(error, ClientTypeError | pystac.STACTypeError):
            return "the answer is JSON but not a STAC catalog or API landing page (no STAC 'type')"
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"the answer is not a STAC API document ({first[:160]})"


@functools.cache
def _httpx_stac_io() -> type:
    """pystac-client's `StacApiIO` sending its requests through an httpx client under a `RetryPolicy` (the class
    is made on first use: pystac-client is imported only when a STAC API is)."""
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    class HttpxStacIO(StacApiIO):
        def __init__(self, client: Any, policy: RetryPolicy) -> None:
            super().__init__()
            self.http, self.policy = client, policy

        def request(self, href: str, method: str | None = None, headers: dict[str, str] | None = None,
                    parameters: dict[str, Any] | None = None) -> str:
            method = (method or "GET").upper()
            body = {"json": parameters} if method in ("POST", "PUT", "PATCH") else {"params": parameters or None}
            response = send(self.http, method, href, self.policy, headers=headers, **body)
            if not 200 <= response.status_code < 300:
                error = APIError(response.text)
                error.status_code = response.status_code
                raise error
            return response.content.decode("utf-8")

    return HttpxStacIO
