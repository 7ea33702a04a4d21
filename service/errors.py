"""Exception-to-HTTP translation, registered once (as titiler.core.errors does)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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
    LayerNotFoundError: 404,
    TileOutsideBoundsError: 404,
    InputNotFoundError: 404,
    UnknownCollectionError: 404,
    BandMismatchError: 422,
    InvalidRasterError: 422,
    FeaturesTooLargeError: 413,
    GeovigieError: 500,
}


def add_exception_handlers(app: FastAPI, status_codes: dict[type[Exception], int]) -> None:
    """Answer each listed exception with its status code and a JSON `detail`; log 5xx only."""
    for exc_class, status in status_codes.items():

        def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            if status >= 500:
                log.error("error on %s", request.url.path, exc_info=exc)
            return JSONResponse({"detail": str(exc)}, status_code=status)

        app.add_exception_handler(exc_class, handler)
