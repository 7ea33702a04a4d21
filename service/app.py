"""The FastAPI application: layers and tiles, the STAC API (pgstac), the static results catalog, health, map page."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST

import geovigie
from geovigie.errors import DatabaseError, GeovigieError
from geovigie.records import WritesUnavailableError, count_jobs_by_state
from geovigie.service import auth, features, feedback, jobs, mosaics
from geovigie.service.assets import AssetFactory, InputAssetFactory, asset_url
from geovigie.service.errors import DEFAULT_STATUS_CODES, add_exception_handlers, layer_read_errors
from geovigie.service.factories import LayerTilerFactory, colormap_factory
from geovigie.service.metrics import Metrics, RequestMetrics, metrics_endpoint
from geovigie.service.middleware import BodySizeLimit, CommonHeaders, HeadAsGet, PublicBaseUrl, RequestId
from geovigie.service.stac_api import STAC_API_PREFIX, mount_stac_api
from geovigie.service.tile_cache import EntityTags, TileCache
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, results_database, results_store_for, stac_backend

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER = "/static/vendor/swagger-ui"
IGN_TILES = "https://data.geopf.fr"
"""The Géoplateforme (IGN) WMTS host: the page offers Plan IGN and orthophotos from it as optional base maps."""
def page_headers(public_url: str) -> dict[str, str]:
    """Headers of the map page: it loads only its own scripts, module worker and styles (MapLibre sets inline
    styles); tiles and data come from this server (as addressed, or at its public URL, which the layers' absolute
    links use) and the optional IGN base maps; images are decoded through blob: URLs."""
    parts = urlsplit(public_url)
    public = f"{parts.scheme}://{parts.netloc}"
    return {
        "Referrer-Policy": "same-origin",
        "Content-Security-Policy": f"default-src 'self'; connect-src 'self' {public} {IGN_TILES}; "
                                   f"img-src 'self' data: blob: {public} {IGN_TILES}; worker-src 'self'; "
                                   "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                   "frame-ancestors 'none'; form-action 'none'",
    }


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI from the assets vendored under static/vendor/swagger-ui: the docs page needs no CDN."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="geovigie API",
                                   swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})


def _health_routes(app: FastAPI, index: LayerIndex, metrics: Metrics, settings: Settings) -> None:
    """`/healthz` (the process answers), `/readyz` (database, Dask, broken layers), `/metrics` (Prometheus)."""

    @app.get("/healthz", summary="Liveness and what the service holds (`layers` null: the database is down).",
             tags=["operations"])
    def healthz() -> dict[str, object]:
        # the process answers even when the STAC database does not (readyz and the layers then say 503)
        try:
            count: int | None = len(index.ids())
        except DatabaseError:
            count = None
        return {"status": "ok", "version": geovigie.__version__, "layers": count,
                "stac_api": getattr(app.state, "stac_api", None)}

    @app.get("/readyz", summary="Readiness: 'ok', or 'degraded' with the broken layers and why, or the job runners' "
             "Dask cluster not reachable (still 200); 503 when the database is down.", tags=["operations"],
             response_model=None)
    def readyz() -> dict[str, object] | JSONResponse:
        # 200 even when degraded: the good layers are served; a 503 would take every layer off a load balancer
        # because one published file is broken. Monitoring reads `status` and `broken`.
        try:
            good, broken = index.scan()
        except DatabaseError as err:
            return JSONResponse({"status": "down", "database": str(err)[:300]}, status_code=503)
        database = "ok" if getattr(app.state, "stac_api", None) else "none (static catalog)"
        dask, dask_degraded = jobs.dask_readiness(settings) if app.state.stac_api else ({"status": "no jobs"}, False)
        return {"status": "degraded" if broken or dask_degraded else "ok", "database": database,
                "layers": len(good), "broken": broken, "dask": dask}

    app.add_api_route("/metrics", metrics_endpoint(metrics), methods=["GET"],  # type: ignore[arg-type]
                      summary="Prometheus metrics (requests, tile latency, tile cache hits, shed requests).",
                      tags=["operations"], response_class=Response,
                      responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})


def _openapi_without_tuples(app: FastAPI) -> None:
    """Write the tuple schemas of TiTiler's models (`prefixItems`, e.g. colour map entries) as arrays of their item
    types (length kept by minItems/maxItems): OpenAPI tools that read them as draft-4 `items: [...]` (schemathesis,
    some generators) reject the document otherwise."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            stack: list[Any] = [schema]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    tuple_items = node.pop("prefixItems", None)
                    if isinstance(tuple_items, list) and tuple_items:
                        # as a homogeneous array (the length stays in minItems/maxItems): every validator reads it
                        kinds = [json.loads(text) for text in dict.fromkeys(json.dumps(item, sort_keys=True)
                                                                             for item in tuple_items)]
                        node["items"] = kinds[0] if len(kinds) == 1 else {"anyOf": kinds}
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def stac_api_url(settings: Settings) -> str | None:
    """Where `geovigie serve` serves the STAC API for `settings`; None with the static backend."""
    if stac_backend(settings) != "pgstac":
        return None
    return f"{settings.public_base_url}{STAC_API_PREFIX}"


