"""The STAC API of geovigie: stac-fastapi-pgstac over the pgstac database, mounted in the service at `/api/stac`.

Items get there through `catalog.stac.PgstacItemStore` (publishing, ingesting); this module only serves them. The
database is the server at `database_url` when one is given, else geovigie's private PostgreSQL cluster under
`<data_dir>/postgres`, started on the first STAC API request (or at start-up with `eager=True`) and stopped when
the service stops. A database that cannot start leaves the rest of the service working: the STAC API answers 503
with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import geovigie
from geovigie.config_file import describe_errors
from geovigie.errors import DatabaseError, GeovigieError
from geovigie.postgres import StacDatabase, stac_database

logger = logging.getLogger(__name__)

STAC_API_PREFIX = "/api/stac"
"""Where the STAC API lives in the service (its landing page is `/api/stac/`)."""
STATEMENT_TIMEOUT_MS = 10_000
"""Longest SQL statement a STAC API request may run (PostgreSQL `statement_timeout` on the API's connections)."""
LONG_WORD = re.compile(r"\S{65,}")


AssetHref = Callable[[str, str, str, str], str | None]
"""`(collection, item id, asset key, href)` → the asset's http(s) URL, or None to keep its href."""


def build_stac_api(*, transactions: bool = True, asset_href: AssetHref | None = None) -> Any:
    """The stac-fastapi-pgstac `StacApi` (core, collections, features, item search, filter, sort, fields, query,
    token pagination, collection search; transactions when `transactions`), with no database attached yet.

    Links are built from the request's base URL only (stac-fastapi's proxy-header middleware is removed: the
    service sets the base URL from its configured public URL); errors never echo long values whole.
    `asset_href(collection, item_id, asset_key, href)` gives the http(s) URL served for an asset (None: left as is).
    """
    import os

    # stac_fastapi.pgstac.app builds default settings at import and logs a warning about their generic names
    for name, value in (("STAC_FASTAPI_TITLE", "geovigie STAC API"), ("STAC_FASTAPI_LANDING_ID", "geovigie"),
                        ("STAC_FASTAPI_DESCRIPTION", "Imagery and map layers of geovigie, served from pgstac."),
                        ("STAC_FASTAPI_VERSION", geovigie.__version__)):
        os.environ.setdefault(name, value)
    from stac_fastapi.pgstac.app import instantiate_api
    from stac_fastapi.pgstac.config import Settings as StacSettings
    from stac_fastapi.pgstac.models.extensions import Extensions

    settings = StacSettings(
        stac_fastapi_title="geovigie STAC API", stac_fastapi_landing_id="geovigie",
        stac_fastapi_description="Imagery and map layers of geovigie, served from pgstac.",
        stac_fastapi_version=geovigie.__version__, enable_transactions_extensions=transactions,
        enabled_extensions=None, root_path="", prefix_path="", openapi_url="/api", docs_url="/api.html",
    )

    @contextlib.asynccontextmanager
    async def no_lifespan(app: FastAPI) -> AsyncIterator[None]:  # the database is attached by StacApiMount
        yield

    from stac_fastapi.api.middleware import ProxyHeaderMiddleware

    api = instantiate_api(client=_client_class(asset_href), settings=settings,
                          extensions=Extensions(settings=settings), lifespan=no_lifespan)
    api.client.landing_page_id = settings.stac_fastapi_landing_id
    _sort_v1_0(api.client.extensions)
    # links from X-Forwarded-* / Forwarded headers let any client write `javascript://...` into them
    api.app.user_middleware = [m for m in api.app.user_middleware if m.cls is not ProxyHeaderMiddleware]
    _short_errors(api.app)
    return api


SORT_V1_1 = re.compile(r"^https://api\.stacspec\.org/v1\.1\.0/((item-search|ogcapi-features)#sort)$")


def _sort_v1_0(extensions: list[Any]) -> None:
    """Advertise the Sort extension also as v1.0.0 (the same `sortby`), the URI pystac-client looks for (v1.0.*)."""
    for extension in extensions:
        classes = getattr(extension, "conformance_classes", None)
        if isinstance(classes, list):
            classes += [f"https://api.stacspec.org/v1.0.0/{found.group(1)}" for uri in list(classes)
                        if (found := SORT_V1_1.match(uri))]


def _shorten(text: str) -> str:
    """`text` with every word over 64 characters cut (ids and values a client sent are not echoed whole)."""
    return LONG_WORD.sub(lambda match: match.group(0)[:40] + "…", text)[:500]


def _short_errors(app: FastAPI) -> None:
    """STAC API error bodies (`code`, `description`) without long echoed values; database errors a request
    causes are 400, a statement over the timeout 503."""
    import asyncpg
    from fastapi.exceptions import RequestValidationError
    from stac_fastapi.api.errors import DEFAULT_STATUS_CODES
    from starlette.requests import Request

    def handler(status: int) -> Any:
        def handle(request: Request, exc: Exception) -> JSONResponse:
            if status >= 500:
                logger.error("STAC API error on %s: %s", request.url.path, _shorten(str(exc)))
            headers = {"Retry-After": "5"} if status == 503 else None
            return JSONResponse({"code": type(exc).__name__, "description": _shorten(str(exc))},
                                status_code=status, headers=headers)
        return handle

    def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = describe_errors(list(exc.errors()[:5]), "request")
        return JSONResponse({"code": "BadRequest", "description": _shorten(problems)}, status_code=400)

    for exc_class, status in DEFAULT_STATUS_CODES.items():
        app.add_exception_handler(exc_class, handler(status))
    app.add_exception_handler(asyncpg.exceptions.QueryCanceledError, handler(503))
    for bad_input in (asyncpg.exceptions.DataError, asyncpg.exceptions.RaiseError,
                      asyncpg.exceptions.SyntaxOrAccessError):
        app.add_exception_handler(bad_input, handler(400))
    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]


