"""`PgstacItemStore`: the item store over pgstac (PostgreSQL + PostGIS), through pgstac's SQL API.

The one code path by which published layers and ingested items reach the STAC API: whatever calls
`store.upsert(item)` on this store is served by stac-fastapi-pgstac at once. Asset files stay on disk under
`files_root/<collection>/<item id>/` (the layout of the static results catalog); relative hrefs are made absolute
on the way in (as `file://` URIs), because a database row has no folder to be relative to. The static catalog is
an export of it (`export_static`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import url2pathname

import pystac

from geovigie.catalog.stac._query import SearchQuery
from geovigie.catalog.stac._store import StaticItemStore, check_id
from geovigie.errors import (
    DatabaseError,
    GeovigieError,
    InputNotFoundError,
    InvalidInputError,
    UnknownCollectionError,
)
from geovigie.paths import safe_join
from geovigie.postgres import StacDatabase
from geovigie.redaction import redact

CONNECT_TIMEOUT = 10
"""Seconds to wait for the database server to accept a connection."""
STRUCTURAL_RELS = ("self", "root", "parent", "collection", "item", "child")
"""Links the API writes itself; stored copies would point into a folder the database does not have."""


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ".."


def _absolute(href: str, base: Path) -> str:
    """A URL stays; a local path becomes a `file://` URI (served over HTTP, a bare `/path` would mean a URL path)."""
    if "://" in href:
        return href
    return (base / href).resolve().as_uri()


def local_path(href: str) -> Path | None:
    """The local file a `file://` URI (or a plain path) names; None for other URLs."""
    if href.startswith("file://"):
        return Path(url2pathname(urlsplit(href).path))
    return None if "://" in href else Path(href)


def item_record(item: pystac.Item, collection_id: str, base: Path) -> dict[str, Any]:
    """The JSON pgstac stores for `item`: its collection set, relative hrefs made absolute against `base`."""
    payload = item.to_dict(include_self_link=False, transform_hrefs=False)
    payload["collection"] = collection_id
    for asset in payload.get("assets", {}).values():
        asset["href"] = _absolute(asset["href"], base)
    payload["links"] = [{**link, "href": _absolute(link["href"], base)} for link in payload.get("links", [])
                        if link.get("rel") not in STRUCTURAL_RELS]
    return payload


def collection_record(collection: pystac.Collection) -> dict[str, Any]:
    """The JSON pgstac stores for `collection` (no structural links)."""
    payload = collection.to_dict(include_self_link=False, transform_hrefs=False)
    payload["links"] = [link for link in payload.get("links", []) if link.get("rel") not in STRUCTURAL_RELS]
    return payload


def _json_type(value: Any) -> dict[str, Any] | None:
    """The JSON-schema definition of a property value (None for objects and nulls: not filterable by CQL2)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int | float):
        return {"type": "number"}  # not "integer": pgstac would read 1.5 of another item as 1
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return {"type": "string"}
        return {"type": "string", "format": "date-time"} if "T" in value else {"type": "string"}
    if isinstance(value, list):
        kinds = {json_type["type"] for item in value if (json_type := _json_type(item)) is not None}
        return {"type": "array", "items": {"type": kinds.pop()}} if len(kinds) == 1 else {"type": "array"}
    return None


def queryable_definitions(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The queryables of items' properties: name → JSON-schema definition (`type`, `format` for date-times, a
    `title`), from the first item holding a filterable value; an array's item type when all agree."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        for name, value in (record.get("properties") or {}).items():
            if name not in found and (definition := _json_type(value)) is not None:
                found[name] = {"title": name, **definition}
    return found


def default_collection(collection_id: str) -> pystac.Collection:
    """A collection for items that name one that does not exist yet."""
    return pystac.Collection(
        id=collection_id, description=f"Items of {collection_id}", license="other",
        extent=pystac.Extent(pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
                             pystac.TemporalExtent([[datetime.now(UTC), None]])))


