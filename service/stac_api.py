"""The STAC API of geovigie: stac-fastapi-pgstac over the pgstac database, mounted in the service at `/api/stac`.

Items get there through `catalog.PgstacItemStore` (publishing, ingesting); this module only serves them. The
database is the server at `database_url` when one is given, else geovigie's private PostgreSQL cluster under
`<data_dir>/postgres`, started on the first STAC API request (or at start-up with `eager=True`) and stopped when
the service stops. A database that cannot start leaves the rest of the service working: the STAC API answers 503
with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

import geovigie
from geovigie.errors import DatabaseError, GeovigieError
from geovigie.postgres import StacDatabase, stac_database

logger = logging.getLogger(__name__)

STAC_API_PREFIX = "/api/stac"
"""Where the STAC API lives in the service (its landing page is `/api/stac/`)."""


def build_stac_api(*, transactions: bool = True) -> Any:
    """The stac-fastapi-pgstac `StacApi` (core, collections, features, item search, filter, sort, fields, query,
    token pagination, collection search; transactions when `transactions`), with no database attached yet."""
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

    api = instantiate_api(client=_client_class(), settings=settings, extensions=Extensions(settings=settings),
                          lifespan=no_lifespan)
    api.client.landing_page_id = settings.stac_fastapi_landing_id
    return api


def _client_class() -> Any:
    """stac-fastapi-pgstac's client, giving back the `"datetime": null` pgstac drops from ranged items.

    pgstac 0.10 strips null values when it stores an item (stac-utils/pgstac#158, #425), so an item with
    `start_datetime`/`end_datetime` comes back without the `datetime` key the STAC spec requires (as null).
    """
    from stac_fastapi.pgstac.core import CoreCrudClient

    class DatetimeNullClient(CoreCrudClient):
        async def _search_base(self, search_request: Any, request: Any) -> Any:
            collection = await super()._search_base(search_request, request)
            for feature in collection.get("features", []):
                properties = feature.get("properties")
                if isinstance(properties, dict) and "start_datetime" in properties:
                    properties.setdefault("datetime", None)
            return collection

    return DatetimeNullClient


def _postgres_settings(url: str) -> Any:
    """stac-fastapi-pgstac's settings for one database URL (also a Unix socket URL, which it cannot format)."""
    from stac_fastapi.pgstac.config import PostgresSettings

    class UrlPostgresSettings(PostgresSettings):
        @property
        def connection_string(self) -> str:
            return url

    return UrlPostgresSettings(pguser="-", pgpassword="-", pghost="-", pgport=0, pgdatabase="-")


class StacApiMount:
    """ASGI app: the STAC API, with its database attached on the first request and detached by `close()`."""

    def __init__(self, api_app: FastAPI, *, database: StacDatabase, writable: bool = True) -> None:
        self.app = api_app
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
        # keeps at the top-level app's: give the API its own
        inner = {key: value for key, value in scope.items() if key != "router"}
        await self.app({**inner, "app_root_path": scope.get("root_path", "")}, receive, send)


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
                   database: StacDatabase | None = None) -> StacApiMount:
    """Mount the STAC API at `prefix` in `app`; its database follows `app`'s lifespan.

    Args:
        app: the geovigie service.
        data_dir: where the private cluster lives (`<data_dir>/postgres`) when no `database_url` is given.
        database_url: a PostgreSQL server with PostGIS (pgstac is installed or upgraded in it on first use).
        prefix: the API's path in the service.
        transactions: serve the Transaction extension (POST/PUT/DELETE of items and collections).
        eager: start the database when the service starts rather than on the first STAC API request.
        database: the process's database handle for this configuration (`catalog.stac_database`), shared with the
            stores that publish; made from `database_url` / `data_dir` when not given. The private cluster is
            stopped when the service stops if this process started it (by serving or by publishing).
    """
    api = build_stac_api(transactions=transactions)
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