DEFAULT_FIELDS = frozenset({"type", "stac_version", "id", "collection", "geometry", "bbox", "links", "assets",
                            "properties.datetime", "properties.start_datetime", "properties.end_datetime"})
"""What the Fields extension returns for `fields` given empty: the fields of a valid STAC Item."""
MINIMAL_FIELDS = frozenset({"type", "stac_version", "id", "collection"})
"""Kept beside the fields a client includes (what names the item and its links)."""
LINK_TITLES = {"self": "{name}", "root": "geovigie STAC API", "parent": "geovigie STAC API",
               "items": "Items of {name}", "queryables": "Queryables of {name}",
               "license": "Licence of {name}", "http://www.opengis.net/def/rel/ogc/1.0/queryables":
               "Queryables of {name}"}
"""Titles given to a collection's links that have none (STAC best practice; a client can show them)."""
SEARCH_CONTEXT = "auto"
"""pgstac's `context` setting for every search: `numberMatched` counted (estimated only on very large tables)."""


def fields_wanted(search_request: Any, request: Any) -> tuple[set[str], set[str]] | None:
    """The (include, exclude) sets of a search's Fields request as the extension's semantics read it, None for
    every field (no `fields` asked).

    Empty (GET `fields=`, POST `{}` or null / empty lists): the default fields of a valid item. Only `exclude`: every
    field less those in a POST body that has no `include` key, the default ones less those otherwise. `include`:
    those (and `MINIMAL_FIELDS`); a field both included and excluded, or whose child is included, is kept.
    """
    from stac_fastapi.pgstac.utils import clean_exclude_set

    include: set[str] = set()
    exclude: set[str] = set()
    include_missing = False
    if request.method == "GET":
        raw = request.query_params.get("fields")
        if raw is None:
            return None
        for token in (part.strip() for part in raw.split(",")):
            if token.startswith("-"):
                exclude.add(token[1:])
            elif token:
                include.add(token.removeprefix("+"))
    else:
        if "fields" not in search_request.model_fields_set or search_request.fields is None:
            return None
        fields = search_request.fields
        include, exclude = set(fields.include or ()), set(fields.exclude or ())
        include_missing = "include" not in fields.model_fields_set
    if include:
        return include | MINIMAL_FIELDS, clean_exclude_set(exclude, include)
    if exclude and include_missing:
        return set(), exclude
    return set(DEFAULT_FIELDS), exclude


