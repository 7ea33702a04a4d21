"""The FastAPI application: layers and tiles, the STAC API (pgstac), the static results catalog, health, map page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

import geovigie
from geovigie.errors import DatabaseError
from geovigie.records import WritesUnavailableError
from geovigie.service import auth, features, feedback, jobs
from geovigie.service.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from geovigie.service.factories import LayerTilerFactory
from geovigie.service.middleware import CommonHeaders, HeadAsGet
from geovigie.service.stac_api import STAC_API_PREFIX, mount_stac_api
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, results_database, results_store_for, stac_backend

STATIC = Path(__file__).resolve().parent / "static"
SWAGGER = "/static/vendor/swagger-ui"
IGN_TILES = "https://data.geopf.fr"
"""The Géoplateforme (IGN) WMTS host: the page offers Plan IGN and orthophotos from it as optional base maps."""
PAGE_HEADERS = {
    "Referrer-Policy": "same-origin",
    # the page loads only its own scripts and styles (Leaflet sets inline styles); images are this server's tiles,
    # data: URIs, and the optional IGN base map tiles
    "Content-Security-Policy": f"default-src 'self'; img-src 'self' data: {IGN_TILES}; "
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


def _health_routes(app: FastAPI, index: LayerIndex) -> None:
    """`/healthz` (the process answers) and `/readyz` (which layers can be served)."""

    @app.get("/healthz", summary="Liveness and what the service holds (`layers` null: the database is down).")
    def healthz() -> dict[str, object]:
        # the process answers even when the STAC database does not (readyz and the layers then say 503)
        try:
            count: int | None = len(index.ids())
        except DatabaseError:
            count = None
        return {"status": "ok", "version": geovigie.__version__, "layers": count,
                "stac_api": getattr(app.state, "stac_api", None)}

    @app.get("/readyz", summary="Readiness: 'ok', or 'degraded' with the broken layers and why (still 200).")
    def readyz() -> dict[str, object]:
        # 200 even when degraded: the good layers are served; a 503 would take every layer off a load balancer
        # because one published file is broken. Monitoring reads `status` and `broken`.
        good, broken = index.scan()
        return {"status": "degraded" if broken else "ok", "layers": len(good), "broken": broken}


def stac_api_url(settings: Settings) -> str | None:
    """Where `geovigie serve` serves the STAC API for `settings`; None with the static backend."""
    if stac_backend(settings) != "pgstac":
        return None
    return f"http://{settings.host}:{settings.port}{STAC_API_PREFIX}"


def create_app(settings: Settings) -> FastAPI:
    """Build the app for `settings` (nothing is built at import time).

    With the pgstac backend (`tiles.stac_backend`), the STAC API is mounted at `/api/stac` and the map's layers
    (`/layers`) are read from the same database; the private PostgreSQL, if this process starts it, stops with the
    app. With the static backend, layers are read from the static catalog. Either way `/stac/...` serves the static
    catalog (the export, with pgstac).
    """
    # redirect_slashes=False: a trailing-slash redirect builds its Location from the Host header a client sends
    app = FastAPI(title="geovigie", version=geovigie.__version__, docs_url=None, redoc_url=None,
                  redirect_slashes=False, description="Map layers and STAC results of geovigie.")
    results = settings.results_dir.resolve()
    results.mkdir(parents=True, exist_ok=True)
    database = results_database(settings)
    if database is not None:
        mount_stac_api(app, data_dir=settings.data_dir, database=database,
                       transactions=settings.stac_api_transactions)
    app.state.stac_api = STAC_API_PREFIX if database is not None else None
    layers = LayerTilerFactory(index=LayerIndex(results_store_for(settings)))
    app.include_router(layers.router, tags=["layers"])
    _health_routes(app, layers.index)
    access = auth.Access(settings)  # keys, feedback, jobs, features (README "Writes"): they need the database
    if database is not None:
        app.include_router(feedback.router(access))
        app.include_router(jobs.router(access))
        features.mount(app, access)  # OGC API Features (tipg) at /ogc, /sites.csv, /sites.gpkg
    _offline_docs(app)
    # the results catalog, browseable as a static STAC catalog (html=False: JSON files only)
    app.mount("/stac", StaticFiles(directory=results, follow_symlink=False), name="stac")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_exception_handlers(app, {**DEFAULT_STATUS_CODES, DatabaseError: 503, WritesUnavailableError: 503})
    app.add_middleware(CommonHeaders)
    app.add_middleware(auth.KeyGate, access=access)
    app.add_middleware(HeadAsGet)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    return app
