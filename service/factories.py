"""Endpoint factories (titiler style): attrs classes whose fields are swappable dependencies."""

from __future__ import annotations

from typing import Annotated, Any

import attrs
from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from geovigie.errors import LayerNotFoundError
from geovigie.service.errors import ERROR_RESPONSES, ErrorBody, FeaturesTooLargeError
from geovigie.tiles import Layer, LayerIndex, ramp_colors, render_tile

MAX_FEATURES_BYTES = 50 * 2**20
"""Largest GeoJSON the features endpoint sends whole (a browser struggles well before)."""


@attrs.define
class LayerTilerFactory:
    """Layer listing, TileJSON and XYZ PNG tiles of published layers, addressed by id."""

    index: LayerIndex
    router: APIRouter = attrs.field(factory=APIRouter)
    gdal_env: dict[str, Any] = attrs.field(factory=lambda: {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"})
    max_features_bytes: int = MAX_FEATURES_BYTES

    def __attrs_post_init__(self) -> None:
        self.register_routes()

    def _describe(self, request: Request, layer_id: str) -> dict[str, Any]:
        layer = self.index.get(layer_id)
        info = layer.as_dict()
        if layer.kind == "continuous" and layer.colormap_name:
            info["legend"] = [{"colors": ramp_colors(layer.colormap_name), "min": info["rescale"][0],
                               "max": info["rescale"][1], "unit": layer.unit}]
        if layer.kind == "vector" and layer.style and layer.style.get("color_by"):
            style = layer.style
            info["legend"] = [{"colors": ramp_colors(style.get("colormap_name") or "ylgn"),
                               "min": (style.get("rescale") or [None, None])[0],
                               "max": (style.get("rescale") or [None, None])[1], "unit": style.get("unit"),
                               "property": style["color_by"]}]
        # links relative to the server root: the Host header a client sends never ends up in them
        prefix = request.scope.get("root_path", "")
        if layer.kind == "vector":
            info["features"] = prefix + str(request.app.url_path_for("layer_features", layer_id=layer_id))
        else:
            base = request.app.url_path_for("layer_tile", layer_id=layer_id, z=0, x=0, y=0)
            info["tiles"] = [prefix + str(base).replace("/0/0/0.png", "/{z}/{x}/{y}.png")]
        info["stac_item"] = prefix + str(request.app.url_path_for("stac", path=self.index.item_href(layer_id)))
        return info

    def _raster(self, layer_id: str) -> Layer:
        """The raster layer `layer_id`; a vector layer has no tiles (404)."""
        layer = self.index.get(layer_id)
        if layer.kind == "vector":
            raise LayerNotFoundError(f"layer {layer_id!r} is a vector layer: it has no tiles, use its features")
        return layer

    def register_routes(self) -> None:
        """Add the endpoints to `self.router`."""

        @self.router.get("/layers", summary="List published layers (broken ones are skipped; see /readyz).")
        def list_layers(request: Request) -> list[dict[str, Any]]:
            layers, _ = self.index.scan()
            return [self._describe(request, layer.id) for layer in layers]

        @self.router.get("/layers/{layer_id}", summary="Describe one layer.", responses=ERROR_RESPONSES)
        def get_layer(request: Request, layer_id: Annotated[str, Path(description="Layer id")]) -> dict[str, Any]:
            return self._describe(request, layer_id)

        @self.router.get("/layers/{layer_id}/features.geojson", name="layer_features", response_class=FileResponse,
                         summary="GeoJSON FeatureCollection (EPSG:4326) of a vector layer.",
                         responses={**ERROR_RESPONSES, 200: {"content": {"application/geo+json": {}}},
                                    413: {"model": ErrorBody, "description": "Too large to send whole."}})
        def layer_features(layer_id: Annotated[str, Path(description="Layer id")]) -> FileResponse:
            layer = self.index.get(layer_id)
            if layer.kind != "vector":
                raise LayerNotFoundError(f"layer {layer_id!r} is a raster: it has no features, use its tiles")
            size = layer.path.stat().st_size
            if size > self.max_features_bytes:
                raise FeaturesTooLargeError(
                    f"layer {layer_id!r} is too large to send whole ({size / 2**20:.1f} MiB > "
                    f"{self.max_features_bytes / 2**20:.1f} MiB): download it from its STAC item")
            return FileResponse(layer.path, media_type="application/geo+json", headers={"Cache-Control": "max-age=60"})

        @self.router.get("/layers/{layer_id}/tilejson.json", summary="TileJSON 3.0 of a raster layer.",
                         responses=ERROR_RESPONSES)
        def tilejson(request: Request, layer_id: Annotated[str, Path(description="Layer id")]) -> dict[str, Any]:
            self._raster(layer_id)
            info = self._describe(request, layer_id)
            return {"tilejson": "3.0.0", "name": info["title"], "tiles": info["tiles"], "bounds": info["bounds"],
                    "minzoom": 0, "maxzoom": 18}

        @self.router.get("/layers/{layer_id}/tiles/{z}/{x}/{y}.png", name="layer_tile", response_class=Response,
                         summary="XYZ tile (web mercator) of a raster layer as PNG.",
                         responses={**ERROR_RESPONSES, 200: {"content": {"image/png": {}}}})
        async def layer_tile(
            layer_id: Annotated[str, Path(description="Layer id")],
            z: Annotated[int, Path(ge=0, le=24, description="Zoom")],
            x: Annotated[int, Path(ge=0, description="Column")],
            y: Annotated[int, Path(ge=0, description="Row")],
        ) -> Response:
            layer = self._raster(layer_id)
            content = await run_in_threadpool(render_tile, layer, z, x, y, gdal_env=self.gdal_env)
            return Response(content, media_type="image/png", headers={"Cache-Control": "max-age=60"})