def _client_class(asset_href: AssetHref | None = None) -> Any:
    """stac-fastapi-pgstac's client, giving back the `"datetime": null` pgstac drops from ranged items, asset
    hrefs the service serves over http(s) in place of the `file://` paths stored, `numberMatched`, and the Fields
    extension's include / exclude semantics (`fields_wanted`) in GeoJSON responses.

    pgstac 0.10 strips null values when it stores an item (stac-utils/pgstac#158, #425), so an item with
    `start_datetime`/`end_datetime` comes back without the `datetime` key the STAC spec requires (as null).
    stac-fastapi-pgstac answers a `fields` search as plain JSON, with every field for an empty request; here pgstac
    returns whole items and the fields are picked afterwards, so the response stays `application/geo+json`.
    A client's `conf` is never passed to pgstac (it would set pgstac's settings, such as its base URL).
    """
    from stac_fastapi.pgstac.core import CoreCrudClient
    from stac_fastapi.pgstac.utils import filter_fields

    class GeovigieClient(CoreCrudClient):
        async def get_collection(self, collection_id: str, request: Any, **kwargs: Any) -> Any:
            collection = await super().get_collection(collection_id, request, **kwargs)
            name = collection.get("title") or collection_id
            for link in collection.get("links", []):
                if isinstance(link, dict) and not link.get("title"):
                    rel = str(link.get("rel"))
                    link["title"] = LINK_TITLES.get(rel, "{rel}: {name}").format(name=name, rel=rel)
            return collection

        async def _search_base(self, search_request: Any, request: Any) -> Any:
            wanted = fields_wanted(search_request, request)
            if hasattr(search_request, "fields"):
                search_request.fields = None
            search_request.conf = {"context": SEARCH_CONTEXT}
            collection = await super()._search_base(search_request, request)
            features = collection.get("features", [])
            if wanted is not None:
                features = collection["features"] = [filter_fields(feature, *wanted) for feature in features]
            if "numberMatched" not in collection and not any(
                    link.get("rel") in ("next", "prev") for link in collection.get("links", [])):
                collection["numberMatched"] = len(features)  # one page holds them all (pgstac counted none)
            for feature in features:
                properties = feature.get("properties")
                if isinstance(properties, dict) and "start_datetime" in properties:
                    properties.setdefault("datetime", None)
                assets = feature.get("assets")
                if asset_href is not None and isinstance(assets, dict):
                    for key, asset in assets.items():
                        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
                            continue
                        served = asset_href(str(feature.get("collection")), str(feature.get("id")), key,
                                            asset["href"])
                        if served is not None:
                            asset["href"] = served
            return collection

    return GeovigieClient


def _postgres_settings(url: str, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS) -> Any:
    """stac-fastapi-pgstac's settings for one database URL (also a Unix socket URL, which it cannot format), with
    a statement timeout on every connection of the API's pools."""
    from stac_fastapi.pgstac.config import PostgresSettings, ServerSettings

    class UrlPostgresSettings(PostgresSettings):
        @property
        def connection_string(self) -> str:
            return url

    server = ServerSettings(statement_timeout=str(statement_timeout_ms))
    return UrlPostgresSettings(pguser="-", pgpassword="-", pghost="-", pgport=0, pgdatabase="-",
                               server_settings=server)