def create_app(settings: Settings) -> FastAPI:
    """Build the app for `settings` (nothing is built at import time).

    With the pgstac backend (`tiles.stac_backend`), the STAC API is mounted at `/api/stac` and the map's layers
    (`/layers`) are read from the same database; the private PostgreSQL, if this process starts it, stops with the
    app. With the static backend, layers are read from the static catalog. Either way `/stac/...` serves the static
    catalog (the export, with pgstac). Every absolute link is built from `settings.public_base_url`.
    """
    # redirect_slashes=False: a trailing-slash redirect builds its Location from the Host header a client sends
    # telemetry off: metrics are Prometheus' (/metrics); FastAPI's OpenTelemetry check cost ~30 µs a request
    app = FastAPI(title="geovigie", version=geovigie.__version__, docs_url=None, redoc_url=None,
                  redirect_slashes=False, description="Map layers and STAC results of geovigie.",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    results = settings.results_dir.resolve()
    results.mkdir(parents=True, exist_ok=True)
    database = results_database(settings)
    if database is not None:
        mount_stac_api(app, data_dir=settings.data_dir, database=database,
                       transactions=settings.stac_api_transactions,
                       asset_href=functools.partial(asset_url, settings.public_base_url))
    app.state.stac_api = STAC_API_PREFIX if database is not None else None
    index = LayerIndex(results_store_for(settings))
    metrics = Metrics(jobs=functools.partial(count_jobs_by_state, settings) if database is not None else None)
    app.state.layer_index, app.state.metrics = index, metrics
    layers = LayerTilerFactory(index=index)
    app.include_router(layers.router)
    app.include_router(colormap_factory().router, tags=["colormaps"])
    app.include_router(AssetFactory(index=index).router)
    app.include_router(InputAssetFactory(settings).router)
    _health_routes(app, index, metrics, settings)
    access = auth.Access(settings)  # keys, feedback, jobs, features (README "Writes"): they need the database
    if database is not None:
        app.include_router(feedback.router(access))
        app.include_router(jobs.router(access))
        features.mount(app, access)  # OGC API Features (tipg) at /ogc, /sites.csv, /sites.gpkg
        mosaics.mount(app, database=database, access=access, roots=_asset_roots(settings))  # /mosaics (pgstac)
    _offline_docs(app)
    _openapi_without_tuples(app)
    # the results catalog, browseable as a static STAC catalog (html=False: JSON files only)
    app.mount("/stac", StaticFiles(directory=results, follow_symlink=False), name="stac")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_exception_handlers(app, {**DEFAULT_STATUS_CODES, DatabaseError: 503, WritesUnavailableError: 503})
    layer_read_errors(app, index.report_broken)
    _middleware(app, settings, index, metrics, access)

    headers = page_headers(settings.public_base_url)

    @app.get("/", include_in_schema=False)
    def home() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=headers)

    return app


def _asset_roots(settings: Settings) -> tuple[Path, ...]:
    """Folders whose files mosaics may read items' assets from: the data directory and the sample data."""
    with contextlib.suppress(GeovigieError):
        return settings.data_dir, settings.sample_data_path()
    return (settings.data_dir,)


def _middleware(app: FastAPI, settings: Settings, index: LayerIndex, metrics: Metrics, access: auth.Access) -> None:
    """The middleware stack, innermost first (each `add_middleware` wraps the previous ones)."""
    app.add_middleware(EntityTags, prefixes=("/layers", "/mosaics"))
    app.add_middleware(TileCache, index=index, metrics=metrics, memory_bytes=settings.tile_cache_mb * 2**20,
                       disk_dir=settings.tile_cache_dir)
    app.add_middleware(CommonHeaders)
    app.add_middleware(auth.KeyGate, access=access)  # outside the tile cache: keyed reads never come from it
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RequestId)
    app.add_middleware(HeadAsGet)
    app.add_middleware(PublicBaseUrl, public_url=settings.public_base_url)


@contextlib.contextmanager
def serve_environment(settings: Settings) -> Iterator[None]:
    """Environment for worker processes building the app themselves (`app_from_environment`): the settings
    given on the command line, a tile cache folder they share, and a folder for Prometheus' multiprocess mode
    (so /metrics adds up every worker); the metrics folder is removed afterwards."""
    values = {"GEOVIGIE_HOST": settings.host, "GEOVIGIE_PORT": str(settings.port),
              "GEOVIGIE_DATA_DIR": str(settings.data_dir.resolve()),
              "GEOVIGIE_TILE_CACHE_DIR": str((settings.tile_cache_dir or settings.data_dir / "tile-cache").resolve())}
    previous = {name: os.environ.get(name) for name in [*values, "PROMETHEUS_MULTIPROC_DIR"]}
    metrics_dir = tempfile.mkdtemp(prefix="geovigie-metrics-")
    os.environ.update({**values, "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(metrics_dir, ignore_errors=True)


def app_from_environment() -> FastAPI:
    """The app for the settings of the environment and geovigie.toml (`uvicorn --factory`, one per worker)."""
    import logging

    from geovigie.service.logs import configure_logging
    from geovigie.settings import get_settings
    from geovigie.terminal import VERBOSITY_VARIABLE, log_level, set_verbosity

    set_verbosity(int(os.environ.get(VERBOSITY_VARIABLE) or 0))  # `geovigie -v serve --workers N`
    configure_logging(log_level(base=logging.INFO))
    return create_app(get_settings())
