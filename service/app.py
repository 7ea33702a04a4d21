"""The FastAPI application: layers and tiles, the static results catalog, health, the map page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import geovigie
from geovigie.service.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from geovigie.service.factories import LayerTilerFactory
from geovigie.settings import Settings
from geovigie.tiles import LayerIndex, results_store

STATIC = Path(__file__).resolve().parent / "static"
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # the page loads only its own scripts; Leaflet sets inline styles; images are tiles of this server or data: URIs
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI served from the installed swagger-ui-bundle package: the docs page needs no CDN."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="geovigie API",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")


def create_app(settings: Settings) -> FastAPI:
    """Build the app for `settings` (nothing is built at import time)."""
    app = FastAPI(title="geovigie", version=geovigie.__version__, docs_url=None, redoc_url=None,
                  description="Map layers and STAC results of geovigie.")
    _offline_docs(app)
    results = settings.results_dir.resolve()
    results.mkdir(parents=True, exist_ok=True)
    layers = LayerTilerFactory(index=LayerIndex(results_store(results)))
    app.include_router(layers.router, tags=["layers"])
    # the results catalog, browseable as a static STAC catalog (html=False: JSON files only)
    app.mount("/stac", StaticFiles(directory=results, follow_symlink=False), name="stac")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_exception_handlers(app, DEFAULT_STATUS_CODES)

    @app.get("/healthz", summary="Liveness and what the service holds.")
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": geovigie.__version__, "layers": len(layers.index.ids())}

    @app.get("/readyz", summary="Readiness: layers that can be served, and broken ones with the reason.")
    def readyz() -> JSONResponse:
        good, broken = layers.index.scan()
        body = {"status": "degraded" if broken else "ok", "layers": len(good), "broken": broken}
        return JSONResponse(body, status_code=200)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    return app