class PgstacItemStore:
    """An `ItemStore` whose items live in a pgstac database (served by the STAC API).

    Examples:
        >>> store = PgstacItemStore(url, "geovigie-data/results")  # doctest: +SKIP
        >>> store.upsert(item, collection)  # doctest: +SKIP
        >>> [i.id for i in store.search(SearchQuery(collections=("geovigie-results",)))]  # doctest: +SKIP
    """

    def __init__(self, url: str, files_root: str | Path) -> None:
        self.url = url
        self.root = Path(files_root).resolve()
        self.location = f"pgstac {redact(url)}"
        self._lock = threading.Lock()
        self._conn: Any = None

    # the connection: one per store, opened on first use, used by one thread at a time
    @contextlib.contextmanager
    def _database(self, doing: str) -> Iterator[Any]:
        import psycopg

        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
                    self._conn.execute("SET search_path TO pgstac, public")
                yield self._conn
            except GeovigieError:
                raise
            except psycopg.Error as err:
                if isinstance(err, psycopg.OperationalError) and self._conn is not None:
                    self._conn.close()  # reconnect next time (the server may have restarted)
                text = str(err).strip().splitlines()
                raise DatabaseError(f"{self.location}: {redact(text[0]) if text else type(err).__name__} ({doing})"
                                    ) from err

    def _one(self, sql: str, params: list[Any], doing: str) -> Any:
        with self._database(doing) as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the connection (the next call opens another)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PgstacItemStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading
    def collection_ids(self) -> list[str]:
        """Ids of the collections in the database."""
        with self._database("listing collections") as conn:
            return [row[0] for row in conn.execute("SELECT id FROM pgstac.collections ORDER BY id")]

    def collection(self, collection_id: str) -> dict[str, Any]:
        """A collection's JSON.

        Raises:
            UnknownCollectionError: no such collection.
        """
        found = self._one("SELECT content FROM pgstac.collections WHERE id = %s", [collection_id],
                          "reading a collection")
        if found is None:
            raise UnknownCollectionError(f"unknown collection {collection_id} in {self.location}; "
                                         f"known: {', '.join(self.collection_ids())}")
        return dict(found)

    def get(self, collection: str, item_id: str) -> pystac.Item:
        """One item.

        Raises:
            InputNotFoundError: no such item.
        """
        found = self._one("SELECT pgstac.get_item(%s, %s)", [item_id, collection], "reading an item")
        if found is None:
            raise InputNotFoundError(f"no item {item_id!r} in collection {collection!r} of {self.location}")
        return pystac.Item.from_dict(found, migrate=False, preserve_dict=False)

    def search(self, query: SearchQuery) -> Iterator[pystac.Item]:
        """Items matching `query` through pgstac's `search`, page by page (`query.limit` a page)."""
        for feature in self.features(query):
            yield pystac.Item.from_dict(feature, migrate=False, preserve_dict=False)

    def features(self, query: SearchQuery) -> Iterator[dict[str, Any]]:
        """The items of `search` as the JSON pgstac holds (not parsed: a reader can skip one malformed row)."""
        for collection in query.collections or ():
            if collection not in self.collection_ids():
                self.collection(collection)  # raises the clear error
        body: dict[str, Any] = {"limit": query.limit}
        if query.collections:
            body["collections"] = list(query.collections)
        if query.bbox:
            body["bbox"] = list(query.bbox)
        if query.interval != (None, None):
            body["datetime"] = f"{_iso(query.interval[0])}/{_iso(query.interval[1])}"
        count = 0
        while True:
            page = self._one("SELECT pgstac.search(%s::jsonb)", [json.dumps(body)], "searching items")
            for feature in (page or {}).get("features", []):
                if query.max_items is not None and count >= query.max_items:
                    return
                count += 1
                yield feature
            token = _next_token(page or {})
            if token is None:
                return
            body["token"] = token

    # writing
    def files_dir(self, collection: str, item_id: str) -> Path:
        """The folder of an item's asset files: `files_root/<collection>/<item id>/`."""
        return safe_join(self.root, check_id(collection, "collection id"), check_id(item_id))

    def upsert(self, item: pystac.Item, collection: pystac.Collection | None = None) -> pystac.Item:
        """Insert or replace `item`; its collection is created (from `collection` or defaults) when new.

        Relative hrefs are resolved against the item's own file when it has one, else against its `files_dir`.
        """
        collection_id = item.collection_id or (collection.id if collection else None)
        if not collection_id:
            raise InvalidInputError(f"item {item.id!r} names no collection")
        check_id(item.id)
        self.upsert_many([item], collection or default_collection(collection_id))
        return self.get(collection_id, item.id)

    def upsert_many(self, items: Iterable[pystac.Item], collection: pystac.Collection) -> int:
        """Insert or replace many items of one collection in one statement; returns how many."""
        self.ensure_collection(collection)
        records = []
        for item in items:
            self_href = item.get_self_href()
            base = Path(self_href).parent if self_href and "://" not in self_href else self.files_dir(
                collection.id, item.id)
            records.append(item_record(item, collection.id, base))
        if not records:
            return 0
        definitions = queryable_definitions(records)
        with self._database(f"writing {len(records)} item(s) of {collection.id}") as conn, conn.transaction():
            conn.execute("SELECT pgstac.upsert_items(%s::jsonb)", [json.dumps(records)])
            conn.execute("UPDATE pgstac.collections SET content = jsonb_set_lax(content, '{extent}', "
                         "pgstac.collection_extent(id, true), true, 'return_target') WHERE id = %s", [collection.id])
            # properties not yet queryable in this collection (nor in all), other than the columns pgstac reads
            known = {row[0] for row in conn.execute(
                "SELECT name FROM pgstac.queryables WHERE collection_ids IS NULL OR %s = ANY(collection_ids) "
                "UNION SELECT name FROM unnest(%s::text[]) AS name WHERE pgstac.queryable_column(name) IS NOT NULL",
                [collection.id, list(definitions)])}
            for name, definition in definitions.items():
                if name not in known:
                    conn.execute("SELECT pgstac.upsert_queryable(%s, %s::jsonb, NULL, NULL, %s::text[])",
                                 [name, json.dumps(definition), [collection.id]])
        return len(records)

    def ensure_collection(self, collection: pystac.Collection) -> None:
        """Create `collection` unless it exists (an existing one is left as it is)."""
        check_id(collection.id, "collection id")
        with self._database(f"creating collection {collection.id}") as conn:
            if conn.execute("SELECT 1 FROM pgstac.collections WHERE id = %s", [collection.id]).fetchone() is None:
                conn.execute("SELECT pgstac.create_collection(%s::jsonb)", [json.dumps(collection_record(collection))])

    def delete(self, collection: str, item_id: str) -> None:
        """Remove an item and its folder of files; unknown items are ignored."""
        import shutil

        folder = self.files_dir(collection, item_id)
        with self._database(f"deleting {item_id}") as conn:
            conn.execute("DELETE FROM pgstac.items WHERE id = %s AND collection = %s", [item_id, collection])
        shutil.rmtree(folder, ignore_errors=True)


