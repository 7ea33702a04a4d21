"""Asset files of published layers over http(s), with Range requests (`/vsicurl/`, odc-stac, QGIS read them)."""

from __future__ import annotations

import mimetypes
import re
from typing import Annotated

import attrs
from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from geovigie.errors import LayerNotFoundError
from geovigie.service.errors import ERROR_RESPONSES
from geovigie.tiles import RESULTS_COLLECTION, LayerIndex

ASSET_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MEDIA_TYPES = {".tif": "image/tiff; application=geotiff; profile=cloud-optimized", ".geojson": "application/geo+json",
               ".gpkg": "application/geopackage+sqlite3", ".json": "application/json", ".csv": "text/csv"}


def asset_url(base_url: str, collection: str, item_id: str, key: str, href: str) -> str | None:
    """The service's URL of a results item's local asset (`file://` or relative href); None for anything else."""
    if collection != RESULTS_COLLECTION or not ASSET_KEY.match(key) or ("://" in href
                                                                        and not href.startswith("file://")):
        return None
    return f"{base_url.rstrip('/')}/assets/{item_id}/{key}"


@attrs.define
class AssetFactory:
    """`/assets/{layer_id}/{asset}`: a layer's asset file, addressed by the item's id and asset key."""

    index: LayerIndex
    router: APIRouter = attrs.field(factory=APIRouter)

    def __attrs_post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        """Add the endpoint to `self.router`."""

        @self.router.get("/assets/{layer_id}/{asset}", response_class=FileResponse, responses=ERROR_RESPONSES,
                         summary="A layer's asset file (Range requests supported).", tags=["layers"])
        def layer_asset(layer_id: Annotated[str, Path(description="Layer (item) id")],
                        asset: Annotated[str, Path(description="Asset key of the item, e.g. data")]) -> FileResponse:
            if not ASSET_KEY.match(asset):
                raise LayerNotFoundError(f"layer {layer_id[:40]!r} has no asset {asset[:40]!r}")
            path = self.index.asset_path(layer_id, asset)
            media = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
            return FileResponse(path, media_type=media or "application/octet-stream",
                                headers={"Cache-Control": "max-age=60"},
                                filename=f"{layer_id}-{asset}{path.suffix}", content_disposition_type="inline")
