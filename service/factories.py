"""Endpoint factories (titiler style): attrs classes whose fields are swappable dependencies.

Raster layers are served by titiler.core's own `TilerFactory` (tiles in any supported TileMatrixSet, TileJSON,
WMTS through titiler.extensions' `wmtsExtension`, point values, statistics, info), mounted at
`/layers/{layer_id}`: its path dependency maps a validated layer id to the layer's COG through the `LayerIndex`,
so nothing a request sends reaches a file path. Each layer's default rendering (its classes' colours, or its ramp
and rescale range) comes from its STAC item, so a bare tile URL is drawn as the legend says.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

import attrs
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.routing import APIRoute
from morecantile import tms as morecantile_tms
from morecantile.defaults import TileMatrixSets
from rio_tiler.colormap import cmap as default_cmap
from rio_tiler.types import ColorMapType
from starlette.concurrency import run_in_threadpool
from titiler.core.dependencies import BidxParams, ColorMapParams, DatasetParams, ImageRenderingParams
from titiler.core.errors import BadRequestError
from titiler.core.factory import ColorMapFactory, TilerFactory
from titiler.extensions.wmts import wmtsExtension

from geovigie.errors import LayerNotFoundError
from geovigie.service.errors import ERROR_RESPONSES, ErrorBody, FeaturesTooLargeError
from geovigie.tiles import Layer, LayerIndex, ramp_colors

MAX_FEATURES_BYTES = 50 * 2**20
"""Largest GeoJSON the features endpoint sends whole (a browser struggles well before)."""
DEFAULT_TMS = "WebMercatorQuad"
LayerId = Annotated[str, Path(description="Layer id (see /layers)")]
SUPPORTED_TMS = TileMatrixSets({name: morecantile_tms.get(name) for name in ("WebMercatorQuad", "WGS1984Quad")})
"""Tile grids offered (tiles, TileJSON, WMTS): web mercator for web maps, WGS 84 quad for GIS clients."""
_JSON_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"detail": {"type": "string"}},
                                                "required": ["detail"]}}}
TILER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"content": _JSON_ERROR, "description": "Invalid rendering parameters (colour map, rescale, bands)."},
    404: {"content": _JSON_ERROR, "description": "Unknown, invalid or broken layer, or outside the layer."},
    413: {"content": _JSON_ERROR, "description": "Request body too large."},
}
"""Errors TiTiler's endpoints answer here, as JSON whatever the endpoint's own media type."""
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


@attrs.define
class LayerTilerFactory:
    """Layer listing and description, GeoJSON features of vector layers, and TiTiler's endpoints for rasters.

    Attributes:
        index: where layers are looked up by id.
        router: the router every endpoint is added to (include it at the app's root).
        gdal_env: GDAL options passed with each read (`rasterio.Env`), never set globally.
        max_features_bytes: largest GeoJSON sent whole by the features endpoint (413 above).
    """

    index: LayerIndex
    router: APIRouter = attrs.field(factory=APIRouter)
    gdal_env: dict[str, Any] = attrs.field(factory=lambda: dict(GDAL_ENV))
    max_features_bytes: int = MAX_FEATURES_BYTES
    tiler: TilerFactory = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.tiler = TilerFactory(
            router_prefix="/layers/{layer_id}",
            path_dependency=self.layer_path,
            layer_dependency=BidxParams,
            colormap_dependency=self.layer_colormap,  # type: ignore[arg-type]
            render_dependency=self.layer_render,  # type: ignore[arg-type]
            environment_dependency=lambda: self.gdal_env,
            supported_tms=SUPPORTED_TMS,
            add_preview=False, add_part=False, add_viewer=False,
            extensions=[wmtsExtension(
                tile_dependencies=[BidxParams, DatasetParams, ColorMapParams, ImageRenderingParams],
                layer_identifier_provider=lambda path: FilePath(path).parent.name)],
        )
        self.register_routes()
        for route in self.tiler.router.routes:  # TiTiler's routes answer these too: say so in the OpenAPI
            if isinstance(route, APIRoute):
                route.responses = {**TILER_ERRORS, **route.responses}
        self.router.include_router(self.tiler.router, prefix="/layers/{layer_id}", tags=["tiles"])

    # dependencies
    def raster(self, layer_id: str) -> Layer:
        """The raster layer `layer_id`; a vector layer has no tiles (404)."""
        layer = self.index.get(layer_id)
        if layer.kind == "vector":
            raise LayerNotFoundError(f"layer {layer_id!r} is a vector layer: it has no tiles, use its features")
        return layer

    async def tile_layer(self, layer_id: str) -> Layer:
        """`raster` for the tile dependencies, run on the event loop (no thread hop per dependency): the index's
        remembered layer (file checks only), a database lookup in a worker thread when it has none."""
        layer = self.index.peek(layer_id)
        if layer is None:
            return await run_in_threadpool(self.raster, layer_id)
        if layer.kind == "vector":
            raise LayerNotFoundError(f"layer {layer_id!r} is a vector layer: it has no tiles, use its features")
        return layer

    async def layer_path(self, layer_id: LayerId) -> str:
        """TiTiler's path dependency: the COG of a published raster layer, by id."""
        return str((await self.tile_layer(layer_id)).path)

    async def layer_colormap(
        self, layer_id: LayerId,
        colormap_name: Annotated[str | None, Query(description="Colormap name (default: the layer's)")] = None,
        colormap: Annotated[str | None, Query(description="JSON encoded custom colormap")] = None,
    ) -> ColorMapType | None:
        """The colormap asked for, else the layer's: its ramp for continuous layers; None for class layers, whose
        COG carries the class colours (TiTiler then uses the file's own colormap)."""
        if colormap_name is not None and colormap_name not in default_cmap.list():
            raise BadRequestError(f"unknown colormap_name {colormap_name[:40]!r} (see /colorMaps)")
        if colormap_name or colormap:
            return ColorMapParams(colormap_name=colormap_name, colormap=colormap)
        layer = await self.tile_layer(layer_id)
        if layer.kind == "classes":
            return None
        return default_cmap.get(layer.colormap_name or "viridis")

    async def layer_render(self, layer_id: LayerId,
                     params: Annotated[ImageRenderingParams, Depends(ImageRenderingParams)]) -> ImageRenderingParams:
        """Rendering parameters; a continuous layer's rescale range is its item's unless the request gives one."""
        if params.rescale is None:
            layer = await self.tile_layer(layer_id)
            if layer.kind != "classes" and layer.rescale:
                params.rescale = [tuple(layer.rescale)]  # type: ignore[list-item]
        return params

    # description
    def describe(self, request: Request, layer: Layer) -> dict[str, Any]:
        """A layer's JSON: `Layer.as_dict()` plus its legend and absolute links (from the public base URL)."""
        info = layer.as_dict()
        if layer.kind == "continuous" and layer.colormap_name and info["rescale"]:
            info["legend"] = [{"colors": ramp_colors(layer.colormap_name), "min": info["rescale"][0],
                               "max": info["rescale"][1], "unit": layer.unit}]
        if layer.kind == "vector" and layer.style and layer.style.get("color_by"):
            style = layer.style
            info["legend"] = [{"colors": ramp_colors(style.get("colormap_name") or "ylgn"),
                               "min": (style.get("rescale") or [None, None])[0],
                               "max": (style.get("rescale") or [None, None])[1], "unit": style.get("unit"),
                               "property": style["color_by"]}]
        # request.base_url is the configured public URL (PublicBaseUrl): never the client's Host header
        base = str(request.base_url).rstrip("/")
        here = f"{base}/layers/{layer.id}"
        if layer.kind == "vector":
            info["features"] = f"{here}/features.geojson"
        else:
            info["tiles"] = [f"{here}/tiles/{DEFAULT_TMS}/{{z}}/{{x}}/{{y}}.png"]
            info["tilejson"] = f"{here}/{DEFAULT_TMS}/tilejson.json?tilesize=256"
            info["wmts"] = f"{here}/WMTSCapabilities.xml"
            info["point"] = f"{here}/point/{{lon}},{{lat}}"
            info["statistics"] = f"{here}/statistics"
        info["assets"] = {key: f"{base}/assets/{layer.id}/{key}" for key, _ in layer.assets}
        info["stac_item"] = f"{base}/stac/{self.index.item_href(layer.id)}"
        return info

    def register_routes(self) -> None:
        """Add the layer endpoints to `self.router` (TiTiler's are included after them)."""

        @self.router.get("/layers", summary="List published layers (broken ones are skipped; see /readyz).",
                         tags=["layers"])
        def list_layers(request: Request) -> list[dict[str, Any]]:
            layers, _ = self.index.scan()
            return [self.describe(request, layer) for layer in layers]

        @self.router.get("/layers/{layer_id}", summary="Describe one layer.", responses=ERROR_RESPONSES,
                         tags=["layers"])
        def get_layer(request: Request, layer_id: LayerId) -> dict[str, Any]:
            return self.describe(request, self.index.get(layer_id))

        @self.router.get("/layers/{layer_id}/features.geojson", name="layer_features", response_class=FileResponse,
                         summary="GeoJSON FeatureCollection (EPSG:4326) of a vector layer.", tags=["layers"],
                         responses={**ERROR_RESPONSES, 200: {"content": {"application/geo+json": {}}},
                                    413: {"model": ErrorBody, "description": "Too large to send whole."}})
        def layer_features(layer_id: LayerId) -> FileResponse:
            layer = self.index.get(layer_id)
            if layer.kind != "vector":
                raise LayerNotFoundError(f"layer {layer_id!r} is a raster: it has no features, use its tiles")
            size = layer.path.stat().st_size
            if size > self.max_features_bytes:
                raise FeaturesTooLargeError(
                    f"layer {layer_id!r} is too large to send whole ({size / 2**20:.1f} MiB > "
                    f"{self.max_features_bytes / 2**20:.1f} MiB): download it from its STAC item")
            return FileResponse(layer.path, media_type="application/geo+json", headers={"Cache-Control": "max-age=60"})

        @self.router.get("/layers/{layer_id}/tilejson.json", summary="TileJSON of a raster layer (redirects to "
                         "the WebMercatorQuad TileJSON).", responses=ERROR_RESPONSES, tags=["layers"],
                         response_class=RedirectResponse, status_code=307)
        def tilejson(request: Request, layer_id: LayerId) -> RedirectResponse:
            self.raster(layer_id)
            base = str(request.base_url).rstrip("/")
            return RedirectResponse(f"{base}/layers/{layer_id}/{DEFAULT_TMS}/tilejson.json?tilesize=256",
                                    status_code=307)

        @self.router.get("/layers/{layer_id}/legend", summary="Legend entries of a layer (classes or ramp).",
                         responses=ERROR_RESPONSES, tags=["layers"])
        def legend(request: Request, layer_id: LayerId) -> list[dict[str, Any]]:
            return list(self.describe(request, self.index.get(layer_id))["legend"])


MAX_LEGEND_PIXELS = 2048


def legend_size(width: Annotated[int | None, Query(description="Image width (1-2048)")] = None,
                height: Annotated[int | None, Query(description="Image height (1-2048)")] = None) -> None:
    """Bound the colour map image TiTiler draws (a negative or huge size fails or fills memory)."""
    for name, value in (("width", width), ("height", height)):
        if value is not None and not 1 <= value <= MAX_LEGEND_PIXELS:
            raise BadRequestError(f"{name} must be between 1 and {MAX_LEGEND_PIXELS}")


def colormap_factory() -> ColorMapFactory:
    """TiTiler's colour map endpoints (`/colorMaps`, `/colorMaps/{id}`): the ramps layers are drawn with."""
    factory = ColorMapFactory(route_dependencies=[([{"path": "/colorMaps/{colorMapId}", "method": "GET"}],
                                                   [Depends(legend_size)])])
    for route in factory.router.routes:
        if isinstance(route, APIRoute):
            route.responses = {**TILER_ERRORS, **route.responses}
    return factory