def _next_token(page: dict[str, Any]) -> str | None:
    for link in page.get("links", []):
        if link.get("rel") == "next":
            token = parse_qs(urlsplit(link.get("href", "")).query).get("token")
            if token:
                return token[0]
    return None


def localize(item: pystac.Item, item_file: Path) -> pystac.Item:
    """`item` as its static copy at `item_file` holds it: local `file://` hrefs relative to the item's folder."""
    folder = item_file.parent
    for asset in item.assets.values():
        asset.href = _relative(asset.href, folder)
    for link in item.links:
        if isinstance(link.target, str):
            link.target = _relative(link.target, folder)
    item.set_self_href(str(item_file))
    return item


def _relative(href: str, folder: Path) -> str:
    path = local_path(href)
    if path is None or not path.is_absolute():
        return href
    relative = Path(os.path.relpath(path, folder)).as_posix()
    return relative if relative.startswith("..") else "./" + relative


def export_static(store: PgstacItemStore, target: StaticItemStore,
                  collections: tuple[str, ...] | None = None) -> int:
    """Write every item of `store` (or of `collections`) into the static catalog `target`; returns how many.

    Local hrefs become relative to the item's folder of `target` again, so the export is self-contained.
    """
    count = 0
    for collection_id in collections or tuple(store.collection_ids()):
        collection = pystac.Collection.from_dict(store.collection(collection_id), migrate=False)
        for item in store.search(SearchQuery(collections=(collection_id,), max_items=None, limit=500)):
            target.upsert(localize(item, target.item_path(collection_id, item.id)), collection)
            count += 1
    return count


