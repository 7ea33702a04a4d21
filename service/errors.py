"""Exception-to-HTTP translation, registered once: TiTiler's table (titiler.core.errors) plus geovigie's."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from rasterio.errors import RasterioError
from rio_tiler.errors import PointOutsideBounds
from titiler.core.errors import DEFAULT_STATUS_CODES as TITILER_STATUS_CODES
from titiler.core.errors import add_exception_handlers

from geovigie.errors import (
    BandMismatchError,
    GeovigieError,
    InputNotFoundError,
    InvalidRasterError,
    LayerNotFoundError,
    TileOutsideBoundsError,
    UnknownCollectionError,
)

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_STATUS_CODES", "ERROR_RESPONSES", "ErrorBody", "FeaturesTooLargeError", "add_exception_handlers",
           "layer_read_errors"]


class FeaturesTooLargeError(GeovigieError, ValueError):
    """A vector layer's GeoJSON is too large to be sent whole to a browser."""


class ErrorBody(BaseModel):
    """What every error response holds."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "Unknown, invalid or broken layer id, or a tile outside the layer."},
}
"""OpenAPI `responses` of the endpoints addressed by layer id."""

DEFAULT_STATUS_CODES: dict[type[Exception], int] = {
    # TiTiler's table, less its catch-all `Exception` (a bare 500, never the message) and the rasterio errors
    # (a layer's file that cannot be read: `layer_read_errors`, whose message names no path)
    **{exc: code for exc, code in TITILER_STATUS_CODES.items()
       if exc is not Exception and not issubclass(exc, RasterioError)},
    PointOutsideBounds: 404,
    LayerNotFoundError: 404,
    TileOutsideBoundsError: 404,
    InputNotFoundError: 404,
    UnknownCollectionError: 404,
    BandMismatchError: 422,
    InvalidRasterError: 422,
    FeaturesTooLargeError: 413,
    GeovigieError: 500,
}


def layer_read_errors(app: FastAPI, on_broken: Callable[[str, str], None]) -> None:
    """Answer a rasterio error while serving a layer with 500 and a body naming the layer (not its file), and
    report it through `on_broken(layer_id, reason)` so /readyz lists the layer as broken."""

    def handler(request: Request, exc: Exception) -> JSONResponse:
        layer_id = request.path_params.get("layer_id")
        log.error("reading %s failed: %s", request.url.path, exc)
        if layer_id is None:
            return JSONResponse({"detail": "a data file cannot be read"}, status_code=500)
        reason = f"its data file cannot be read ({type(exc).__name__})"
        on_broken(str(layer_id), reason)
        return JSONResponse({"detail": f"layer {str(layer_id)[:40]!r} is broken: {reason}"}, status_code=500)

    app.add_exception_handler(RasterioError, handler)
