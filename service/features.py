"""OGC API Features and vector tiles of the PostGIS tables (dump sites) through tipg, at `/ogc`; CSV and GeoPackage
downloads of the sites for field teams (`/sites.csv`, `/sites.gpkg`).

tipg runs as a sub-application on its own asyncpg pool, connected on the first request (the database may be the
private cluster, started then). It serves only the tables of `FEATURE_TABLES` (never keys, jobs or feedback
authors). Its links are built from `public_url` (the request's Host header never reaches them). Sites and zone
figures are loaded into PostGIS from the dump-site passes and the published zone layers before serving
(`records.sync_sites`, `records.sync_zones`, at most every few seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from geovigie.errors import GeovigieError
from geovigie.records import connect, database_url
from geovigie.service.auth import NO_NUL, READ_RESPONSES, Access
from geovigie.service.feedback import SiteSync
from geovigie.settings import Settings
from geovigie.types import LAMBERT93

log = logging.getLogger(__name__)

OGC_PREFIX = "/ogc"
FEATURE_TABLES = ["geovigie.dump_sites", "geovigie.zone_figures"]
"""The tables served as collections (collection id = schema.table)."""
CSV_COLUMNS = ("watch", "site_id", "status", "pass_date", "first_seen", "last_seen", "area_m2", "volume_m3",
               "commune_code", "commune_name", "candidate")

Watch = Annotated[str | None, Query(max_length=100, pattern=NO_NUL, description="Only this watch.")]
Status = Annotated[str | None, Query(max_length=20, pattern=NO_NUL,
                                     description="Only this status (new, grown, shrunk, persisting, "
                                                 "not_observed, removed).")]


def _checked_filter(query: Annotated[str | None, Query(alias="filter", description="CQL2 filter")] = None,
                    filter_lang: Annotated[str | None, Query(alias="filter-lang", pattern="^cql2-(text|json)$",
                                                             description="cql2-text (default) or cql2-json")] = None,
                    ) -> Any:
    """tipg's filter parsing, a malformed CQL2 filter answered 400 (the cql2 binding raises a bare Exception)."""
    from tipg.dependencies import filter_query

    try:
        return filter_query(query, filter_lang)  # type: ignore[arg-type]
    except Exception as err:  # noqa: BLE001 - cql2 raises Exception itself
        raise HTTPException(400, f"invalid CQL2 filter: {str(err).strip().splitlines()[-1]}") from None


def _tipg_app() -> FastAPI:
    """tipg's endpoints (collections, items, queryables, tiles, CQL2 filters) on a sub-application."""
    from tipg.dependencies import filter_query
    from tipg.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from tipg.factory import Endpoints

    app = FastAPI(title="geovigie OGC API", openapi_url="/api", docs_url="/api.html")
    app.dependency_overrides[filter_query] = _checked_filter
    endpoints = Endpoints(title="geovigie: dump sites and zone figures", with_tiles_viewer=False)
    app.include_router(endpoints.router)
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    return app


class FeaturesMount:
    """ASGI app: tipg with its pool opened on the first request, its links from the public URL."""

    def __init__(self, settings: Settings, sync: SiteSync) -> None:
        self.settings = settings
        self.sync = sync
        self.app = _tipg_app()
        self.connected = False
        self.error: str | None = None
        self._lock = asyncio.Lock()
        public = urlsplit(settings.public_base_url)
        self._scheme, self._netloc, self._root = public.scheme, public.netloc, public.path.rstrip("/")

    async def connect(self) -> None:
        from tipg.collections import register_collection_catalog
        from tipg.database import connect_to_db
        from tipg.settings import DatabaseSettings, PostgresSettings

        async with self._lock:
            if self.connected:
                return
            try:
                url = await run_in_threadpool(database_url, self.settings)
                await run_in_threadpool(self.sync)
                await connect_to_db(self.app, schemas=["geovigie"],
                                    settings=PostgresSettings.model_construct(
                                        database_url=url, db_min_conn_size=1, db_max_conn_size=4,
                                        db_max_queries=50000, db_max_inactive_conn_lifetime=300))
                await register_collection_catalog(self.app, db_settings=DatabaseSettings(
                    schemas=["geovigie"], tables=FEATURE_TABLES, only_spatial_tables=True))
            except (GeovigieError, OSError) as err:
                self.error = str(err)
                log.error("OGC API Features unavailable: %s", err)
                return
            self.error, self.connected = None, True

    async def close(self) -> None:
        from tipg.database import close_db_connection

        async with self._lock:
            if self.connected:
                await close_db_connection(self.app)
                self.connected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if not self.connected:
                await self.connect()
            if not self.connected:
                body = {"detail": self.error or "the features database is unavailable"}
                await JSONResponse(body, status_code=503)(scope, receive, send)
                return
            await run_in_threadpool(self.sync)
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"host"]
        headers.append((b"host", self._netloc.encode("latin-1")))
        inner = {key: value for key, value in scope.items() if key != "router"}
        await self.app({**inner, "headers": headers, "scheme": self._scheme, "root_path": OGC_PREFIX,
                        "app_root_path": self._root + OGC_PREFIX}, receive, send)