class StacApiMount:
    """ASGI app: the STAC API, with its database attached on the first request and detached by `close()`."""

    def __init__(self, api_app: FastAPI, *, database: StacDatabase, writable: bool = True) -> None:
        from geovigie.service.stac_guard import StacRequestGuard

        self.app = api_app
        self.guarded = StacRequestGuard(api_app)
        self.database = database
        self.writable = writable
        self.error: str | None = None
        self._connected = False
        self._lock = asyncio.Lock()

    @property
    def cluster(self) -> Any:
        """The private PostgreSQL (None with a configured server)."""
        return self.database.cluster

    def _start_database(self) -> str:
        return self.database.url()

    async def connect(self) -> None:
        """Start (or reach) the database and open the connection pools; remembers a failure's message."""
        from stac_fastapi.pgstac.db import connect_to_db

        async with self._lock:
            if self._connected:
                return
            try:
                url = await run_in_threadpool(self._start_database)
                await connect_to_db(self.app, postgres_settings=_postgres_settings(url),
                                    add_write_connection_pool=self.writable)
            except GeovigieError as err:
                self.error = str(err)
                logger.error("STAC API unavailable: %s", err)
                return
            except OSError as err:  # asyncpg: nothing listens at the URL
                self.error = f"cannot reach the STAC database: {err}"
                logger.error("STAC API unavailable: %s", self.error)
                return
            self.error, self._connected = None, True

    async def close(self) -> None:
        """Close the pools and stop the private cluster if this process started it."""
        from stac_fastapi.pgstac.db import close_db_connection

        async with self._lock:
            if self._connected:
                await close_db_connection(self.app)
                self._connected = False
            if self.database.started_here:
                await run_in_threadpool(self.database.stop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._connected:
            await self.connect()
            if not self._connected:
                body = {"code": DatabaseError.__name__, "description": self.error or "STAC database unavailable"}
                await JSONResponse(body, status_code=503)(scope, receive, send)
                return
        # links are built from `app_root_path` and named routes are looked up in `router`, both of which Starlette
        # keeps at the top-level app's: give the API its own (under the public URL's path, see PublicBaseUrl)
        inner = {key: value for key, value in scope.items() if key != "router"}
        public_prefix = scope.get("geovigie.public_prefix", "")
        await self.guarded({**inner, "app_root_path": public_prefix + scope.get("root_path", "")}, receive, send)


class _LandingWithoutSlash:
    """The landing page also at `/api/stac` (clients are given either form; the links it holds are the same)."""

    def __init__(self, mount: StacApiMount) -> None:
        self.mount = mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        await self.mount({**scope, "path": path + "/", "raw_path": (path + "/").encode(), "root_path": path},
                         receive, send)


def mount_stac_api(app: FastAPI, *, data_dir: str | Path, database_url: str | None = None,
                   prefix: str = STAC_API_PREFIX, transactions: bool = True, eager: bool = False,
                   database: StacDatabase | None = None,
                   asset_href: AssetHref | None = None) -> StacApiMount:
    """Mount the STAC API at `prefix` in `app`; its database follows `app`'s lifespan.

    Args:
        app: the geovigie service.
        data_dir: where the private cluster lives (`<data_dir>/postgres`) when no `database_url` is given.
        database_url: a PostgreSQL server with PostGIS (pgstac is installed or upgraded in it on first use).
        prefix: the API's path in the service.
        transactions: serve the Transaction extension (POST/PUT/DELETE of items and collections).
        eager: start the database when the service starts rather than on the first STAC API request.
        database: the process's database handle for this configuration (`postgres.stac_database`), shared with the
            stores that publish; made from `database_url` / `data_dir` when not given. The private cluster is
            stopped when the service stops if this process started it (by serving or by publishing).
        asset_href: the http(s) URL of an item's asset (`collection, item id, asset key, href`), None to keep it.
    """
    api = build_stac_api(transactions=transactions, asset_href=asset_href)
    database = database or stac_database(database_url, data_dir)
    mount = StacApiMount(api.app, database=database, writable=transactions)
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[Any]:
        async with previous(parent) as state:
            if eager:
                await mount.connect()
            try:
                yield state
            finally:
                await mount.close()

    app.router.lifespan_context = lifespan
    app.mount(prefix, mount, name="stac-api")

    app.router.routes.append(Route(prefix, _LandingWithoutSlash(mount), include_in_schema=False))
    return mount