class MirroredItemStore:
    """The results store with the STAC API: pgstac is the store, a static catalog its export.

    `upsert` writes the item into pgstac (what the STAC API serves), then the same item, as given, into the static
    catalog at `static.root` (what `/stac/...` serves and what people copy or browse offline); asset files live in
    the item's folder there, shared by both. Reads (`get`, `search`, `collection_ids`) come from pgstac, with local
    hrefs made relative to the static item file again (and that file as the self href), so code written for the
    static store reads them unchanged. The database (`StacDatabase`) starts on first use.

    If the pgstac write fails nothing is exported; if the export fails after it, the error is raised and a rerun
    (upserts are idempotent) brings both in line, as does `export_static`.
    """

    def __init__(self, database: StacDatabase, static: StaticItemStore) -> None:
        self.database = database
        self.static = static
        self.root = static.root
        self.location = f"pgstac ({database.location}), exported to {static.location}"
        self._store: PgstacItemStore | None = None
        self._generation = -1
        self._lock = threading.Lock()

    @property
    def pgstac(self) -> PgstacItemStore:
        """The pgstac store (the database is started on first use)."""
        url = self.database.url()
        with self._lock:
            if self._store is None or self._generation != self.database.generation:
                if self._store is not None:
                    self._store.close()  # its server was stopped and started again since
                self._store = PgstacItemStore(url, self.root)
                self._generation = self.database.generation
            return self._store

    def close(self) -> None:
        """Close the database connection (the next call opens another)."""
        if self._store is not None:
            self._store.close()

    def collection_ids(self) -> list[str]:
        """Collections in pgstac."""
        return self.pgstac.collection_ids()

    def get(self, collection: str, item_id: str) -> pystac.Item:
        """One item from pgstac (hrefs relative to its static copy)."""
        return localize(self.pgstac.get(collection, item_id), self.static.item_path(collection, item_id))

    def features(self, query: SearchQuery) -> Iterator[dict[str, Any]]:
        """Items from pgstac as stored (absolute `file://` hrefs, not parsed; see `PgstacItemStore.features`)."""
        return self.pgstac.features(query)

    def search(self, query: SearchQuery) -> Iterator[pystac.Item]:
        """Items from pgstac (hrefs relative to their static copies)."""
        for item in self.pgstac.search(query):
            yield localize(item, self.static.item_path(item.collection_id or "", item.id))

    def upsert(self, item: pystac.Item, collection: pystac.Collection | None = None) -> pystac.Item:
        """Write `item` into pgstac, then export it to the static catalog; returns the static copy."""
        self.pgstac.upsert(item.clone(), collection)
        return self.static.upsert(item, collection)

    def delete(self, collection: str, item_id: str) -> None:
        """Remove an item from pgstac and from the export (with its folder of files)."""
        self.pgstac.delete(collection, item_id)
        self.static.delete(collection, item_id)

    def files_dir(self, collection: str, item_id: str) -> Path:
        """An item's folder of files (the static layout, shared by both)."""
        return self.static.files_dir(collection, item_id)

    def item_path(self, collection: str, item_id: str) -> Path:
        """Where the exported item's JSON lives."""
        return self.static.item_path(collection, item_id)

    def relative_href(self, collection: str, item_id: str) -> str:
        """The exported item's path relative to the static catalog root."""
        return self.static.relative_href(collection, item_id)