def _sites_frame(settings: Settings, watch: str | None, status: str | None) -> Any:
    import geopandas as gpd

    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT watch, site_id, status, pass_date, first_seen, last_seen, area_m2, volume_m3, commune_code, "
            "commune_name, candidate, ST_AsBinary(geom) AS wkb, ST_X(ST_PointOnSurface(geom)) AS lon, "
            "ST_Y(ST_PointOnSurface(geom)) AS lat FROM geovigie.dump_sites WHERE (%s::text IS NULL OR watch = %s) "
            "AND (%s::text IS NULL OR status = %s) ORDER BY watch, site_id", (watch, watch, status, status)).fetchall()
    import shapely

    geometry = [shapely.from_wkb(bytes(row.pop("wkb"))) for row in rows]
    return gpd.GeoDataFrame(rows, geometry=geometry, crs="EPSG:4326") if rows else gpd.GeoDataFrame(
        {c: [] for c in (*CSV_COLUMNS, "lon", "lat")}, geometry=[], crs="EPSG:4326")


def router(access: Access, sync: SiteSync) -> APIRouter:
    """The field-team downloads."""
    settings = access.settings
    routes = APIRouter(tags=["sites and feedback"], responses=READ_RESPONSES)
    @routes.get("/sites.csv", summary="Dump sites as CSV (one row per site; lon/lat of a point inside it).",
                response_class=Response)
    def sites_csv(watch: Watch = None, status: Status = None) -> Response:
        sync()
        frame = _sites_frame(settings, watch, status)
        table = frame.drop(columns="geometry")
        table = table[[*CSV_COLUMNS, "lon", "lat"]]
        return Response(table.to_csv(index=False), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="sites.csv"'})

    @routes.get("/sites.gpkg", summary="Dump sites as a GeoPackage (Lambert 93, EPSG:2154).",
                response_class=Response)
    def sites_gpkg(watch: Watch = None, status: Status = None) -> Response:
        import tempfile
        from pathlib import Path

        sync()
        frame = _sites_frame(settings, watch, status).to_crs(LAMBERT93)
        with tempfile.TemporaryDirectory(prefix="geovigie-sites-") as folder:
            path = Path(folder) / "sites.gpkg"
            frame.to_file(path, layer="sites", driver="GPKG", engine="pyogrio")
            body = path.read_bytes()
        return Response(body, media_type="application/geopackage+sqlite3",
                        headers={"Content-Disposition": 'attachment; filename="sites.gpkg"'})

    return routes


def mount(app: FastAPI, access: Access) -> FeaturesMount:
    """Mount OGC API Features at `/ogc` and the downloads; the pool closes with `app`."""
    sync = SiteSync(access.settings, zones=True)
    features = FeaturesMount(access.settings, sync)
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[Any]:
        async with previous(parent) as state:
            try:
                yield state
            finally:
                await features.close()

    app.router.lifespan_context = lifespan
    app.mount(OGC_PREFIX, features, name="ogc")
    app.include_router(router(access, sync))
    return features
